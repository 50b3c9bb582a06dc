"""`mlpbench` and `python -m mlpbench`: the Hydra app of mlpbench.run."""

import sys
from pathlib import Path

from mlpbench.console import exit_at_once, refuse


def _register_plugins() -> None:
    # Hydra finds plugins by scanning the hydra_plugins namespace, which misses ours in some
    # editable installs: register our sweepers and launchers from the package too. Scan first:
    # the scan executes each module it finds again, so classes imported before it would be
    # other objects than the scanned ones, and `--info plugins` listed each twice.
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()
    from hydra_plugins.mlpbench_grid import GridSweeper
    from hydra_plugins.mlpbench_joblib import JoblibLauncher
    from hydra_plugins.mlpbench_stacked import StackedLauncher
    from hydra_plugins.mlpbench_tuner import TuneSweeper

    for plugin in (TuneSweeper, GridSweeper, JoblibLauncher, StackedLauncher):
        plugins.register(plugin)  # a class the scan found already is not added again


# The keys whose values name a table's columns: any text a header holds.
COLUMN_KEYS = ("data.target", "data.features", "data.drop", "data.categorical", "data.split_column")
PATH_KEYS = ("data.path", "data.test_path", "data.root")
GRAMMAR_CHARACTERS = "~#&=[]"  # in an unquoted value, Hydra's lexer refuses them


# What a config file from another folder may set in Hydra's own section: the sweep it runs (as
# presets do) and what Hydra fills in itself. Anything else there (hydra.job.env_set, logging
# handlers, output folders, callbacks) must be mlpbench's or Hydra's own value, or typed on the
# command line: a received file that sets PYTHONPATH or a log file's path can run code or overwrite files.
RECEIVED_MAY_SET = ("hydra.mode", "hydra.sweeper.params", "hydra.runtime", "hydra.overrides", "hydra.help",
                    "hydra.job.config_name", "hydra.job.override_dirname", "hydra.searchpath")


def _check_received_config(known) -> None:
    """A config file from another folder (--config-dir, hydra.searchpath) reaches mlpbench's own
    keys only: it may name only trusted `_target_`s (schema.TRUSTED_TARGETS), and choose and set in
    Hydra's section nothing but RECEIVED_MAY_SET, Hydra's and mlpbench's own options and values.
    Composed here as Hydra will compose it, each value of each swept key included, before Hydra
    instantiates or configures anything of it."""
    from mlpbench.overrides import parse
    from mlpbench.schema import trusted

    overrides = list(known.overrides or [])
    searched = any("hydra.searchpath" in o for o in overrides)
    if not known.config_dir and not searched:
        return
    where = f"--config-dir {known.config_dir}" if known.config_dir else "hydra.searchpath"
    try:
        parsed = parse(overrides)
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        variants = [single] + [[*single, f"{o.input_line.split('=', 1)[0]}={value}"]
                               for o in parsed if o.is_sweep_override() for value in o.sweep_string_iterator()]
        problems = [p for variant in variants for p in _received_problems(known, variant)]
    except Exception as e:  # fail closed: what cannot be read cannot be checked
        refuse(f"{where}: cannot read its config ({' '.join(str(e).split())[:300]})")
    for key, value in problems:
        if key.endswith("._target_") and value is not None and not trusted(value):
            refuse(f"{key}={value}: a config from {where.split()[-1]} may only name mlpbench's, Hydra's or Lightning's "
                   "callbacks in _target_; refusing to run it (check the file, and give that callable on the "
                   "command line if you trust it)")
        if not key.endswith("._target_"):
            refuse(f"{key}: set to {value!r} by a config from {where.split()[-1]}; a received config may set only mlpbench's "
                   "own keys (and which runs a sweep makes), not Hydra's environment, logging, callbacks or "
                   "output folders; refusing to run it (give that setting on the command line if you mean it)")


