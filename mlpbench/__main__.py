"""`mlpbench` and `python -m mlpbench`: the Hydra app of mlpbench.run."""

import sys


def _register_plugins() -> None:
    # Hydra finds plugins by scanning the hydra_plugins namespace, which misses ours in some
    # editable installs: register the search's sweeper and our launchers from the package too.
    from hydra.core.plugins import Plugins
    from hydra_plugins.mlpbench_joblib import JoblibLauncher
    from hydra_plugins.mlpbench_stacked import StackedLauncher
    from hydra_plugins.mlpbench_tuner import TuneSweeper

    Plugins.instance().register(TuneSweeper)
    Plugins.instance().register(JoblibLauncher)
    Plugins.instance().register(StackedLauncher)


def _fail(message: str) -> None:
    print(f"mlpbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def _check_received_config(args: list[str]) -> None:
    """A config file from another folder (--config-dir, hydra.searchpath) may only name trusted
    `_target_`s (schema.TRUSTED_TARGETS): composed here as Hydra will compose it, each value of
    each swept key included, resolved, before Hydra instantiates anything of it."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir, initialize_config_module
    from hydra._internal.utils import get_args_parser
    from omegaconf import OmegaConf

    from mlpbench.overrides import parse
    from mlpbench.schema import TRUSTED_TARGETS, targets

    known, _ = get_args_parser().parse_known_args(args)  # Hydra's own reading of the flags
    overrides = list(known.overrides or [])
    searched = any("hydra.searchpath" in o for o in overrides)
    if not known.config_dir and not searched:
        return
    where = known.config_dir or "hydra.searchpath"
    try:
        parsed = parse(overrides)
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        variants = [single] + [[*single, f"{o.input_line.split('=', 1)[0]}={value}"]
                               for o in parsed if o.is_sweep_override() for value in o.sweep_string_iterator()]
        found = []
        for variant in variants:
            if known.config_dir:
                init = initialize_config_dir(config_dir=str(Path(known.config_dir).resolve()), version_base="1.3")
                # The package's own groups (trainer/default, ...) beside the folder, as Hydra has them.
                variant = ["hydra.searchpath=[pkg://mlpbench.conf]", *variant]
            else:
                init = initialize_config_module(config_module="mlpbench.conf", version_base="1.3")
            with init:
                cfg = compose(config_name=known.config_name or "config", overrides=variant, return_hydra_config=True)
            job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
            found += targets(OmegaConf.to_container(job, resolve=True))
            # Hydra's own section holds run-time interpolations (hydra.job.num): its callbacks
            # resolved, the rest (launcher, sweeper: plugins only) as written.
            found += targets(OmegaConf.to_container(cfg.hydra.callbacks, resolve=True), "hydra.callbacks")
            found += targets(OmegaConf.to_container(cfg.hydra, resolve=False), "hydra")
    except Exception as e:  # fail closed: what cannot be read cannot be checked
        _fail(f"--config-dir {where}: cannot read its config ({' '.join(str(e).split())[:300]})")
    for key, target in found:
        if not target.startswith(TRUSTED_TARGETS):
            _fail(f"{key}={target}: a config from {where} may only name mlpbench's, Hydra's or Lightning's "
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
    try:
        _cli()
    except SystemExit as e:
        _exit_now(e.code)
    _exit_now(0)


def _exit_now(code) -> None:
    """End the process without the interpreter's teardown, which after a run spends 1.1-1.4 s
    freeing torch's and Lightning's modules one by one (measured; longer than a small sweep's
    training). What an exit must do still happens: exit functions run, logs and output are
    flushed. An exception other than SystemExit never gets here: Python reports it as usual.
    Where other threads or processes are still running (joblib's workers), the exit is Python's
    own, which waits for them first."""
    import atexit
    import logging
    import multiprocessing
    import os
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others or multiprocessing.active_children() or "joblib" in sys.modules:
        sys.exit(code)

    atexit._run_exitfuncs()
    logging.shutdown()
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python does it
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


def _cli() -> None:
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
