"""`mlpbench` and `python -m mlpbench`: the Hydra app of mlpbench.run."""

import sys


def _register_plugins() -> None:
    # Hydra finds plugins by scanning the hydra_plugins namespace, which misses ours in some
    # editable installs: register the search's sweeper and the joblib launcher from the package too.
    from hydra.core.plugins import Plugins
    from hydra_plugins.mlpbench_joblib import JoblibLauncher
    from hydra_plugins.mlpbench_tuner import TuneSweeper

    Plugins.instance().register(TuneSweeper)
    Plugins.instance().register(JoblibLauncher)


CONFIG_DIR_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp")


def _fail(message: str) -> None:
    print(f"mlpbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def _targets(node, path: str = ""):
    """(key, value) of every `_target_` in a config, as plain containers."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{path}.{key}" if path else str(key)
        if key == "_target_" and isinstance(value, str):
            yield name, value
        else:
            yield from _targets(value, name)


def _check_received_config(args: list[str]) -> None:
    """A config file from another folder may only name trusted `_target_`s (schema.TRUSTED_TARGETS):
    composed here as Hydra will compose it, before Hydra instantiates anything of it."""
    dirs = [args[i + 1] for i, a in enumerate(args[:-1]) if a in CONFIG_DIR_FLAGS]
    dirs += [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in CONFIG_DIR_FLAGS and "=" in a]
    if not dirs:
        return
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mlpbench.overrides import parse
    from mlpbench.schema import TRUSTED_TARGETS

    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config-name", "-cn")]
    names += [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in ("--config-name", "-cn") and "=" in a]
    single = [o.input_line for o in parse([a for a in args if "=" in a and not a.startswith("-")])
              if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=str(Path(dirs[-1]).resolve()), version_base="1.3"):
            # The package's own groups (trainer/default, ...) beside the folder, as Hydra has them.
            cfg = compose(config_name=names[-1] if names else "config", return_hydra_config=True,
                          overrides=["hydra.searchpath=[pkg://mlpbench.conf]", *single])
        targets = list(_targets(OmegaConf.to_container(cfg, resolve=False)))
    except Exception as e:  # fail closed: what cannot be read cannot be checked
        _fail(f"--config-dir {dirs[-1]}: cannot read its config ({' '.join(str(e).split())[:300]})")
    for key, target in targets:
        if not target.startswith(TRUSTED_TARGETS):
            _fail(f"{key}={target}: a config from {dirs[-1]} may only name mlpbench's, Hydra's or Lightning's "
                  "callbacks in _target_; refusing to run it (check the file, and give that callable on the "
                  "command line if you trust it)")


def _check_names(args: list[str]) -> None:
    import re

    from hydra.errors import HydraException

    from mlpbench.overrides import parse

    try:
        parsed = parse([a for a in args if "=" in a and not a.startswith("-")])
    except HydraException:
        return  # an override Hydra cannot read: Hydra says so, naming it
    for o in parsed:
        if o.key_or_group == "hydra.job.name" and o.value() is not None:
            names = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
            for name in map(str, names):
                if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name) or ".." in name:
                    _fail(f"hydra.job.name={name}: must be a name of letters, digits, '.', '_' and '-' "
                          "(it names the run's log file)")


def cli() -> None:
    from mlpbench.run import main, print_help

    for arg in sys.argv[1:]:
        if arg.startswith("+experiment="):
            # Hydra refuses to append a group the defaults list already names (experiment: null).
            _fail(f"{arg}: presets are chosen with {arg[1:]} (no '+')")
        if arg.startswith("="):
            _fail(f"{arg}: an override is KEY=VALUE, e.g. model.depth=4")
    _check_names(sys.argv[1:])
    _check_received_config(sys.argv[1:])
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print_help([a for a in sys.argv[1:] if not a.startswith("-")])
        return
    _register_plugins()
    main()


if __name__ == "__main__":
    cli()