def _composed(known, overrides: list[str], config_name, received: bool):
    """The config (Hydra's section too) as Hydra's command line composes it for a single run; with
    `received`, --config-dir's folder searched as Hydra searches it."""
    from pathlib import Path

    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    # The search path as Hydra's command line makes it: the package's configs, then the
    # --config-dir folder (hydra/_internal/utils.py, add_conf_dir), then hydra.searchpath's.
    search_path = create_automatic_config_search_path(None, None, "pkg://mlpbench.conf")
    if received and known.config_dir:
        search_path.prepend(provider="command-line", path=f"file://{Path(known.config_dir).resolve()}",
                            anchor=SearchPathQuery(provider="schema"))
    hydra = Hydra.create_main_hydra2(task_name="mlpbench", config_search_path=search_path)
    try:
        return hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN, with_log_configuration=False)
    finally:
        GlobalHydra.instance().clear()


def _received_problems(known, variant: list[str]) -> list[tuple[str, object]]:
    """(key, value) that a received config sets and may not: every `_target_` (the caller keeps
    the untrusted ones), and each key of Hydra's section outside RECEIVED_MAY_SET whose value is
    neither what the same command gives without the received folder nor Hydra's own default."""
    from omegaconf import OmegaConf

    from mlpbench.overrides import parse
    from mlpbench.results import flat_keys
    from mlpbench.schema import targets

    def composed(overrides: list[str], config_name, received: bool):
        return _composed(known, overrides, config_name, received)

    def job_targets(cfg) -> list:
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return list(targets(OmegaConf.to_container(job, resolve=True)))

    cfg = composed(variant, known.config_name or "config", received=True)
    found = job_targets(cfg)
    # The sweep the received config asks for (hydra.sweeper.params): each of its values composed
    # too, as the sweep's runs will be (`+callbacks.x: "{_target_: ...}"` is a value).
    params = cfg.hydra.sweeper.get("params")
    swept = OmegaConf.to_container(params, resolve=False) if params else {}
    for o in parse([f"{key}={value}" for key, value in swept.items()]):
        values = o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()]
        for value in values:
            one = composed([*variant, f"{o.input_line.split('=', 1)[0]}={value}"], known.config_name or "config",
                           received=True)
            found += job_targets(one)
    # Hydra's own section holds run-time interpolations (hydra.job.num): compared as written.
    received = flat_keys(OmegaConf.to_container(cfg.hydra, resolve=False), prefix="hydra.")
    found += [(k, v) for k, v in received.items() if k.endswith("._target_")]
    # The same command without the received folder: Hydra's options as the received config chose
    # them (from mlpbench's or Hydra's groups; one only the folder has fails here), the user's
    # hydra.* overrides, the preset, if it is mlpbench's.
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
    typed = [o for o in variant if o.split("=", 1)[0].lstrip("+~").startswith(("hydra.", "hydra/"))
             and not o.startswith("hydra.searchpath")]
    chosen = [f"{g}={v}" for g, v in choices.items() if g.startswith("hydra/") and v is not None]
    preset = [f"experiment={choices['experiment']}"] if choices.get("experiment") else []
    try:
        hydras = composed([*chosen, *typed], None, received=False)
    except Exception:  # an option only the received folder has: named, else it fails closed
        for choice in chosen:
            try:
                composed([choice], None, received=False)
            except Exception:
                return [*found, (choice.split("=")[0], choice.split("=", 1)[1])]
        raise
    try:
        ours = composed([*chosen, *typed, *preset], "config", received=False)
    except Exception:  # a preset only the folder has: Hydra's section without it
        ours = composed([*chosen, *typed], "config", received=False)
    allowed = [flat_keys(OmegaConf.to_container(c.hydra, resolve=False), prefix="hydra.") for c in (ours, hydras)]
    for key, value in received.items():
        swept = key.removeprefix("hydra.sweeper.params.") if key.startswith("hydra.sweeper.params.") else None
        if swept is not None and swept.lstrip("+~").startswith("hydra"):  # a sweep over Hydra's own keys
            found.append((key, value))
            continue
        if key.startswith(RECEIVED_MAY_SET) or key.endswith("._target_"):
            continue
        if key == "hydra.run.dir" and value == FORMER_RUN_DIR:  # a best_config.yaml an earlier version wrote
            continue
        if all(a.get(key, _ABSENT) != value for a in allowed):
            found.append((key, value))
    return found


