"""`python -m mlpbench`: the Hydra app. One job = one training run, recorded in result.json.

torch and Lightning are imported only once a run starts, so `--help`, `--cfg` and
config errors answer at once. In a sweep, a run that fails is recorded and the next one
starts; what a rerun does with runs already there is mlpbench/sweep.py's.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from mlpbench import sweep, table
from mlpbench.checkpoints import usable_checkpoint
from mlpbench.console import print_out, refuse
from mlpbench.files import DISK_ERRORS
from mlpbench.memory import check_memory
from mlpbench.overrides import TRIAL_CALLBACK, shown
from mlpbench.results import RESULT_FILE, RunRecord, Status, read_result, recorded_in, run_log, score_in
from mlpbench.schema import ConfigError, checked, device_count, register_configs
from mlpbench.trainer import config_callbacks, make_trainer, quiet_lightning

log = logging.getLogger("mlpbench")
# conf/ ships inside the package as mlpbench.conf (pyproject.toml): found in any install.
CONF_MODULE = "mlpbench.conf"
register_configs()
# conf/hydra/launcher/joblib.yaml takes the plugin's option name on purpose (hydra/launcher=joblib
# gets mlpbench's launcher); Hydra warns that it matches the plugin's schema, in every worker.
warnings.filterwarnings("ignore", message=r"(?s).*'hydra/launcher/joblib' is validated against ConfigStore schema")


# ---------------------------------------------------------------------------- one run


def compose_config(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """The config `python -m mlpbench OVERRIDES` runs with, composed without running it."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=with_hydra)


# A test split this small is a truth table (XOR): its outputs are worth reading row by row.
MAX_PREDICTION_ROWS = 16


def predictions(logits, x_test, y_test, encoding: dict[str, Any] | None = None, run: str | None = None,
                **log_extra) -> list[dict[str, Any]]:
    """The XOR tutorial's last step: the network's output (`logits` on `x_test`) for each row of
    the table (a single output unit's sigmoid, else the class probabilities), logged. A table's
    rows (`encoding`, data=table's) read as its file does: inputs as its columns' values, classes
    by name, a regression's value and target in the target's unit."""
    import torch

    from mlpbench.table import decode, is_regression, unscale_target

    regression = is_regression(encoding)
    if regression:
        outputs, y_test = (unscale_target(t.float().cpu().numpy(), encoding) for t in (logits, y_test))
    else:
        outputs = (torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)).cpu()
    inputs = decode(x_test.cpu().numpy(), encoding) if encoding else x_test.tolist()
    names = None if regression or not encoding else encoding["classes"]
    rows = []
    lines = [f"Run {run}: predictions:" if run else "Predictions:"]  # a stack's runs print theirs in turn
    for x, y, out in zip(inputs, y_test.tolist(), outputs.tolist()):
        # a category no training row had is all zeros: its name is lost
        shown_x = (" ".join(f"{k}={'(unseen)' if v is None else v}" for k, v in x.items())
                   if isinstance(x, dict) else x)
        if names:
            # one sigmoid unit (mse on two classes) gives p(second class)
            p = out if len(out) > 1 else [1 - out[0], out[0]]
            predicted = names[max(range(len(p)), key=p.__getitem__)]
            rows.append({"input": x, "target": names[y], "output": out, "predicted": predicted})
            lines.append(f"  {shown_x} -> {predicted} (p {max(p):.4f}; target {names[y]})")
        else:
            rows.append({"input": x, "target": y, "output": out})
            lines.append(f"  {shown_x} -> {out[0]:.4g}  (target {y:.4g})" if regression
                         else f"  {shown_x} -> {' '.join(f'{o:.4f}' for o in out)}  (target {y})")
    log.info("\n".join(lines), extra=log_extra)
    return rows


def start_record(run_dir: Path, overrides: list[str], cfg: DictConfig, position: dict | None, previous: dict | None,
                 **fields: Any) -> RunRecord:
    """A run's result.json as it starts (alone or a replica of a stack): its config, and where it
    continues an earlier attempt's checkpoint (`position`), that attempt's seconds and resumptions
    (`previous`, its result.json)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    previous = (previous or {}) if position else {}
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, overrides, config, seconds_before=previous.get("seconds") or 0.0)
    # Which file (and which content of it) the run reads: a resume checks it is still the same.
    record.update(**fields, **({"files": files} if (files := table.files_read(cfg.data)) else {}))
    if position:
        record.update(resumed=[*previous.get("resumed", []), position])
    return record


def end_record(record: RunRecord, status: Status, diverged_at: dict | None, trainer, devices: int) -> None:
    """A run's result.json as it ends: how, and where it trained."""
    import torch

    record.update(status=status, diverged_at=diverged_at, device=str(trainer.strategy.root_device), devices=devices,
                  threads=torch.get_num_threads(), cpu_kernels=torch.backends.cpu.get_cpu_capability())
    record.save()


