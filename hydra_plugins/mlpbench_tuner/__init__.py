"""mlpbench's tuner as a Hydra sweeper (hydra/sweeper=tune). Hydra loads plugins only from the
hydra_plugins package; the tuner itself is mlpbench/tune.py."""

from mlpbench import tune


class TuneSweeper(tune.TuneSweeper):
    pass