_ABSENT = object()
# mlpbench's hydra.run.dir before resume=true found a single run's folder (mlpbench_run_dir).
FORMER_RUN_DIR = "outputs/run/${now:%Y-%m-%d}/${now:%H-%M-%S}"


def _check_names(parsed: list) -> None:
    from mlpbench.schema import safe_name

    for o in parsed:
        if o.key_or_group == "hydra.job.name" and o.value() is not None:
            names = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
            for name in map(str, names):
                if not safe_name(name):
                    refuse(f"hydra.job.name={name}: must be a name of at most 100 letters, digits, '.', '_' and '-' "
                           "(it names the run's log file)")


# Config groups whose options are mlpbench's YAML files (conf/<group>/*.yaml).
GROUPS = ("data", "model", "optim", "trainer", "experiment")


def _check_choices(parsed: list, known) -> None:
    """A group option or a key that does not exist, named with the closest ones ("did you mean"),
    before Hydra's own message (which for a group lists its whole search path, and for a key
    advises a `+` that would only add a key nothing reads)."""
    from dataclasses import fields, is_dataclass

    from hydra.errors import HydraException

    import mlpbench.conf
    from mlpbench.overrides import did_you_mean
    from mlpbench.schema import OPTIM_SCHEMAS, Config

    folders = [Path(mlpbench.conf.__file__).parent, *([Path(known.config_dir)] if known.config_dir else [])]
    for o in parsed:
        key = o.key_or_group
        if o.is_delete() and "." in key and not o.is_hydra_override() and _schema_key(key):
            # Hydra: "Could not delete from config. 'data.limit' does not exist" (it does).
            refuse(f"~{key}: a key of mlpbench's config cannot be deleted; set it instead ({key}=VALUE, or "
                   f"{key}=null where it allows none; see --help)")
        if o.is_add() or o.is_delete() or o.is_force_add() or o.package:
            continue
        if key.startswith("hydra.launcher.") and key.count(".") == 2:
            _check_launcher_option(key, parsed, known, folders)
        if o.is_hydra_override():
            continue
        if key in GROUPS:
            options = sorted({f.stem for folder in folders for f in (folder / key).glob("*.yaml")})
            try:
                wanted = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
            except HydraException:  # glob(): Hydra matches it against the options itself
                continue
            for value in map(str, wanted):
                if options and value not in options and value != "null":
                    refuse(f"{key}={value}: {key} has no option {value}{did_you_mean(value, options)} "
                           f"(no config {key}/{value}; the options: {', '.join(options)})")
            continue
        # A key of mlpbench's schema: each level must exist (optim.*: in some optimizer's schema).
        node, path = Config, []
        for part in key.split("."):
            if node is None:
                break
            names = {f.name: f.type for f in fields(node)} if is_dataclass(node) else None
            if names is None:
                break  # a mapping (tune.space, callbacks): any key
            if node is Config and part == "optim":
                names_optim = sorted({f.name for schema in OPTIM_SCHEMAS.values() for f in fields(schema)})
                path.append(part)
                rest = key.split(".")[len(path):]
                if rest and rest[0] not in names_optim:
                    refuse(f"{key}: optim has no key {rest[0]}"
                           f"{did_you_mean(rest[0], names_optim, shown={n: f'optim.{n}' for n in names_optim})} (see --help)")
                chosen = None if known.config_name else _optimizer_chosen(parsed, folders[0])
                having = [name for name, schema in OPTIM_SCHEMAS.items() if rest and rest[0] in
                          {f.name for f in fields(schema)}]
                if having and chosen in OPTIM_SCHEMAS and chosen not in having:  # Hydra would advise a '+'
                    refuse(f"{key}: optim={chosen} has no {rest[0]}; {', '.join(having)} "
                           f"{'has' if len(having) == 1 else 'have'} it (optim={having[0]} {o.input_line})")
                break
            if part not in names:
                if not path:  # a top-level name: perhaps a section's key without its section (dept)
                    dotted = [*names, *(f"{name}.{f.name}" for name, kind in names.items()
                                        if (inner := _dataclass_of(kind)) for f in fields(inner))]
                    leaves = {n.rsplit(".", 1)[-1]: n for n in reversed(dotted)}
                    hint = did_you_mean(part, leaves, shown=leaves)
                else:
                    hint = did_you_mean(part, names, shown={n: ".".join([*path, n]) for n in names})
                refuse(f"{key}: {'.'.join(path) or 'the config'} has no key {part}{hint} (see --help)")
            path.append(part)
            field_type = next(f.type for f in fields(node) if f.name == part)
            node = _dataclass_of(field_type)
            written = o.input_line.split("=", 1)[1] if "=" in o.input_line else ""
            if node is None and "list[" in str(field_type) and isinstance(o.value(), (str, int, float)) \
                    and "${" not in written and not o.is_sweep_override():  # Hydra: "str is not a ListConfig"
                refuse(f"{key}={written}: {key} is a list; write {key}={_as_list(written, o.value())}")
            if node is None and "list[" in str(field_type) and o.is_sweep_override() and o.is_discrete_sweep() \
                    and "${" not in written and "(" not in written and not written.lstrip().startswith("["):  # a,b
                refuse(f"{key}={written}: {key} is a list; write {key}=[{written}] for one list, or "
                       f"{key}={','.join(f'[{v}]' for v in written.split(','))} to sweep over lists")


