"""What runs and sweeps leave to be read back: result.json, what one run did, written
atomically after every epoch and at the end; multirun.yaml, Hydra's record of a sweep's config.
Each has one reader here, which passes over (and names) a file it cannot use.

No torch here: the sweep summary and reports read results without loading a framework.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from mlpbench.files import DISK_ERRORS, write_json_atomic

RESULT_FILE = "result.json"
SWEEP_CONFIG = "multirun.yaml"  # Hydra writes it into every sweep folder
SWEEP_LOCK = ".sweep.lock"  # held by the process running the sweep (sweep.SweepSummary)
# seed=auto's record in its sweep folder: its rounds' settings and why they ended. Kept apart from
# multirun.yaml, which a later sweep into the folder (more seeds given by hand) writes over: the
# runs the rounds chose stay judged by the test of rounds.
ROUNDS_FILE = "rounds.json"
log = logging.getLogger("mlpbench")


class Status(str, Enum):
    """How a run stands, as result.json's `status` says it."""

    running = "running"  # training, or killed while training (kill -9 leaves this)
    ok = "ok"
    diverged = "diverged"  # a NaN/inf loss stopped it: a result, not an error
    pruned = "pruned"  # a search stopped it early
    interrupted = "interrupted"  # Ctrl-C or SIGTERM: continues with resume=true
    failed = "failed"

    @property
    def finished(self) -> bool:
        """A rerun keeps these as they are."""
        return self in (Status.ok, Status.diverged, Status.pruned)

    def __str__(self) -> str:
        return self.value


def lower_is_better(metric: str) -> bool:
    """A loss or an error (val_loss, val_rmse); accuracies and r2 are higher for better."""
    return metric.endswith(("loss", "rmse"))


def score_in(names) -> str:
    """What a run's history or metrics (their keys) score it by besides the loss: "acc", or a
    regression's "r2" (mlpbench.module.score_name names them so)."""
    return "r2" if "val_r2" in names else "acc"


def final_metrics(history: dict[str, list[float]], test_metrics: dict[str, float],
                  target_scale: Optional[list[float]] = None) -> dict[str, Any]:
    """result.json's metrics; a regression's (its history has val_r2, its table a target_scale)
    are named r2 where a classifier's say acc, and val_rmse and test_rmse are in the target's unit."""
    def last(key: str) -> float:
        return history[key][-1] if history.get(key) else math.nan

    score = score_in(history)
    finite = [(value, i) for i, value in enumerate(history.get(f"val_{score}", [])) if math.isfinite(value)]
    # The first epoch that reached the best accuracy (r2).
    best, best_index = max(finite, key=lambda t: (t[0], -t[1])) if finite else (math.nan, None)
    metrics = {
        "train_loss": last("train_loss"),
        f"train_{score}": last(f"train_{score}"),
        "val_loss": last("val_loss"),
        f"val_{score}": last(f"val_{score}"),
        f"best_val_{score}": best,
        "best_epoch": None if best_index is None else best_index + 1,  # 1-based, as Keras prints epochs
        "test_loss": test_metrics.get("test_loss", math.nan),
        f"test_{score}": test_metrics.get(f"test_{score}", math.nan),
        # diagnostics=true: averaged over the run.
        "grad_ratio": _mean(history.get("grad_ratio")),
        "first_grad_norm": _mean(history.get("first_grad_norm")),
    }
    if score == "r2" and target_scale:  # the loss is the MSE of the standardised target
        for split in ("val", "test"):
            mse = metrics[f"{split}_loss"]
            metrics[f"{split}_rmse"] = math.sqrt(mse) * target_scale[1] if mse >= 0 else math.nan
    return metrics


