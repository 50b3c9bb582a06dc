"""`python -m mlpbench.report`: summaries and figures rebuilt from run folders alone."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from mlpbench import report
from mlpbench.files import write_json_atomic
from mlpbench.results import final_metrics


def fake_run(sweep: Path, overrides: list[str], val_acc: list[float], status: str = "ok",
             experiment: str = "depth_linear", grad_ratio: float | None = None) -> Path:
    """A run folder as a real run leaves it: result.json only."""
    run_dir = sweep / ",".join(overrides)
    run_dir.mkdir(parents=True)
    history = {"train_loss": [1.0 - a for a in val_acc], "train_acc": [a + 0.05 for a in val_acc],
               "val_loss": [1.2 - a for a in val_acc], "val_acc": val_acc, "epoch_seconds": [0.1] * len(val_acc)}
    if grad_ratio is not None:
        history["grad_ratio"] = [grad_ratio] * len(val_acc)
        history["first_grad_norm"] = [grad_ratio / 10] * len(val_acc)
    test = {"test_loss": 0.5, "test_acc": val_acc[-1] - 0.01} if status == "ok" else {}
    write_json_atomic(run_dir / "result.json", {
        "status": status, "overrides": overrides, "experiment": experiment, "config": {},
        "metrics": final_metrics(history, test), "history": history,
        "params": {"trainable": 100, "non_trainable": 0, "total": 100}, "epochs": len(val_acc), "seconds": 1.5})
    return run_dir


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def depth_sweep(tmp_path) -> Path:
    sweep = tmp_path / "depth_linear" / "2026-11-23_10-00-00"
    for depth, accs in ((2, [0.80, 0.90]), (5, [0.70, 0.60]), (10, [0.85, 0.88])):
        fake_run(sweep, ["data.limit=500", f"model.depth={depth}"], accs, grad_ratio=1.0 / depth)
    return sweep


def test_report_rebuilds_the_summary_and_figures_from_run_folders(depth_sweep, capsys):
    assert report.main([str(depth_sweep)]) == 0
    rows = read_csv(depth_sweep / "summary.csv")
    # A row per run, best validation accuracy first; the constant override is not a column.
    assert [r["model.depth"] for r in rows] == ["2", "10", "5"]
    assert "data.limit" not in rows[0]
    first = rows[0]
    assert float(first["best_val_acc"]) == 0.90 and first["best_epoch"] == "2"
    assert float(first["gap"]) == pytest.approx(0.05)
    assert float(first["grad_ratio"]) == pytest.approx(0.5)
    assert float(first["first_grad_norm"]) == pytest.approx(0.05)
    assert {"val_loss", "val_acc", "test_acc", "params", "seconds", "status"} <= set(first)
    for name in ("val_loss.png", "val_acc.png", "against_depth.png"):
        assert (depth_sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    printed = capsys.readouterr().out
    assert "| model.depth |" in printed and (depth_sweep / "summary.md").read_text().count("\n| ") == 1 + 3


def test_a_folder_of_sweeps_stands_for_its_newest(depth_sweep):
    newer = depth_sweep.parent / "2026-11-24_09-00-00"
    fake_run(newer, ["model.depth=3"], [0.5])
    assert report.find_sweep(depth_sweep.parent) == newer
    assert report.find_sweep(depth_sweep) == depth_sweep


def test_a_running_or_cut_off_sweep_is_reported_as_it_is(depth_sweep):
    fake_run(depth_sweep, ["data.limit=500", "model.depth=7"], [0.4], status="running")
    broken = depth_sweep / "data.limit=500,model.depth=8"
    broken.mkdir()
    (broken / "result.json").write_text('{"status": "runn')  # a writer killed mid-way (not ours)
    (depth_sweep / "data.limit=500,model.depth=9").mkdir()  # started, nothing written yet
    assert report.main([str(depth_sweep)]) == 0
    rows = read_csv(depth_sweep / "summary.csv")
    assert sorted(r["model.depth"] for r in rows) == ["10", "2", "5", "7"]
    assert [r["status"] for r in rows if r["model.depth"] == "7"] == ["running"]


def test_failed_runs_sort_last_and_have_no_metrics(depth_sweep):
    fake_run(depth_sweep, ["data.limit=500", "model.depth=4"], [float("nan")], status="diverged")
    report.main([str(depth_sweep), "--no-plots"])
    rows = read_csv(depth_sweep / "summary.csv")
    assert rows[-1]["model.depth"] == "4" and rows[-1]["status"] == "diverged" and rows[-1]["best_val_acc"] == ""
    assert not (depth_sweep / "val_loss.png").exists()


def test_several_sweeps_share_one_table_and_figure(tmp_path, depth_sweep):
    relu = tmp_path / "depth_relu" / "2026-11-23_11-00-00"
    for depth in (2, 5, 10):
        fake_run(relu, [f"model.depth={depth}"], [0.9, 0.95], experiment="depth_relu")
    out = tmp_path / "compare"
    assert report.main([str(depth_sweep.parent), str(relu), "--out", str(out)]) == 0
    rows = read_csv(out / "summary.csv")
    assert len(rows) == 6
    assert {(r["sweep"], r["model.depth"]) for r in rows} == {
        (s, d) for s in ("depth_linear", "depth_relu") for d in ("2", "5", "10")}
    assert (out / "against_depth.png").is_file() and (out / "val_acc.png").is_file()


def test_non_numeric_settings_get_a_bar_chart(tmp_path):
    sweep = tmp_path / "width"
    for units, acc in (("128", 0.9), ("[256,128,64]", 0.92), ("mean", 0.91)):
        fake_run(sweep, [f"model.units={units}"], [acc], experiment="width")
    report.main([str(sweep)])
    assert [r["model.units"] for r in read_csv(sweep / "summary.csv")] == ["[256,128,64]", "mean", "128"]
    assert (sweep / "best_val_acc.png").is_file() and not list(sweep.glob("against_*.png"))


def test_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 1
    assert "no result.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and "no such folder" in capsys.readouterr().err


def test_the_report_loads_no_framework():
    code = "import sys, mlpbench.report; print(any(m in sys.modules for m in ('torch', 'lightning')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_single_run_folder_is_a_sweep_of_one(tmp_path):
    run_dir = fake_run(tmp_path, ["model.units=8"], [0.5, 0.75, 1.0], experiment="xor")
    assert report.main([str(run_dir)]) == 0
    (row,) = read_csv(run_dir / "summary.csv")
    assert row["status"] == "ok" and float(row["best_val_acc"]) == 1.0
    assert (run_dir / "val_loss.png").is_file()