def _schema_key(key: str) -> bool:
    """Whether a dotted key is a field of mlpbench's schema (not one inside a mapping such as
    tune.space, where keys come and go); optim.*: of some optimizer's."""
    from dataclasses import fields, is_dataclass

    from mlpbench.schema import OPTIM_SCHEMAS, Config

    first, *rest = key.split(".")
    if first == "optim":
        return len(rest) == 1 and any(rest[0] in {f.name for f in fields(s)} for s in OPTIM_SCHEMAS.values())
    node = Config
    for part in key.split("."):
        names = {f.name: f.type for f in fields(node)} if node is not None and is_dataclass(node) else None
        if names is None or part not in names:
            return False
        node = _dataclass_of(names[part])
    return True


def _optimizer_chosen(parsed: list, conf: Path) -> str | None:
    """The optimizer a command trains with: its optim= override, else conf/config.yaml's
    default; None where a preset or a sweep of optimizers decides."""
    from omegaconf import OmegaConf

    given = [o for o in parsed if o.key_or_group == "optim" and not o.is_delete()]
    if given:
        return None if given[-1].is_sweep_override() else str(given[-1].value())
    if any(o.key_or_group == "experiment" for o in parsed):
        return None
    defaults = OmegaConf.to_container(OmegaConf.load(conf / "config.yaml").defaults)
    return next((str(d["optim"]) for d in defaults if isinstance(d, dict) and "optim" in d), None)


def _check_sweep_values(override) -> None:
    """A range() or choice() among plain values (model.depth=range(1,3),5), which Hydra parses
    and then fails to list with "Unexpected type annotation: Set[str]". Other values Hydra cannot
    list (range(0,5,0), a glob) are named where the sweep is checked (sweep.empty_sweeps)."""
    from omegaconf.errors import ValidationError

    if not override.is_sweep_override():
        return
    try:
        list(override.sweep_string_iterator())
    except ValidationError:
        key = override.key_or_group
        refuse(f"{override.input_line}: a range() or choice() is the whole of a key's values, not one of several; "
               f"list them one by one ({key}=a,b,c), or give one range()")
    except Exception:  # noqa: BLE001 - said later, with the sweep's own message
        pass


def _as_list(written: str, value) -> str:
    """One value given to a list key, as the list meant: '[a]' unquoted, a quoted name kept in its
    quotes, true or null quoted (a column of that name), anything else in brackets."""
    inner = written.strip("'\"")
    if inner.startswith("["):
        return inner
    if written[:1] in ("'", '"') or not isinstance(value, bool):
        return f"[{written}]"
    return f"['{written}']"