def _mean(values: Optional[list[float]]) -> Optional[float]:
    finite = [v for v in values or [] if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def run_log(run_dir: Path, config: Any = None, job_name: Optional[str] = None) -> Path:
    """A run's log file: <hydra.job.name>.log in its folder (Hydra's job name, `run` after
    mlpbench/run.py, unless the command set hydra.job.name); from `job_name`, or else from
    `config`, a composed config."""
    from omegaconf import OmegaConf

    if job_name is None and config is not None:
        job_name = OmegaConf.select(config, "hydra.job.name", default=None)
    return Path(run_dir) / f"{job_name or 'run'}.log"


def recorded_in(error: BaseException) -> set[Path]:
    """The result.json files that recorded this error (RunRecord.fail)."""
    try:
        return error.__dict__.setdefault("_mlpbench_recorded_in", set())
    except AttributeError:  # no __dict__ (a C extension's exception): never noted
        return set()


class RunRecord:
    """The result.json payload of one run, saved whenever something worth keeping happened."""

    def __init__(self, run_dir: Path, overrides: list[str], config: dict, seconds_before: float = 0.0):
        self.path = run_dir / RESULT_FILE
        self.started = time.time()
        self.seconds_before = seconds_before  # earlier attempts of a resumed run
        # Runs trained together as one stacked model (mlpbench/stacked.py): each is charged its
        # share of the wall time, so that a sweep's runs add up to what its training took.
        self.sharing = 1
        self.payload: dict[str, Any] = {
            "status": Status.running,
            "overrides": overrides,
            "config": config,
            "metrics": {},
            "history": {},
            "params": {},
            "data": {},
            "epochs": 0,
            "seconds": 0.0,
        }

        # Anything with `history` and `test_metrics` (the LightningModule), read on every save.
        self.source: Optional[Any] = None
        self.enabled = True  # False in DDP processes other than rank 0: one writer per run
        self._last_save = 0.0

    def update(self, **fields: Any) -> None:
        self.payload.update(fields)

    def fail(self, error: BaseException) -> None:
        self.update(status=Status.failed, error={"type": type(error).__name__, "message": str(error)})
        # Noted on the error: a caller that records failures (run.record_failure) leaves this
        # record, which has the run's epochs, as it is, and still records any other failure.
        recorded_in(error).add(self.path.resolve())
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            self.payload["error"]["resumable"] = True  # the disk failed, not the run: it continues
        try:
            self.save()
        except OSError:
            if not isinstance(error, OSError):
                raise  # a disk that fails the record, not the run: that is the news
            # The disk that failed the run (full) has no room for a second copy to rename: the
            # record is rewritten in place, in the blocks it has, as much as fits.
            self._overwrite_in_place()

    def _overwrite_in_place(self) -> None:
        short = {k: self.payload[k] for k in ("status", "error", "overrides", "epochs", "seconds") if k in self.payload}
        text = json.dumps(short, indent=1) + "\n"
        try:
            with open(self.path, "r+") as f:
                f.write(text)
                f.truncate()
        except OSError:
            pass  # nothing more can be written there; the caller's message says where

    def save(self) -> None:
        if not self.enabled:
            return
        if self.source is not None:
            history = {k: list(v) for k, v in self.source.history.items()}
            self.payload.update(history=history, epochs=len(history.get("train_loss", [])),
                                metrics=final_metrics(history, self.source.test_metrics,
                                                      (self.payload.get("table") or {}).get("target_scale")))
        self.payload["seconds"] = round(self.seconds_before + (time.time() - self.started) / self.sharing, 3)
        write_json_atomic(self.path, self.payload)
        self._last_save = time.monotonic()

    def save_every(self, seconds: float) -> None:
        """Save unless the last save is recent: rewriting the whole history after every epoch
        of a 1000-epoch run costs more than the training. A crash still saves at once."""
        if time.monotonic() - self._last_save >= seconds:
            self.save()


def flat_keys(config: dict, leaf=lambda value: value, prefix: str = "") -> dict[str, Any]:
    """{model: {units: 128}} -> {"model.units": leaf(128)}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_keys(value, leaf, name + "."))
        else:
            flat[name] = leaf(value)
    return flat


def natural_key(text: str) -> list:
    """Sort key that puts model.depth=2 before model.depth=10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def read_result(run_dir: Path) -> Optional[dict]:
    """A run folder's result.json, or None where it has none that can be used: missing, not
    JSON, or not a run's record (`result_problem`); the log names such a file once."""
    path = Path(run_dir) / RESULT_FILE
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        _unusable(path, f"not readable JSON ({' '.join(str(e).split())[:120]})")
        return None
    problem = result_problem(result)
    if problem is not None:
        _unusable(path, problem)
        return None
    return result


_warned: set[Path] = set()


def _unusable(path: Path, why: str) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("%s is passed over: %s", path, why)


def _is_number(value: Any) -> bool:
    """null, or an int or float a report can compute with (not 10**400: float() overflows)."""
    if value is None:
        return True
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


# What a run that ended `ok` has measured, each a finite number; accuracies are fractions.
MEASURED = {score: ("val_loss", f"val_{score}", f"best_val_{score}") for score in ("acc", "r2")}
ACCURACIES = ("val_acc", "best_val_acc", "test_acc")  # what reports compare settings by


def resolution(metric: str, results: list[dict]) -> float:
    """The step `metric` is measured in across these runs' results: an accuracy counts rows, so
    on N validation (test) rows it moves in steps of 1/N (the coarsest where runs differ in N);
    other metrics, 0."""
    if metric not in ACCURACIES:
        return 0.0
    split = "test" if metric.startswith("test") else "val"
    rows = [n for r in results if isinstance(n := (r.get("data") or {}).get(split), int) and n > 0]
    return 1 / min(rows) if rows else 0.0


def result_problem(result: Any) -> Optional[str]:
    """Why `result` is not a run's record as RunRecord writes it, or None: every field a reader
    uses, of the type it uses (someone else's JSON, a hand edit, a cut-off copy)."""
    from mlpbench.overrides import run_settings

    if not isinstance(result, dict):
        return "not a JSON object"
    if result.get("status") not in {s.value for s in Status}:
        return f"status {result.get('status')!r} is none of: {', '.join(s.value for s in Status)}"
    overrides = result.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return "overrides is not a list of strings"
    try:
        seed = run_settings(overrides).get("seed")
    except Exception as e:  # Hydra's parser: any override it cannot read
        return f"overrides cannot be read ({' '.join(str(e).split())[:120]})"
    ran_with = (result.get("config") or {}).get("seed") if isinstance(result.get("config"), dict) else None
    if result["status"] == Status.ok and not isinstance(ran_with, int) and seed is not None \
            and not re.fullmatch(r"\d+", seed):
        return f"seed={seed} is not a seed"
    for key in ("config", "metrics", "history", "params", "data"):
        if not isinstance(result.get(key, {}), dict):
            return f"{key} is not an object"
    metrics = result.get("metrics") or {}
    if not all(_is_number(v) for v in metrics.values()):
        return "metrics holds a value that is not a number"
    for key, value in metrics.items():
        if key in ACCURACIES and value is not None and math.isfinite(value) and not 0 <= value <= 1:
            return f"metrics.{key} = {value} is no accuracy (a fraction in [0, 1])"
    for key in ("val_r2", "best_val_r2", "test_r2"):
        if key in metrics and metrics[key] is not None and metrics[key] > 1:
            return f"metrics.{key} = {metrics[key]} is no r2 (at most 1)"
    if result["status"] == Status.ok:
        missing = [k for k in MEASURED[score_in(metrics)] if metrics.get(k) is None or not math.isfinite(metrics[k])]
        if missing:
            return f"status ok without a finite {missing[0]}"
    history = result.get("history") or {}
    if not all(isinstance(v, list) and all(_is_number(x) for x in v) for v in history.values()):
        return "history holds a value that is not a list of numbers"
    for key in ("job", "epochs"):
        if result.get(key) is not None and (not isinstance(result[key], int) or isinstance(result[key], bool)):
            return f"{key} is not an integer"
    if not _is_number(result.get("seconds")):
        return "seconds is not a number"
    if not isinstance(result.get("error") or {}, dict) or not isinstance(result.get("experiment") or "", str):
        return "error or experiment is of the wrong type"
    return None


def read_sweep_config(folder: Path):
    """A sweep folder's multirun.yaml as a DictConfig, or None where it has none that can be
    used: missing, not YAML, or without the overrides it ran (hydra.overrides.task, a list of
    strings); the log names such a file once."""
    from omegaconf import DictConfig, OmegaConf

    path = Path(folder) / SWEEP_CONFIG
    if not path.is_file():
        return None
    try:
        config = OmegaConf.load(path)
        task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    except Exception as e:  # YAML's, OmegaConf's and missing keys' errors alike
        _unusable(path, f"not a sweep's config ({' '.join(str(e).split())[:120]})")
        return None
    if not isinstance(config, DictConfig) or not isinstance(task, list) or not all(isinstance(o, str) for o in task):
        _unusable(path, "hydra.overrides.task is not a list of overrides")
        return None
    return config


def load_results(sweep_dir: Path) -> list[tuple[Path, dict]]:
    """(run dir, result) for each run under a sweep dir that has a readable result.json."""
    run_dirs = sorted((p.parent for p in Path(sweep_dir).glob(f"*/{RESULT_FILE}")), key=lambda d: natural_key(d.name))
    return [(d, result) for d in run_dirs if (result := read_result(d)) is not None]


def files_read(runs: list[tuple[str, dict]]) -> dict[str, dict[str, list[str]]]:
    """The files (name, result) runs read (data=table): {path: {digest: [run names]}}, a digest
    per version read. Failed runs aside: they start over on the file as it is."""
    read: dict[str, dict[str, list[str]]] = {}
    for name, result in runs:
        if result.get("status") != Status.failed.value:
            for path, digest in (result.get("files") or {}).items():
                read.setdefault(path, {}).setdefault(digest, []).append(name)
    return read