def keep_interrupted(records: list[RunRecord], stop: BaseException, cfg: DictConfig, message: str,
                     *args: Any) -> NoReturn:
    """Ctrl-C or SIGTERM during training (Lightning turns them into SystemExit after its graceful
    shutdown): the runs recorded as interrupted, `message` logged and how to continue them (its
    `{epochs}`: the epochs kept, known once the records are saved), and the shell's code for
    death by SIGTERM or SIGINT, so that a scheduler sees what happened."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    for record in records:
        record.update(status=Status.interrupted)
        record.save()
    # A search's trial continues when its command runs again: resume=true is for runs and sweeps.
    how = ("to continue the search" if TRIAL_CALLBACK in (cfg.get("callbacks") or {})
           else f"with resume=true to continue {'it' if len(records) == 1 else 'them'}")
    log.warning(message.replace("{epochs}", str(records[0].payload["epochs"])) + f" Rerun the same command {how}.",
                *args)
    raise SystemExit(143 if isinstance(stop, SIGTERMException) else 130) from None


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], experiment: str | None = None,
          resume_from: Path | None = None, previous: dict | None = None, threads: int | None = None,
          callbacks: tuple = (), job: int | None = None) -> dict[str, Any]:
    """Train and test one configuration; returns the result.json payload.

    `resume_from`: a checkpoint of this run to continue from (epoch, optimizer, RNG, history),
    and `previous` the result.json of the attempt that wrote it.
    `callbacks`: more Lightning callbacks (the benchmark's epoch clock), besides those the config
    names in `callbacks.*` (a search trial's pruning); one that ends the run early says why in its
    `stop_status` (Status.pruned), which becomes the run's.
    Raises ConfigError (a DataError too) for settings that cannot run, before anything is written.
    """
    import lightning.pytorch as pl
    import torch
    from mlpbench.data import MLPDataModule, make_splits
    from mlpbench.hparams import run_hparams, run_logger, write_session_end, write_session_start
    from mlpbench.model import count_params, summary
    from mlpbench.module import AfterEpochMetrics, MLPModule, score_name

    quiet_lightning()
    if threads:
        torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, verbose=False)
    splits = make_splits(cfg.data, cfg.seed)
    found = usable_checkpoint(resume_from, cfg.model) if resume_from else None
    if resume_from and found is None:  # unusable: the run starts over rather than stay stuck
        sweep.clear_run(run_dir)
    resume_from, resumed_at = found or (None, None)

    # job: its place in the sweep, for the report's order
    record = start_record(run_dir, overrides, cfg, resumed_at, previous, experiment=experiment, job=job)
    # On resume, TensorBoard drops what a killed attempt logged past the checkpoint.
    logger = run_logger(run_dir, purge_step=resumed_at["step"] if resumed_at else None)
    callbacks = [*callbacks, *config_callbacks(cfg, overrides)]
    stoppers = [cb for cb in callbacks if hasattr(cb, "stop_status")]
    callbacks = [AfterEpochMetrics(lambda: record.save_every(1.0)), *callbacks]
    if cfg.diagnostics:
        from mlpbench.diagnostics import Diagnostics

        callbacks.append(Diagnostics(cfg.trainer.log_every_n_steps))
    trainer = make_trainer(cfg.trainer, run_dir, logger, *callbacks, score=score_name(splits.regression))
    record.enabled = trainer.is_global_zero
    if trainer.world_size > 1 and trainer.strategy.root_device.type == "cpu":
        torch.set_num_threads(max(1, sweep.cores() // trainer.world_size))  # DDP on CPU: share the cores
    check_memory(cfg, splits)
    module = MLPModule(cfg.model, cfg.optim, splits.num_features, splits.num_classes,
                       gradient_clip_val=cfg.trainer.gradient_clip_val,
                       log_every_n_epochs=cfg.trainer.log_every_n_epochs, regression=splits.regression)
    params = count_params(module.model)
    if record.enabled:
        log.info("Run %s: %s (%s params)", run_dir.name, shown(overrides), f"{params['total']:,}")
        # The summary goes to every run's log file; on the console once per sweep, not once per run.
        log.info("%s", summary(module.model, splits.num_features), extra={"console": job in (None, 0)})
    if resumed_at and record.enabled:
        log.info("Run %s: continuing after epoch %d (step %d) from %s", run_dir.name, resumed_at["epoch"],
                 resumed_at["step"], resume_from)
    record.source = module
    record.update(params=params, data=splits.sizes(), **({"table": splits.encoding} if splits.encoding else {}))
    try:
        record.save()
        if record.enabled:  # HParams lists a run from its start, with what was swept first
            write_session_start(logger.experiment, run_hparams(record.payload["config"], overrides, experiment))
        datamodule = MLPDataModule(splits, cfg.data.batch_size, cfg.seed, cfg.trainer.steps_per_chunk,
                                   order=cfg.data.order)
        # weights_only: a checkpoint is tensors and plain data; unpickling code from a sweep folder
        # someone sent would run it.
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None,
                    weights_only=True)
        stopped = next((cb.stop_status for cb in stoppers if cb.stop_status), None)
        if module.diverged_at is None and stopped is None:
            trainer.test(module, datamodule=datamodule, verbose=False)
            if len(splits.y_test) <= MAX_PREDICTION_ROWS:
                module.eval()
                with torch.no_grad():
                    logits = module(splits.x_test.to(module.device, module.dtype))  # 64-true: float64
                record.update(predictions=predictions(logits, splits.x_test, splits.y_test, splits.encoding))
        status = Status.diverged if module.diverged_at is not None else stopped or Status.ok
        end_record(record, status, module.diverged_at, trainer, devices=trainer.world_size)
    except (KeyboardInterrupt, SystemExit) as e:
        keep_interrupted([record], e, cfg, "Run %s interrupted after {epochs} epochs; kept %s and %s.", run_dir.name,
                         record.path, run_dir / "checkpoints")
    except Exception as e:
        record.fail(e)
        logger.close_failed()
        raise

    if not record.enabled:  # a DDP process other than rank 0: rank 0 reports the run
        return record.payload
    write_session_end(logger.experiment, status)
    logger.close()
    log.info("%s on %s -> %s", run_line(run_dir.name, record.payload), record.payload.get("device", "?"), record.path)
    return record.payload


def run_line(name: str, payload: dict[str, Any]) -> str:
    """Run NAME ok: val_acc 0.9, test_acc 0.9, 3 epochs in 2.0 s (r2 for a regression; no
    test_acc where the run validated on the test split, data.val_split=null: it is val_acc)."""
    metrics, epochs = payload["metrics"], payload["epochs"]
    score = score_in(metrics)
    validated_on_test = (payload.get("config") or {}).get("data", {}).get("val_split", 0.2) is None
    tested = metrics.get(f"test_{score}")
    # Not tested (diverged, pruned or stopped runs are not): said as such, not as nan.
    test = "" if validated_on_test else (f", test_{score} {tested:.4f}" if tested is not None and math.isfinite(
        tested) else ", not tested")
    return (f"Run {name} {payload['status']}: val_{score} {metrics[f'val_{score}']:.4f}{test}, {epochs} "
            f"{'epoch' if epochs == 1 else 'epochs'} in {payload['seconds']:.1f} s")


# ---------------------------------------------------------------------------- the Hydra app


# The nearest folder above a single run's that existed before Hydra made the run's (noted by
# note_folders_before): a refused run removes the empty folders below it, which the command made
# (outputs/run/<date>), and none of the user's.
_existed_above: Path | None = None


def note_folders_before(overrides: list[str]) -> None:
    """Before Hydra makes a single run's folder: the nearest existing folder above where it will
    be (hydra.run.dir as given, else outputs/run/<today>)."""
    global _existed_above
    from mlpbench.overrides import parse

    try:
        given = [o for o in parse(overrides) if o.key_or_group == "hydra.run.dir" and not o.is_sweep_override()]
    except Exception:  # Hydra names what it cannot read
        return
    folder = str(given[-1].value()) if given else str(Path("outputs/run") / time.strftime("%Y-%m-%d") / "_")
    if "${" in folder:
        return
    target = (Path.cwd() / folder).resolve()
    _existed_above = next((p for p in target.parents if p.is_dir()), None)


def _discard_unstarted(run_dir: Path, job_name: str) -> None:
    """A single run refused by a config check: remove exactly what Hydra made for it (.hydra/'s
    three files and the run's empty log), then the folder if that left it empty, so that no
    folder without a result looks like a run. Anything else in it stays, and an earlier run's
    folder (one with a result or checkpoints) is left as it is."""
    logging.shutdown()  # closes the log file Hydra opened in it
    checkpoints = run_dir / sweep.LAST_CHECKPOINT.parent  # made empty by prepare()
    if (run_dir / "result.json").exists() or any(checkpoints.glob("*")):
        return  # an earlier run's folder (resume=true found it): its record stays for the next resume
    made = [run_dir / ".hydra" / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    made.append(run_dir / ".run.lock")  # sweep.SweepSummary's, held until this process ends
    log_file = run_log(run_dir, job_name=job_name)
    if log_file.is_file() and not log_file.stat().st_size:
        made.append(log_file)
    for path in made:
        path.unlink(missing_ok=True)
    # Then the folders above it that this command made (outputs/run/<date>), left empty.
    existed = _existed_above
    above = [p for p in run_dir.resolve().parents if existed is not None and p.is_relative_to(existed) and p != existed]
    for folder in (checkpoints, run_dir / ".hydra", run_dir, *above):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            return


def _record_failure(run_dir: Path, overrides: list[str], cfg: DictConfig, error: BaseException) -> None:
    """Record a run that failed before or while training, unless train() already recorded this
    error, or the run had finished (a later stack of its group failed: its own result stays). A
    resumed run's earlier failure (its worker died) is replaced by the new one."""
    if (run_dir / RESULT_FILE).resolve() in recorded_in(error):
        return
    previous = read_result(run_dir)
    if previous is not None and Status(previous["status"]).finished:
        return
    error = _underlying(error)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except Exception:  # the interpolation that failed it: kept as written
        config = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    RunRecord(run_dir, overrides, config).fail(error)


def print_help(overrides: list[str]) -> None:
    """`--help`: conf/config.yaml's hydra.help template with the composed config.

    Hydra's own --help fills in every config group of every plugin, deep-copying its config
    store a hundred times (a second, with the launchers installed); this prints the same page
    from one composition. `--hydra-help` is still Hydra's."""
    import string

    try:
        cfg = compose_config(overrides, with_hydra=True)
    except Exception as e:  # a bad override: say which, as a run would
        refuse(str(e))
    template = cfg.hydra.help.template
    with open_dict(cfg):
        del cfg["hydra"]
    print_out(string.Template(template).safe_substitute(CONFIG=OmegaConf.to_yaml(cfg)) + "\n")


@dataclass
class Job:
    """One run as Hydra set it up: its config (resolved and checked), folder and plan."""

    cfg: DictConfig
    run_dir: Path
    overrides: list[str]
    plan: sweep.RunPlan
    experiment: str | None
    num: int | None  # its place in the sweep; None for a single run
    threads: int | None
    position: dict[str, int] | None = None  # where plan.checkpoint stands, once read (stacked)


def train_job(job: Job) -> dict[str, Any]:
    """train() for a prepared job: its config, folder, and the checkpoint its plan continues."""
    return train(job.cfg, job.run_dir, job.overrides, job.experiment, resume_from=job.plan.checkpoint,
                 previous=job.plan.previous, threads=job.threads, job=job.num)


def prepare(cfg: DictConfig) -> Job | None:
    """The run Hydra's job `cfg` asks for, checked; None where there is nothing to train: the
    run is finished already (skipped), or its config is refused (in a sweep: recorded as
    failed, and the sweep goes on; a single run exits 2)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    in_sweep = hc.mode == RunMode.MULTIRUN
    # Lightning's DDP starts ranks 1.. as this same command: they follow rank 0's plan.
    ddp_child = sweep.is_ddp_rank()
    # The sweep's folder as Hydra made it, from where the command started (hydra.job.chdir=true moves).
    sweep_dir = Path(hc.runtime.cwd) / hc.sweep.dir if in_sweep else None
    if in_sweep and not run_dir.resolve().is_relative_to(sweep_dir.resolve()):
        # hydra.sweep.subdir resolved per run (an interpolation) to a folder outside the sweep:
        # said on the console (its log file goes with the folder Hydra made for it)
        print(f"mlpbench: error: run {run_dir}: not run: hydra.sweep.subdir puts it outside its sweep folder "
              f"{hc.sweep.dir}", file=sys.stderr)
        _discard_unstarted(run_dir, hc.job.name)
        return None
    plan = sweep.plan_run(run_dir, clear=not ddp_child)
    if plan.skip:
        log.info("Run %s: already %s in %s; skipped", run_dir.name, plan.skip, run_dir)
        return None
    try:
        if plan.checkpoint and plan.previous:  # continued: on the data it began with
            sweep.check_run_files(plan.previous, run_dir)
        cfg = checked(cfg)
        if in_sweep and device_count(cfg.trainer.devices) > 1:
            raise ConfigError(f"trainer.devices={cfg.trainer.devices}: a DDP run starts its own processes; "
                              "run it on its own, without -m (a sweep runs each run on one device)")
    except ConfigError as e:
        if not in_sweep:
            _discard_unstarted(run_dir, hc.job.name)
            refuse(str(e))
        # One bad grid point must not end the sweep: record it, go on to the next.
        _record_failure(run_dir, overrides, cfg, e)
        log.error("Run %s: not run: %s", run_dir.name, e)
        return None
    checkpoints = run_dir / sweep.LAST_CHECKPOINT.parent
    try:  # made now: a folder one run cannot write (its checkpoints a file) fails that run, not its stack-mates
        checkpoints.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        message = f"run {run_dir.name}: cannot make {checkpoints}: {e.strerror}"
        if not in_sweep:
            refuse(message)
        _record_failure(run_dir, overrides, cfg, type(e)(message))
        log.error("Run %s: not run: %s", run_dir.name, message)
        return None
    threads = sweep.threads_per_run(hc.launcher)
    if threads:  # hydra/launcher=joblib (a search's tune.n_jobs): runs side by side
        if cfg.trainer.enable_progress_bar is None:
            cfg.trainer.enable_progress_bar = False  # they would draw over each other's bars
        cfg = sweep.spread_over_gpus(cfg, sweep_dir if in_sweep else run_dir)  # each worker process a GPU
    return Job(cfg, run_dir, overrides, plan, hc.runtime.choices.get("experiment"),
               hc.job.num if in_sweep else None, threads)


def _underlying(error: BaseException) -> BaseException:
    """A file error a library wrapped in its own (Lightning's logger: "you tried to log 0.12 which
    is currently not supported", for an events file whose folder was deleted): the file error."""
    cause = error.__cause__
    return cause if not isinstance(error, OSError) and isinstance(cause, OSError) else error


def record_failure(job: Job, error: BaseException, say: bool = True) -> None:
    """A run that failed: its record says why, its log has the traceback (not for a config
    that Lightning or the memory check refused: the message says it all)."""
    run_dir = job.run_dir
    try:
        _record_failure(run_dir, job.overrides, job.cfg, error)
    except OSError:
        pass  # the disk that failed the run may refuse its record too; the log says why
    if say:  # else the caller has said it, once for several runs
        say_failure([run_dir], error)


def say_failure(run_dirs: list[Path], error: BaseException, **log_extra) -> None:
    """Why runs failed, once: a config Lightning or the memory check refused by its message, a
    disk that failed them by the path it could not write, anything else with its traceback (in
    the runs' logs)."""
    names = ", ".join(d.name for d in run_dirs)
    runs = f"Run {names}" if len(run_dirs) == 1 else f"Runs {names}"
    error = _underlying(error)
    if isinstance(error, ConfigError):  # Lightning's checks, memory: found once training was set up
        log.error("%s: not run: %s", runs, error, extra=log_extra)
    elif isinstance(error, FileNotFoundError) and not all(d.is_dir() for d in run_dirs):
        gone = [str(d) for d in run_dirs if not d.is_dir()]
        log.error("%s failed: %s was removed while it trained; rerun the command to train it again", runs,
                  ", ".join(gone), extra=log_extra)
    elif isinstance(error, OSError) and error.errno in DISK_ERRORS:
        where = error.filename or (run_dirs[0] if len(run_dirs) == 1 else run_dirs[0].parent)
        log.error("%s failed: cannot write %s: %s. Free some space (or fix the permission), then rerun the same "
                  "command with resume=true: the runs continue from their last checkpoint", runs, where,
                  error.strerror, extra=log_extra)
    else:  # the traceback goes to the runs' logs
        log.error("%s failed: %s: %s", runs, type(error).__name__, error, exc_info=error, extra=log_extra)


@hydra.main(version_base="1.3", config_path=f"pkg://{CONF_MODULE}", config_name="config")
def main(cfg: DictConfig) -> None:
    job = prepare(cfg)
    if job is None:
        return
    try:
        train_job(job)
    except Exception as e:
        if job.num is None and isinstance(e, ConfigError):  # found once training was set up
            _discard_unstarted(job.run_dir, HydraConfig.get().job.name)
            refuse(str(e))
        record_failure(job, e)
        if job.num is None:
            sys.exit(1)