def _check_launcher_option(key: str, parsed: list, known, folders: list[Path]) -> None:
    """`hydra.launcher.NAME=...` where the launcher chosen on the command line (hydra/launcher=,
    the stacked one by default) has no option NAME: named with the closest, before Hydra's
    message (which advises a `+` that would add an option the launcher never reads)."""
    from omegaconf import OmegaConf

    from mlpbench.overrides import did_you_mean

    if known.config_name:
        return  # another primary config may choose another launcher: Hydra's own message then
    chosen = next((str(o.value()) for o in reversed(parsed) if o.key_or_group == "hydra/launcher"), "stacked")
    found = [f / "hydra" / "launcher" / f"{chosen}.yaml" for f in folders]
    spec = next((OmegaConf.load(f) for f in found if f.is_file()), None)
    if spec is None or "defaults" in spec:  # Hydra's own launchers, or built on one: Hydra knows their options
        return
    options = [k for k in spec if k != "_target_"]
    name = key.split(".")[2]
    if name not in options:
        refuse(f"{key}: hydra/launcher={chosen} has no option {name}{did_you_mean(name, options)} "
               f"(its options: {', '.join(options)})")


def _check_reused_run_folder(known) -> None:
    """hydra.run.dir naming a folder that holds another config's run: refused (sweep.check_reused_run)."""
    from mlpbench.sweep import check_reused_run, reused_run_folder

    overrides = list(known.overrides or [])
    found = reused_run_folder(overrides)
    if found is None:
        return
    from omegaconf import OmegaConf

    from mlpbench.schema import ConfigError, checked

    try:  # as the run records it: checked, its derived values filled in (Hydra's section aside)
        composed = _composed(known, overrides, known.config_name or "config", received=True)
        job = OmegaConf.masked_copy(composed, [k for k in composed if k != "hydra"])
        config = OmegaConf.to_container(checked(job), resolve=True, enum_to_str=True)
    except Exception:  # a config error: the run names it, as without an earlier run
        return
    try:
        check_reused_run(*found, config)
    except ConfigError as e:
        refuse(str(e))


def _dataclass_of(annotation):
    """The dataclass a schema field holds, or None (a plain value or a mapping)."""
    from dataclasses import is_dataclass

    import mlpbench.schema as schema

    if isinstance(annotation, str):  # postponed annotations: the name in mlpbench.schema
        annotation = getattr(schema, annotation, None)
    return annotation if is_dataclass(annotation) else None


def cli() -> None:
    try:
        _cli()
    except SystemExit as e:
        if e.code in (130, 143):
            _say_report_so_far()
        _exit_now(e.code)
    except KeyboardInterrupt:  # outside a run's training (a run keeps what it trained, and says so)
        print("mlpbench: interrupted (Ctrl-C). Runs that had started keep what they trained: rerun the same "
              "command with resume=true to continue them", file=sys.stderr)
        _say_report_so_far()
        _exit_now(130)
    _exit_now(0)


def _say_report_so_far() -> None:
    """An interrupted sweep ends without its report (a stop should be quick): how to make it."""
    from mlpbench.sweep import started_sweeps

    for folder in started_sweeps:
        if folder.is_dir() and any(folder.glob("*/result.json")):
            print(f"The report of the runs so far: python -m mlpbench.report {folder}", file=sys.stderr)


def _exit_now(code) -> None:
    """End the process without the interpreter's teardown (console.exit_at_once). What an exit
    must do still happens: exit functions run, logs and output are flushed. An exception other
    than SystemExit never gets here: Python reports it as usual. Where other threads or processes
    are still running (joblib's workers), the exit is Python's own, which waits for them first."""
    import atexit
    import multiprocessing
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others or multiprocessing.active_children() or "joblib" in sys.modules:
        sys.exit(code)

    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python does it
        print(code, file=sys.stderr)
        code = 1
    exit_at_once(code or 0)


