"""`mlpbench` and `python -m mlpbench`: the Hydra app of mlpbench.run."""

import sys


def _register_search() -> None:
    # Hydra finds plugins by scanning the hydra_plugins namespace, which misses ours in some
    # editable installs: register the search's sweeper from the package as well.
    from hydra.core.plugins import Plugins
    from hydra_plugins.mlpbench_tuner import TuneSweeper

    Plugins.instance().register(TuneSweeper)


def cli() -> None:
    from mlpbench.run import main, print_help

    for arg in sys.argv[1:]:
        if arg.startswith("+experiment="):
            # Hydra refuses to append a group the defaults list already names (experiment: null).
            print(f"mlpbench: error: {arg}: presets are chosen with {arg[1:]} (no '+')", file=sys.stderr)
            sys.exit(2)
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print_help([a for a in sys.argv[1:] if not a.startswith("-")])
        return
    _register_search()
    main()


if __name__ == "__main__":
    cli()
