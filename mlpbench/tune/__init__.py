"""The search (`hydra/sweeper=tune`, `experiment=tune_units`): Keras Tuner's job done with Optuna.

space (tune.space as dimensions) <- study (storage, sampler, pruner, trial state)
  <- trial (the pruning callback inside a trial's run), report (trials.md, figures)
  <- search (the ask / launch / tell loop).
The grid path (mlpbench.run, sweep, report) imports none of these: Hydra reaches the search
through hydra_plugins.mlpbench_tuner, and a trial's run gets its callback from its config.
"""