def _cli() -> None:
    from hydra.errors import HydraException

    from mlpbench.overrides import command_line, parse
    from mlpbench.run import main, note_folders_before, print_help

    known = command_line(sys.argv[1:])
    stray = [a for a in known.unread if not a.startswith("-")]
    if stray:  # Hydra's own message would be argparse's usage
        refuse(f"{stray[0]}: the overrides must come together, after the flags (-m, --cfg job, --config-dir DIR), "
               "as in: mlpbench -m model.depth=2,4 seed=1,2")
    if known.multirun and known.cfg:  # Hydra: "Only one of --run, --multirun, --cfg ... can be specified", traced
        refuse(f"-m with --cfg {known.cfg}: --cfg shows one run's config; drop -m and give one value per key")
    overrides = list(known.overrides or [])
    for arg in overrides:
        key = arg.partition("=")[0]
        if key.lstrip("~") in ("hydra/launcher", "hydra/sweeper") and arg.startswith("~"):
            refuse(f"{arg}: a sweep needs its {key[7:]}; choose another ({key.lstrip('~')}=basic, for one)")
        if arg.startswith("+experiment="):
            # Hydra refuses to append a group the defaults list already names (experiment: null).
            refuse(f"{arg}: presets are chosen with {arg[1:]} (no '+')")
        if arg.startswith("="):
            refuse(f"{arg}: an override is KEY=VALUE, e.g. model.depth=4")
    for flag, given, why in (("--config-path", known.config_path, "it replaces mlpbench's own configs; add a folder "
                                                                  "of configs with --config-dir DIR instead"),
                             ("--experimental-rerun", known.experimental_rerun, "it unpickles a file, which can run "
                              "any code; rerun a run with the overrides its RUN/.hydra/overrides.yaml lists")):
        if given is not None:
            refuse(f"{flag}: not supported by mlpbench: {why}")
    parsed = []
    for arg in overrides:  # each alone: one Hydra cannot read (Hydra names it) leaves the others checked
        try:
            parsed += parse([arg])
            _check_sweep_values(parsed[-1])
        except HydraException as e:
            key, _, value = arg.partition("=")
            if value[:1] in ("'", '"'):
                continue  # Hydra's own message
            listed = value.startswith("[") and value.endswith("]")  # the quotes go on each item
            items = ",".join(f"'{v.strip()}'" for v in (value[1:-1] if listed else value).split(","))
            quoted = (f"write \"{key}={f'[{items}]' if listed else items}\" (the double quotes keep the single ones "
                      "from the shell)")
            if not value.isascii():  # Hydra's lexer reads only ASCII unquoted
                refuse(f"{arg}: Hydra reads a value with letters beyond ASCII (é, ß, 中) only in quotes; {quoted}")
            if "Unknown function" in str(e) and key.lstrip("+") in COLUMN_KEYS:  # Price ($): a call of Price
                refuse(f"{arg}: Hydra reads NAME(...) as a function; a column's name with parentheses is quoted: "
                       f"{quoted}")
            # ~/x.csv, run#1.csv, a[1].csv: names with characters of Hydra's grammar. Not a typo of a
            # list or sweep ([a,b  a.csv,): Hydra's message points at that.
            names = [n.strip() for n in (value[1:-1] if listed else value).split(",")]
            if (key.lstrip("+") in (*PATH_KEYS, *COLUMN_KEYS) and "'" not in value
                    and any(c in GRAMMAR_CHARACTERS for n in names for c in n)
                    and all(n and n.count("[") == n.count("]") for n in names)):
                refuse(f"{arg}: Hydra cannot read this value unquoted (~ # & [ ] = and the like are its grammar's); "
                       f"a file's or column's name is quoted: {quoted}")
    _check_names(parsed)
    _check_choices(parsed, known)
    _check_received_config(known)
    if not (known.multirun or known.help or known.cfg):
        _check_reused_run_folder(known)
    if known.help and not (known.config_dir or known.config_name):  # other configs: Hydra's own --help
        print_help(overrides)
        return
    _register_plugins()
    if not known.multirun:
        note_folders_before(list(known.overrides or []))
    main()


if __name__ == "__main__":
    cli()
