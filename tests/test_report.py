"""`python -m mlpbench.report`: settings over seeds, intervals and verdicts, rebuilt from run folders alone."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from mlpbench import report
from mlpbench.files import write_json_atomic
from mlpbench.results import final_metrics
from mlpbench.stats import Verdict, compare, holm
from tests.conftest import run_cli, run_rows, summary_rows


def fake_run(sweep: Path, overrides: list[str], val_acc: list[float], status: str = "ok",
             experiment: str = "depth_linear", grad_ratio: float | None = None, job: int | None = None,
             config: dict | None = None) -> Path:
    """A run folder as a real run leaves it: result.json only. Its best_val_acc is max(val_acc)."""
    run_dir = sweep / ",".join(overrides)
    run_dir.mkdir(parents=True)
    history = {"train_loss": [1.0 - a for a in val_acc], "train_acc": [a + 0.05 for a in val_acc],
               "val_loss": [1.2 - a for a in val_acc], "val_acc": val_acc, "epoch_seconds": [0.1] * len(val_acc)}
    if grad_ratio is not None:
        history["grad_ratio"] = [grad_ratio] * len(val_acc)
        history["first_grad_norm"] = [grad_ratio / 10] * len(val_acc)
    test = {"test_loss": 0.5, "test_acc": val_acc[-1] - 0.01} if status == "ok" else {}
    write_json_atomic(run_dir / "result.json", {
        "status": status, "overrides": overrides, "experiment": experiment, "config": config or {"seed": 42}, "job": job,
        "metrics": final_metrics(history, test) if status != "failed" else {}, "history": history,
        "params": {"trainable": 100, "non_trainable": 0, "total": 100}, "epochs": len(val_acc), "seconds": 1.5})
    return run_dir


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """The report's figures by file name, as drawn, before they are saved and closed."""
    from mlpbench import files

    figures = {}

    def keep(fig, path):
        figures[Path(path).name] = fig
        return files.save_figure(fig, path)

    monkeypatch.setattr(report, "save_figure", keep)
    return figures


# best_val_acc of depth 2, 5 and 10 over seeds 1..4
ACC = {2: [0.90, 0.92, 0.91, 0.93], 5: [0.70, 0.74, 0.69, 0.72], 10: [0.89, 0.93, 0.90, 0.92]}


@pytest.fixture
def depth_sweep(tmp_path) -> Path:
    sweep = tmp_path / "depth_linear" / "2026-11-23_10-00-00"
    for depth, accs in ACC.items():
        for seed, acc in enumerate(accs, start=1):
            fake_run(sweep, ["data.limit=500", f"model.depth={depth}", f"seed={seed}"], [acc - 0.1, acc],
                     grad_ratio=1.0 / depth)
    return sweep


def test_each_setting_is_its_seeds_mean_with_scipys_interval(depth_sweep, capsys):
    assert report.main([str(depth_sweep)]) == 0
    rows = summary_rows(depth_sweep)
    # A row per setting, ordered by depth (not by accuracy, not as text); seed and the constant
    # override are not columns.
    assert [r["model.depth"] for r in rows] == ["2", "5", "10"]
    assert "seed" not in rows[0] and "data.limit" not in rows[0]
    for row in rows:
        values = ACC[int(row["model.depth"])]
        sem = sps.sem(values)
        low, high = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sem)
        assert row["n"] == "4" and row["status"] == "ok"
        assert float(row["best_val_acc_mean"]) == pytest.approx(np.mean(values))
        assert float(row["best_val_acc_std"]) == pytest.approx(np.std(values, ddof=1))
        assert float(row["best_val_acc_ci95"]) == pytest.approx((high - low) / 2)
        assert float(row["gap_mean"]) == pytest.approx(0.05)
        assert float(row["grad_ratio_mean"]) == pytest.approx(1.0 / int(row["model.depth"]))
    # Paired by seed against the best (depth 2), Holm-adjusted over the two comparisons.
    raw = [sps.ttest_rel(ACC[2], ACC[d]).pvalue for d in (5, 10)]
    adjusted = holm(raw)
    verdicts = {r["model.depth"]: (r["verdict"], r["p"]) for r in rows}
    assert verdicts["2"] == ("best", "")
    assert verdicts["5"][0] == "worse" and float(verdicts["5"][1]) == pytest.approx(adjusted[0])
    assert verdicts["10"][0] == "tied" and float(verdicts["10"][1]) == pytest.approx(adjusted[1])
    assert len(run_rows(depth_sweep)) == 12
    for name in ("val_loss.png", "val_acc.png", "against_depth.png", "runs.csv"):
        assert (depth_sweep / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert printed.startswith("best_val_acc: 2, 10 tied best (0.915 ± 0.021); 5 worse (p < 0.001)")
    assert "| 2           | 4 | 0.9150 ± 0.0205 |" in printed


def test_report_options_given_to_the_report_judge_the_runs_made_by_them(depth_sweep, capsys):
    # The sweep's runs were judged by best_val_acc, with no least difference that matters.
    assert report.main([str(depth_sweep), "report.objective=val_loss", "report.min_difference=0.05"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("val_loss: 2, 10 tied best (0.285 ± 0.021); 5 worse (p < 0.001)"), printed
    assert "| tied    | 0.391 | below report.min_difference |" in printed
    for given, message in (("report.objective=foo", "report.objective=foo: must be one of best_val_acc, val_acc"),
                           ("report.objectiv=val_loss", "did you mean report.objective"),
                           ("report.objective=val_loss,val_acc", "one value; a report judges by one"),
                           ("report.min_difference=-1", "must be a number > 0 (in the objective's units), or null"),
                           ("report.best_over=[optim.lr]", "varies model.depth; name keys among those")):
        with pytest.raises(SystemExit) as exit_info:
            report.main([str(depth_sweep), given])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, given


def test_an_objective_named_as_a_per_epoch_figure_does_not_take_its_file(tmp_path, drawn, capsys):
    """report.objective=val_loss over activations: the per-setting figure beside val_loss.png, the
    curves per epoch, not in its place."""
    sweep = tmp_path / "sweep"
    for activation, accs in (("relu", [0.90, 0.92, 0.91]), ("tanh", [0.80, 0.83, 0.81])):
        for seed, acc in enumerate(accs, start=1):
            fake_run(sweep, [f"model.activation={activation}", f"seed={seed}"], [acc - 0.1, acc])
    for objective in ("val_loss", "val_acc"):
        drawn.clear()
        assert report.main([str(sweep), f"report.objective={objective}"]) == 0
        assert "per epoch" in drawn[f"{objective}.png"].axes[0].get_title()
        assert "per setting" in drawn[f"{objective}_per_setting.png"].axes[0].get_title()
        assert capsys.readouterr().out.count(f"{objective}.png") == 1
    assert report.main([str(sweep)]) == 0
    assert (sweep / "best_val_acc.png").is_file()


def test_a_per_setting_figure_of_accuracies_keeps_its_axis_within_0_and_1(tmp_path, drawn):
    """Seeds far apart: intervals that reach 0 and 1 (cut there) give no axis from -0.086 to 2."""
    sweep = tmp_path / "sweep"
    for activation, accs in (("relu", [0.2, 0.9, 0.6]), ("tanh", [0.15, 0.95, 0.5])):
        for seed, acc in enumerate(accs, start=1):
            fake_run(sweep, [f"model.activation={activation}", f"seed={seed}"], [acc / 2, acc])
    report.build([sweep])
    ax = drawn["best_val_acc.png"].axes[0]
    assert ax.get_xlim()[0] == 0 and ax.get_xlabel() == "best_val_acc"
    assert all(0 <= t <= 1 for t in ax.get_xticks()) and len(ax.get_xticks()) >= 3


def test_a_figure_against_a_key_says_which_settings_have_no_point(tmp_path, drawn):
    """optim.lr=0.01,0.1,1e12: the last diverged on every seed; its absence from against_lr.png is said."""
    sweep = tmp_path / "sweep"
    for lr, status in (("0.01", "ok"), ("0.1", "ok"), ("1e12", "diverged")):
        for seed in (1, 2):
            fake_run(sweep, [f"optim.lr={lr}", f"seed={seed}"], [0.5, 0.8 + seed / 100], status=status)
    report.build([sweep])
    title = drawn["against_lr.png"].axes[0].get_title()
    assert title.endswith("no point, no run ended ok: lr=1e+12 (2 diverged)"), title  # as its ticks write it


def test_summary_csv_and_load_name_a_setting_undecided_as_the_table_does(tmp_path, capsys):
    # 6 settings, 15 pairs: "c" is behind the best on every seed (p 0.012 alone), not after Holm.
    best = {1: 0.90, 2: 0.92, 3: 0.91}
    groups = {"best": best, "c": {1: 0.87, 2: 0.90, 3: 0.88},
              **{f"same{i}": {s: v + (0.004 if (s + i) % 2 else -0.004) for s, v in best.items()} for i in range(4)}}
    sweep = tmp_path / "sweep"
    for width, (name, values) in zip((10, 20, 30, 40, 50, 60), groups.items()):
        for seed, acc in values.items():
            fake_run(sweep, [f"model.units={width}", f"seed={seed}"], [acc - 0.1, acc])
    assert report.main([str(sweep)]) == 0
    assert "| 20          | 3 |" in capsys.readouterr().out
    verdicts = {r["model.units"]: r["verdict"] for r in summary_rows(sweep)}
    assert verdicts["20"] == "undecided" and "best" in verdicts.values(), verdicts
    _, settings, _ = report.load(sweep)
    assert list(settings["verdict"]) == [verdicts[str(w)] for w in settings["model.units"]]


def test_one_run_per_setting_gives_no_verdict_and_says_how_to_add_seeds(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for depth, acc in ((2, 0.9), (4, 0.8)):
        fake_run(sweep, [f"model.depth={depth}"], [acc])
    assert report.main([str(sweep)]) == 0
    rows = summary_rows(sweep)
    assert [(r["n"], r["best_val_acc_ci95"], r["verdict"]) for r in rows] == [("1", "", ""), ("1", "", "")]
    assert "no verdict: n = 1 per setting" in capsys.readouterr().out
    # Interrupted seeds are not measured yet: finish them (resume=true), not "add seeds".
    for depth in (2, 4):
        for seed in (1, 2):
            fake_run(sweep, [f"model.depth={depth}", f"seed={seed}"], [0.5], status="interrupted")
    assert report.main([str(sweep)]) == 0
    assert capsys.readouterr().out.startswith(
        "best_val_acc: no verdict yet: 4 run(s) unfinished (interrupted or killed): the sweep's command with "
        "resume=true finishes them")


def test_a_folder_of_single_runs_is_no_sweep_to_report(tmp_path, capsys):
    # outputs/run/<date>: runs started one by one, on any data; one of them is a run to report.
    day = tmp_path / "outputs" / "run" / "2026-12-06"
    for name, acc in (("model.depth=1", 0.9), ("model.depth=2", 0.8)):
        run = fake_run(day, [name], [acc])
        (run / ".hydra").mkdir()
        (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  run:\n    dir: x\n  mode: RUN\n")
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "outputs" / "run")])
    assert exit_info.value.code == 2
    assert f"{day}: a folder of single runs (each started without -m" in capsys.readouterr().err
    assert not (day / "summary.csv").exists()
    assert report.main([str(day / "model.depth=1")]) == 0
    # One run: no curve against its one depth, its value side by side instead.
    assert not list((day / "model.depth=1").glob("against_*.png")) and (day / "model.depth=1" / "best_val_acc.png").is_file()


def test_a_failed_seed_counts_in_the_status_not_in_n_and_the_test_pairs_the_seeds_left(tmp_path):
    sweep = tmp_path / "sweep"
    a, b = [0.90, 0.92, 0.91], [0.80, 0.83, 0.81]
    for seed in (1, 2, 3):
        fake_run(sweep, ["model.activation=relu", f"seed={seed}"], [a[seed - 1]], experiment="activations")
        if seed == 3:
            fake_run(sweep, ["model.activation=tanh", f"seed={seed}"], [math.nan], status="failed",
                     experiment="activations")
        else:
            fake_run(sweep, ["model.activation=tanh", f"seed={seed}"], [b[seed - 1]], experiment="activations")
    report.main([str(sweep), "--no-plots"])
    rows = {r["model.activation"]: r for r in summary_rows(sweep)}
    assert (rows["relu"]["n"], rows["relu"]["runs"], rows["relu"]["status"]) == ("3", "3", "ok")
    assert (rows["tanh"]["n"], rows["tanh"]["runs"], rows["tanh"]["status"]) == ("2", "3", "2 ok, 1 failed")
    paired = sps.ttest_rel(a[:2], b[:2]).pvalue  # seeds 1 and 2: a difference of 0.10 and 0.09
    assert paired < 0.05 and rows["tanh"]["verdict"] == "worse"
    assert float(rows["tanh"]["p"]) == pytest.approx(paired)


def test_only_finished_runs_are_measurements(tmp_path):
    # A run that crashed at epoch 3 keeps its best epoch in result.json; it is no measurement.
    sweep = tmp_path / "sweep"
    for seed, acc in ((1, 0.90), (2, 0.91), (3, 0.92)):
        fake_run(sweep, ["model.activation=relu", f"seed={seed}"], [acc], experiment="activations")
    fake_run(sweep, ["model.activation=relu", "seed=4"], [0.30], status="failed", experiment="activations")
    run = fake_run(sweep, ["model.activation=relu", "seed=5"], [0.20], status="running", experiment="activations")
    result = json.loads((run / "result.json").read_text())
    assert result["metrics"]["best_val_acc"] == 0.20  # a running run does carry numbers
    report.main([str(sweep), "--no-plots"])
    (row,) = summary_rows(sweep)
    assert (row["n"], row["runs"], row["status"]) == ("3", "5", "3 ok, 1 running, 1 failed")
    assert float(row["best_val_acc_mean"]) == pytest.approx(0.91)


def test_a_folder_of_single_runs_with_and_without_a_sweep_position(tmp_path):
    fake_run(tmp_path / "runs", ["model.depth=1"], [0.5], job=None)
    failed = fake_run(tmp_path / "runs", ["model.depth=2"], [0.4], status="failed")
    result = json.loads((failed / "result.json").read_text())
    del result["job"]  # failed before its record knew its place
    (failed / "result.json").write_text(json.dumps(result))
    assert report.main([str(tmp_path / "runs"), "--no-plots"]) == 0
    assert [r["model.depth"] for r in summary_rows(tmp_path / "runs")] == ["1", "2"]


def test_settings_without_an_order_keep_the_order_the_sweep_ran_them(tmp_path):
    sweep = tmp_path / "width"
    for job, (units, acc) in enumerate((("128", 0.9), ("[256,128,64]", 0.92), ("mean", 0.91))):
        fake_run(sweep, [f"model.units={units}"], [acc], experiment="width", job=job)
    report.main([str(sweep)])
    assert [r["model.units"] for r in summary_rows(sweep)] == ["128", "[256,128,64]", "mean"]
    assert (sweep / "best_val_acc.png").is_file() and not list(sweep.glob("against_*.png"))


def test_each_optimizer_at_its_own_best_rate(tmp_path, capsys):
    sweep = tmp_path / "tuned"
    accs = {("sgd", "0.01"): 0.80, ("sgd", "0.1"): 0.90, ("adam", "0.001"): 0.92, ("adam", "0.1"): 0.50}
    for (optim, lr), acc in accs.items():
        for seed, noise in enumerate((0.0, 0.01, -0.01), start=1):
            fake_run(sweep, [f"optim={optim}", f"optim.lr={lr}", f"seed={seed}"], [acc + noise],
                     experiment="optimizers_tuned", config={"report": {"best_over": ["optim.lr"]}})
    report.main([str(sweep), "--no-plots"])
    printed = capsys.readouterr().out
    best = printed[printed.index("At each setting's best optim.lr"):]
    # sgd at 0.1 and adam at 0.001, each the best of its rates, compared with each other.
    assert "optim=sgd/lr=0.1" in best and "optim=adam/lr=0.001" in best
    assert "lr=0.01 " not in best and "optim=adam/lr=0.1 " not in best


def test_a_folder_of_sweeps_stands_for_its_newest(depth_sweep):
    newer = depth_sweep.parent / "2026-11-24_09-00-00"
    fake_run(newer, ["model.depth=3"], [0.5])
    assert report.find_sweep(depth_sweep.parent) == newer
    assert report.find_sweep(depth_sweep) == depth_sweep


def test_a_running_or_cut_off_sweep_is_reported_as_it_is(depth_sweep):
    fake_run(depth_sweep, ["data.limit=500", "model.depth=7", "seed=1"], [0.4], status="running")
    broken = depth_sweep / "data.limit=500,model.depth=8,seed=1"
    broken.mkdir()
    (broken / "result.json").write_text('{"status": "runn')  # a writer killed mid-way (not ours)
    (depth_sweep / "data.limit=500,model.depth=9,seed=1").mkdir()  # started, nothing written yet
    assert report.main([str(depth_sweep)]) == 0
    rows = summary_rows(depth_sweep)
    assert [r["model.depth"] for r in rows] == ["2", "5", "7", "10"]
    assert [r["status"] for r in rows if r["model.depth"] == "7"] == ["1 running"]


def test_several_sweeps_share_one_table_with_the_sweeps_as_columns(tmp_path, depth_sweep, capsys):
    relu = tmp_path / "depth_relu" / "2026-11-23_11-00-00"
    for depth in (2, 5, 10):
        for seed in (1, 2):
            fake_run(relu, [f"model.depth={depth}", f"seed={seed}"], [0.9, 0.95 + seed / 100], experiment="depth_relu")
    out = tmp_path / "compare"
    # depth_linear's runs kept 500 rows (data.limit=500 on its command line), depth_relu's all:
    # not comparable unless asked.
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(depth_sweep.parent), str(relu), "--out", str(out)])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "data.limit (depth_linear: 500, depth_relu: default)" in error
    assert "--force" in error and not out.exists()
    assert report.main([str(depth_sweep.parent), str(relu), "--out", str(out), "--force"]) == 0
    summary = (out / "summary.md").read_text()
    assert summary.count("Held fixed differently by the sweeps") == 1
    row = next(line for line in summary.splitlines() if line.startswith("| data.limit "))
    assert [cell.strip() for cell in row.split("|")[2:4]] == ["500 (command line)", "default"]
    assert "Held fixed: model=keras, optim=sgd, data.batch_size=128" in summary  # depth_relu builds on depth_linear
    rows = summary_rows(out)
    assert {(r["sweep"], r["model.depth"]) for r in rows} == {
        (s, d) for s in ("depth_linear", "depth_relu") for d in ("2", "5", "10")}
    printed = capsys.readouterr().out
    # What --force let through is printed too, before the tables it qualifies.
    assert printed.index("Held fixed differently by the sweeps (a difference set on a command line was let "
                         "through with --force)") < printed.index("| model.depth")
    row = next(line for line in printed.splitlines() if line.startswith("| data.limit "))
    assert [cell.strip() for cell in row.split("|")[2:4]] == ["500 (command line)", "default"]
    header = next(line for line in printed.splitlines() if line.startswith("| model.depth"))
    assert [cell.strip() for cell in header.split("|")[2:4]] == ["depth_linear", "depth_relu"]
    # An accuracy interval that would pass 1 is shown by its ends inside [0, 1].
    row = next(line for line in printed.splitlines() if line.startswith("| 5 "))
    assert "| 0.7125 ± 0.0353 (worse) " in row and "| 0.9650 [0.9015, 1.0000]! (tied) |" in row
    assert "! from 2 runs: an interval from fewer than 3 is too wide to read" in printed  # depth_relu's 2 seeds
    assert (out / "against_depth.png").is_file() and (out / "val_acc.png").is_file()


def test_sweeps_of_one_preset_in_folders_of_one_name_are_told_apart_by_their_parents(tmp_path):
    # runs/bc/depth and runs/wine/depth: both "depth_linear (depth)" by their last folder alone.
    for data, acc in (("bc", 0.8), ("wine", 0.6)):
        for seed in (1, 2, 3):
            fake_run(tmp_path / "runs" / data / "depth", ["model.depth=2", f"seed={seed}"], [acc + seed / 100])
    sweeps = report.read_sweeps([tmp_path / "runs" / "bc" / "depth", tmp_path / "runs" / "wine" / "depth"])
    assert [s.label for s in sweeps] == ["depth_linear (bc/depth)", "depth_linear (wine/depth)"]
    assert [round(s.settings[0].summary("best_val_acc").mean, 2) for s in sweeps] == [0.82, 0.62]


def test_diagnosed_sweeps_compared_print_the_first_layers_gradient_and_the_gap_per_setting(tmp_path, capsys):
    # depth_linear's and depth_relu's question (why does accuracy fall with depth?) answered in
    # numbers beside the figure: the first layer's gradient norm and the train-val gap, pivoted.
    sweeps = []
    for name, gradient in (("depth_linear", 1.0), ("depth_relu", 0.1)):
        sweep = tmp_path / name / "2026-11-23_10-00-00"
        for depth in (2, 10):
            for seed, acc in enumerate((0.80, 0.84, 0.82), start=1):
                fake_run(sweep, [f"model.depth={depth}", f"seed={seed}"], [acc - 0.1, acc], experiment=name,
                         grad_ratio=gradient * seed / depth)
        sweeps.append(str(sweep))
    assert report.main([*sweeps, "--out", str(tmp_path / "compare"), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    heading = printed.index("first_grad_norm per setting (the first layer's gradient norm")
    assert printed.index("best_val_acc per setting") < heading < printed.index("gap per setting (train minus validation accuracy")
    gradient_rows = [line for line in printed[heading:].splitlines() if line.startswith("| 10 ")]
    # first_grad_norm is grad_ratio / 10 in fake_run: seeds 1-3 at depth 10 give 0.01, 0.02, 0.03 x gradient.
    half = sps.t.ppf(0.975, 2) * np.std([1, 2, 3], ddof=1) / math.sqrt(3)
    assert gradient_rows[0] == (f"| 10          | {0.02:.4f} ± {half / 100:.4f} | {0.002:.4f} ± {half / 1000:.4f} |")
    # fake_run's training accuracy is 0.05 above its validation accuracy: the gap, signed, no verdict.
    assert "| +0.0500 ± 0.0000 | +0.0500 ± 0.0000 |" in gradient_rows[1]
    assert "(best)" not in printed[heading:printed.index("## ")]
    # Sweeps without diagnostics print no such tables.
    plain = tmp_path / "plain" / "2026-11-23_10-00-00"
    for depth in (2, 10):
        for seed in (1, 2, 3):
            fake_run(plain, [f"model.depth={depth}", f"seed={seed}"], [0.8, 0.9], experiment="depth_relu")
    assert report.main([sweeps[0], str(plain), "--out", str(tmp_path / "c2"), "--no-plots", "--force"]) == 0
    assert "first_grad_norm per setting" in capsys.readouterr().out  # one of them diagnosed: shown
    plain2 = tmp_path / "plain2" / "2026-11-23_10-00-00"
    for seed in (1, 2, 3):
        fake_run(plain2, ["model.depth=2", f"seed={seed}"], [0.8, 0.9], experiment="depth_relu")
    assert report.main([str(plain), str(plain2), "--out", str(tmp_path / "c3"), "--no-plots", "--force"]) == 0
    assert "gradient" not in capsys.readouterr().out


def test_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 1
    assert f"no sweep in {tmp_path}" in capsys.readouterr().err
    # A folder above the folders of sweeps (outputs/): the error names the one to give.
    fake_run(tmp_path / "multirun" / "2026-01-01_00-00-00", ["model.depth=2", "seed=1"], [0.9])
    assert report.main([str(tmp_path)]) == 1
    assert f"e.g. {tmp_path / 'multirun'}" in capsys.readouterr().err
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
    (row,) = summary_rows(run_dir)
    assert row["status"] == "ok" and float(row["best_val_acc_mean"]) == 1.0 and row["n"] == "1"
    assert (run_dir / "val_loss.png").is_file()


def test_an_a_a_sweep_of_identical_networks_is_never_called_different(tmp_path):
    # relu ignores negative_slope: the two settings train the same network on each seed.
    sweep = tmp_path / "aa"
    proc = run_cli("-m", "model.negative_slope=0.01,0.2", "seed=1,2,3", "data.limit=200", "trainer.max_epochs=2",
                   "trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = summary_rows(sweep)
    assert [r["model.negative_slope"] for r in rows] == ["0.01", "0.2"]
    assert rows[0]["best_val_acc_mean"] == rows[1]["best_val_acc_mean"] and {r["n"] for r in rows} == {"3"}
    assert sorted(r["verdict"] for r in rows) == ["best", "tied"] and float(rows[1]["p"]) == 1.0
    assert "0.01, 0.2 tied best" in proc.stdout


def _png_size(path: Path) -> tuple[int, int]:
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    return width, height


def test_figures_are_large_enough_to_read(tmp_path, depth_sweep):
    activations = tmp_path / "activations"
    for job, (activation, acc) in enumerate((("relu", 0.9), ("tanh", 0.8))):
        fake_run(activations, [f"model.activation={activation}"], [acc], experiment="activations", job=job)
    report.main([str(depth_sweep)])
    report.main([str(activations)])
    pngs = [*depth_sweep.glob("*.png"), *activations.glob("*.png")]
    assert {p.name for p in pngs} == {"train_loss.png", "val_loss.png", "val_acc.png", "against_depth.png",
                                      "best_val_acc.png"}
    for png in pngs:
        width, height = _png_size(png)
        assert width >= 1000 and height >= 400, (png.name, width, height)


def test_learning_rates_are_drawn_on_a_log_axis_without_a_setting_that_left_no_result(tmp_path, drawn):
    sweep = tmp_path / "lr"
    for lr, acc in ((0.001, 0.8), (0.01, 0.9), (0.1, 0.85)):
        for seed in (1, 2):
            fake_run(sweep, [f"optim.lr={lr}", f"seed={seed}"], [acc - 0.1, acc + seed / 100])
    for seed in (1, 2):  # diverged at once: no accuracy to draw
        fake_run(sweep, ["optim.lr=1000000000.0", f"seed={seed}"], [0.1], status="failed")
    assert report.main([str(sweep)]) == 0
    accuracy = drawn["against_lr.png"].axes[0]
    assert accuracy.get_xscale() == "log"
    low, high = accuracy.get_xlim()
    assert low < 0.001 and 0.1 < high < 1.0  # 1e9 set no range: the three rates spread over the axis
    assert [t.get_text() for t in accuracy.get_xticklabels()] == ["0.001", "0.01", "0.1"]


def test_a_setting_has_one_colour_in_every_figure(tmp_path, depth_sweep, drawn):
    from matplotlib.colors import to_hex

    relu = tmp_path / "depth_relu"
    for depth in (10, 2, 5):  # run in another order: the colours follow the settings, not the runs
        fake_run(relu, [f"model.depth={depth}", "seed=1"], [0.9], experiment="depth_relu")
    sweeps = report.read_sweeps([depth_sweep, relu])
    colors = {label: to_hex(color) for label, color in report.setting_colors(sweeps).items()}
    assert list(colors) == ["2", "5", "10"] and len(set(colors.values())) == 3
    report.main([str(depth_sweep), str(relu), "--out", str(tmp_path / "compare"), "--force"])

    for name in ("val_loss.png", "val_acc.png"):
        for ax in drawn[name].axes:  # a panel per sweep; a band's edges are lines without a label
            curves = {line.get_label().split(" ")[0]: to_hex(line.get_color()) for line in ax.get_lines()
                      if not line.get_label().startswith("_")}
            assert curves == colors, name
    # In against_depth.png of two sweeps the x axis tells the depths apart: a colour per sweep,
    # on its line and its points; a single sweep's points keep their setting's colours.
    for ax in drawn["against_depth.png"].axes:
        points = {(f"{bars.lines[0].get_xdata()[0]:.0f}", to_hex(bars.lines[0].get_color()))
                  for bars in ax.containers if bars.lines[0].get_markerfacecolor() != "white"}  # test_acc: hollow
        assert {depth for depth, _ in points} == {"2", "5", "10"}
        assert len({color for _, color in points}) == 2  # one per sweep
    report.main([str(relu), "--out", str(tmp_path / "one")])
    for ax in drawn["against_depth.png"].axes:
        points = {(f"{bars.lines[0].get_xdata()[0]:.0f}", to_hex(bars.lines[0].get_color()))
                  for bars in ax.containers if bars.lines[0].get_markerfacecolor() != "white"}
        assert points == set(colors.items())
    # test_acc beside each best_val_acc point, not on it, and black: told apart from the settings.
    accuracy = drawn["against_depth.png"].axes[0]
    tests = [bars.lines[0] for bars in accuracy.containers if bars.lines[0].get_markerfacecolor() == "white"]
    assert sorted(float(t.get_xdata()[0]) for t in tests) == pytest.approx([2.36, 5.36, 10.36])
    assert {to_hex(t.get_color()) for t in tests} == {"#000000"}
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == ["best val acc", "test acc (held out)"]


def test_optunas_figures_keep_one_title_and_name_the_objective():
    import warnings

    import matplotlib
    import optuna
    from optuna.exceptions import ExperimentalWarning

    from mlpbench.files import FIGURE_DPI
    from mlpbench.tune.report import optuna_figure, optuna_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + 0.1 * t.suggest_int("units", 1, 4), n_trials=8)
    plot, title = optuna_plots("val_acc")["param_importances.png"]
    with warnings.catch_warnings(), matplotlib.rc_context():  # as the report draws it
        warnings.simplefilter("ignore", ExperimentalWarning)
        fig = optuna_figure(plot, study, title)
    titles = [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center", "right")]
    assert [t for t in titles if t] == [title] and not fig.get_suptitle()
    assert fig.get_figwidth() * FIGURE_DPI >= 1000
    matplotlib.pyplot.close(fig)
    # The history names the objective, not "Objective Value", and counts trials in whole numbers.
    plot, title = optuna_plots("val_acc")["optimization_history.png"]
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        fig = optuna_figure(plot, study, title, "val_acc")
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_ylabel() == "val_acc" and "val_acc" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    matplotlib.pyplot.close(fig)


def test_load_gives_the_runs_settings_and_epochs_as_dataframes(depth_sweep):
    runs, settings, epochs = report.load(depth_sweep)
    assert len(runs) == 12 and list(settings["model.depth"]) == [2, 5, 10]  # numbers, in the sweep's order
    assert settings.set_index("model.depth").loc[5, "best_val_acc_mean"] == pytest.approx(np.mean(ACC[5]))
    assert list(settings["verdict"]) == [row["verdict"] for row in report.setting_rows(report.read_sweeps([depth_sweep]))]
    assert len(epochs) == 12 * 2 and set(epochs.columns) >= {"model.depth", "seed", "epoch", "val_loss", "val_acc"}
    assert epochs.groupby("model.depth").val_acc.max().loc[2] == pytest.approx(max(ACC[2]))
    with pytest.raises(FileNotFoundError):
        report.load(depth_sweep / "nothing-here")


def test_a_setting_swept_to_null_is_a_row_of_its_own_named_null(tmp_path):
    """data.categorical=[zip],null: the null runs are a setting, shown as null (not as the gap "-"
    of a key a run did not set)."""
    sweep = tmp_path / "sweep"
    for value, top in (("[zip]", 0.9), ("null", 0.8)):
        for seed in (1, 2, 3):
            fake_run(sweep, [f"data.categorical={value}", f"seed={seed}"], [0.5, top + seed / 100])
    assert report.main([str(sweep), "--no-plots"]) == 0
    assert {r["data.categorical"]: r["best_val_acc_mean"][:4] for r in summary_rows(sweep)} == {"[zip]": "0.92",
                                                                                                "null": "0.82"}
    assert "| null " in (sweep / "summary.md").read_text()


def test_a_report_says_what_was_held_fixed_and_leaves_out_a_test_acc_that_validated(tmp_path):
    """experiment=activations trainer.max_epochs=3 data.limit=1000: the preset's settings and the
    command's constants in summary.md's header and summary.csv; test_acc left out, since the
    preset validates on the test split (data.val_split=null)."""
    sweep = tmp_path / "activations"
    config = {"data": {"val_split": None, "limit": 1000}, "trainer": {"max_epochs": 3}, "seed": 1}
    for activation in ("relu", "tanh"):
        for seed in (1, 2, 3):
            fake_run(sweep, ["data.limit=1000", f"model.activation={activation}", f"seed={seed}",
                             "trainer.max_epochs=3"], [0.8, 0.85 + seed / 100], experiment="activations", config=config)
    assert report.main([str(sweep), "--no-plots"]) == 0
    summary = (sweep / "summary.md").read_text()
    held = next(line for line in summary.splitlines() if line.startswith("Held fixed:"))
    for setting in ("experiment=activations", "model=keras", "data.val_split=null", "trainer.max_epochs=3",
                    "data.limit=1000"):
        assert setting in held, setting
    assert "model.activation" not in held and "seed" not in held  # swept
    assert "trainer.max_epochs=10" not in held  # the command's 3 won over the preset's 10
    table_header = next(line for line in summary.splitlines() if line.startswith("| model.activation"))
    assert "test_acc" not in table_header and "best_val_acc" in table_header
    assert report.TEST_VALIDATED_NOTE.format(score="acc") in summary
    rows = summary_rows(sweep)
    assert {r["fixed"] for r in rows} == {held.split("Held fixed: ")[1].split(";")[0]}
    assert {r["test_acc_mean"] for r in rows} == {""} and all(r["test_acc"] == "" for r in run_rows(sweep))
    # Two sweeps of one preset, one with 3 epochs on its command line: refused, named per sweep.
    other = tmp_path / "activations_full"
    for seed in (1, 2, 3):
        fake_run(other, ["model.activation=relu", f"seed={seed}"], [0.8, 0.9], experiment="activations",
                 config={"data": {"val_split": None}, "seed": seed})
    error = subprocess.run([sys.executable, "-m", "mlpbench.report", str(sweep), str(other), "--no-plots"],
                           capture_output=True, text=True)
    assert error.returncode == 2
    assert "trainer.max_epochs (activations (activations): 3, activations (activations_full): 10)" in error.stderr


def test_a_setting_that_validated_on_the_test_split_has_no_test_acc_beside_one_that_held_it_out(tmp_path, capsys):
    """-m data.val_split=0.2,null: only the 0.2 runs' test_acc is held out; the null runs' is their
    validation accuracy again, so their cells are empty and a note says why."""
    sweep = tmp_path / "sweep"
    for split, accs in ((0.2, [0.70, 0.74, 0.72]), (None, [0.73, 0.74, 0.72])):
        for seed, acc in enumerate(accs, start=1):
            fake_run(sweep, [f"data.val_split={'null' if split is None else split}", f"seed={seed}"], [acc - 0.1, acc],
                     config={"data": {"val_split": split}, "seed": seed})
    assert report.main([str(sweep), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    rows = {r["data.val_split"]: r for r in summary_rows(sweep)}
    assert rows["0.2"]["test_acc_mean"] != "" and rows["null"]["test_acc_mean"] == ""
    assert "| null           | 3 |" in printed and "test_acc of null left out: those runs validated on the test split" in printed
    assert report.TEST_VALIDATED_NOTE.format(score="acc") not in printed


def test_curves_zoom_on_the_differences_and_no_band_is_cut_off(tmp_path, drawn):
    """val_acc from 0.1 in the first epoch to 0.88-0.93 after: the axis spans the later epochs
    (and says the first run off it); val_loss's axis holds every band whole."""
    sweep = tmp_path / "sweep"
    for depth, top in ((2, 0.93), (10, 0.88)):
        for seed in (1, 2, 3):
            curve = [0.1] + [top - 0.02 * seed + 0.002 * e for e in range(9)]
            fake_run(sweep, [f"model.depth={depth}", f"seed={seed}"], curve)
    report.build([sweep])
    acc = drawn["val_acc.png"].axes[0]
    low, high = acc.get_ylim()
    assert 0.75 < low < 0.86 and high <= 1.0
    assert f"axis from {low:.3g}, not 0; the first epochs are below it" in acc.get_ylabel()
    loss = drawn["val_loss.png"].axes[0]
    band_top = max(max(line.get_ydata()) for line in loss.get_lines())
    assert loss.get_ylim()[1] >= band_top and f"axis from {loss.get_ylim()[0]:.3g}" in loss.get_ylabel()


@pytest.mark.parametrize("task, params, auto", [
    (["experiment=table_depth"], {"model.depth": "1,2,3,4", "seed": "auto"}, True),  # the preset's seeds
    (["experiment=table_depth", "seed=1,2,3"], {"model.depth": "1,2,3,4", "seed": "auto"}, False),  # the command's
    (["model.depth=1,2", "seed=auto"], {}, True),
    (["model.depth=1,2", "seed=1,2"], {}, False),
])
def test_a_sweep_is_judged_as_seed_auto_only_where_its_seeds_were_auto(tmp_path, task, params, auto):
    from omegaconf import OmegaConf

    OmegaConf.save({"hydra": {"overrides": {"task": task}, "sweeper": {"params": params}}},
                   tmp_path / "multirun.yaml")
    assert (report.auto_seeds(tmp_path) is not None) == auto


def test_an_interrupted_sweeps_report_names_the_runs_of_its_grid_that_never_started(tmp_path):
    from omegaconf import OmegaConf

    from mlpbench.schema import GRID_SWEEPER

    sweep = tmp_path / "sweep"
    for depth, seed in ((2, 1), (2, 2), (5, 1)):
        fake_run(sweep, [f"model.depth={depth}", f"seed={seed}", "data.limit=500"], [0.8, 0.8 + seed / 100])
    # The preset sweeps depth, the command seeds and 'units' (one value: fixed).
    OmegaConf.save({"hydra": {"overrides": {"task": ["seed=1,2", "data.limit=500"]},
                              "sweeper": {"_target_": GRID_SWEEPER, "params": {"model.depth": "2,5,8"}}}},
                   sweep / "multirun.yaml")
    found = report.read_sweeps([sweep])[0]
    assert found.never_started == ["model.depth=5,seed=2", "model.depth=8,seed=1", "model.depth=8,seed=2"]
    assert report.answer(found).endswith("3 run(s) of the grid never started (model.depth=5,seed=2, model.depth=8,"
                                         "seed=1, model.depth=8,seed=2): the sweep's command with resume=true runs them")
    # While the sweep runs (its lock held), the runs to come are not called never started.
    from mlpbench.files import try_lock

    running = try_lock(sweep / ".sweep.lock")
    try:
        assert report.read_sweeps([sweep])[0].never_started == []
    finally:
        running.close()
    assert len(report.read_sweeps([sweep])[0].never_started) == 3
    # Every run there: nothing said.
    for depth, seed in ((5, 2), (8, 1), (8, 2)):
        fake_run(sweep, [f"model.depth={depth}", f"seed={seed}", "data.limit=500"], [0.8, 0.8 + seed / 100])
    found = report.read_sweeps([sweep])[0]
    assert found.never_started == [] and "never started" not in report.answer(found)


def test_an_accuracy_interval_stays_inside_0_and_1_in_the_answer_the_table_and_the_figures(tmp_path, monkeypatch):
    import matplotlib
    from matplotlib.axes import Axes

    matplotlib.use("Agg")
    sweep = tmp_path / "act"
    # Two seeds each, accuracies near 1: a t interval of 12.7 standard errors would pass 1.
    for activation, accs in {"relu": [0.98, 0.90], "tanh": [0.97, 0.88]}.items():
        for seed, acc in enumerate(accs, start=1):
            fake_run(sweep, [f"model.activation={activation}", f"seed={seed}"], [acc - 0.1, acc])
    bars = []  # (figure's file, the point, the error bar's arms) of each errorbar drawn
    real_errorbar = Axes.errorbar
    monkeypatch.setattr(Axes, "errorbar", lambda ax, x, y, **kw: bars.append(
        (ax.figure, x[0] if "xerr" in kw else y[0], kw.get("xerr", kw.get("yerr")))) or real_errorbar(ax, x, y, **kw))
    bands = []  # the lower edge of each band drawn in the figures of epochs
    real_fill = Axes.fill_between
    monkeypatch.setattr(Axes, "fill_between", lambda ax, x, low, high, **kw: bands.append(min(low)) or real_fill(
        ax, x, low, high, **kw))
    built = report.build([sweep])
    answer = built.text.splitlines()[0]
    assert answer.startswith("best_val_acc: relu, tanh tied best (0.940 [0.432, 1.000]!)"), answer
    assert "| relu             | 2 | 0.9400 [0.4318, 1.0000]! |" in built.text
    # A loss is never below 0: relu's val_loss (0.22 and 0.30) has its interval's end there, in
    # the table and in val_loss.png's band.
    assert "| 0.2600 [0.0000, 0.7682]! |" in built.text.split("| relu ")[1].splitlines()[0]
    assert len(bands) == 6 and min(bands) == 0.0  # 2 settings x train_loss, val_loss, val_acc
    # best_val_acc.png: each setting's bar ends at 1 (the interval's end past it is not drawn).
    assert sorted((round(mean, 4), round(mean + arms[1][0], 4)) for _, mean, arms in bars) == [(0.925, 1.0), (0.94, 1.0)]
    # against_depth.png: the accuracy panel's bars too (its gap panel is no accuracy: not bounded).
    bars.clear()
    depths = tmp_path / "depth"
    for depth, accs in {2: [0.98, 0.90], 4: [0.97, 0.88]}.items():
        for seed, acc in enumerate(accs, start=1):
            fake_run(depths, [f"model.depth={depth}", f"seed={seed}"], [acc - 0.1, acc])
    report.build([depths])
    tops = [round(mean + arms[1][0], 4) for _, mean, arms in bars if mean > 0.5]  # best_val_acc and test_acc
    assert len(tops) == 4 and max(tops) == 1.0


def test_twelve_settings_of_two_keys_get_a_colour_per_activation_and_a_line_style_per_depth(tmp_path):
    sweep = tmp_path / "act"
    for activation in ("relu", "leaky_relu", "tanh", "sigmoid"):
        for depth in (2, 5, 8):
            fake_run(sweep, [f"model.activation={activation}", f"model.depth={depth}", "seed=1"], [0.8, 0.9])
    sweeps = report.read_sweeps([sweep])
    colors, styles = report.setting_looks(sweeps)
    assert len(colors) == 12 and len(set(colors.values())) == 4 and set(styles.values()) == {"-", "--", ":"}
    assert len({(colors[label], styles[label]) for label in colors}) == 12  # each curve its own look
    assert colors["activation=relu/depth=2"] == colors["activation=relu/depth=8"]
    assert styles["activation=relu/depth=2"] == styles["activation=tanh/depth=2"]
    # Ten settings or fewer: a colour each, solid.
    few = report.read_sweeps([sweep])
    few[0].settings = few[0].settings[:10]
    assert len(set(report.setting_colors(few).values())) == 10 and set(report.setting_looks(few)[1].values()) == {"-"}


def test_one_run_alone_is_told_how_to_get_its_interval(tmp_path):
    fake_run(tmp_path / "one", ["seed=1"], [0.8, 0.9])
    assert report.build([tmp_path / "one"]).text.splitlines()[0] == (
        "best_val_acc: 0.9000 (n = 1); a single setting, nothing to compare it with; the same command with -m and "
        "seed=1,2,3,4,5 gives its interval")


def test_a_setting_whose_runs_all_diverged_is_said_so_in_the_answer(tmp_path):
    sweep = tmp_path / "lr"
    for seed in (1, 2, 3):
        fake_run(sweep, ["optim.lr=0.01", f"seed={seed}"], [0.8, 0.9 + seed / 100])
        fake_run(sweep, ["optim.lr=1000", f"seed={seed}"], [0.1, 0.1], status="diverged")
        fake_run(sweep, ["optim.lr=0.1", f"seed={seed}"], [0.7, 0.8 + seed / 100])
    answer = report.build([sweep]).text.splitlines()[0]
    assert answer.endswith("; 1000 not compared (n = 0: 3 diverged)"), answer


def test_a_mean_ahead_of_the_best_only_over_other_seeds_is_explained_under_the_table(tmp_path):
    # As seed=auto leaves it: depth 1 over 5 seeds (two hard ones), depth 3 stopped after 3,
    # behind depth 1 on each of them; seed=auto's test picks depth 1, ahead where both ran.
    sweep = tmp_path / "auto"
    for seed, acc in enumerate([0.80, 0.82, 0.84, 0.60, 0.62], start=1):
        fake_run(sweep, ["model.depth=1", f"seed={seed}"], [acc - 0.1, acc])
        if seed <= 3:
            fake_run(sweep, ["model.depth=3", f"seed={seed}"], [acc - 0.1, acc - 0.01])
    (found,) = report.read_sweeps([sweep])
    one, three = found.settings
    one.verdict, three.verdict = Verdict("best", None), Verdict("tied", 1.0)
    table = report.settings_table(found, found.settings)
    assert ("Ahead of the best's mean only over other seeds (best_val_acc): 3: 0.8100 against 0.8200 for the best "
            "(1) on seeds 1, 2, 3.") in table
    # Over the same seeds, or behind the best's mean: nothing to explain.
    three.verdict, one.verdict = Verdict("best", None), Verdict("tied", 1.0)
    assert "Ahead of the best" not in report.settings_table(found, found.settings)


def test_a_legend_of_many_long_names_widens_its_figure_instead_of_squeezing_the_axes():
    import matplotlib

    from mlpbench import files

    matplotlib.use("Agg")
    widths = {}
    for count, name in ((2, "relu"), (20, "optim=rmsprop/lr=0.0001 (n=3)")):
        fig, axes = files.figure()
        for i in range(count):
            axes[0][0].plot([1, 2], [i, i + 1], label=f"{name} {i}")
        files.legend_beside(axes[0][0])
        widths[count] = fig.get_figwidth()
        legend = axes[0][0].get_legend().get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
        assert legend <= files.LEGEND_SHARE * files.FIGURE_SIZE[0] + fig.get_figwidth() - files.FIGURE_SIZE[0] + 1e-6
    assert widths[2] == files.FIGURE_SIZE[0] and widths[20] > files.FIGURE_SIZE[0] + 2


def test_a_sweep_of_one_setting_names_its_row_by_its_command_not_its_folders_time_stamp(tmp_path):
    sweep = tmp_path / "2026-12-06_20-56-43"
    for seed in (1, 2, 3):
        fake_run(sweep, ["trainer.max_epochs=1", f"seed={seed}"], [0.8, 0.85 + seed / 100], experiment=None)
    table = report.build([sweep]).text
    assert "| trainer.max_epochs=1 | 3 |" in table and "2026-12-06_20-56-43 |" not in table


def test_few_settings_show_each_seeds_curve_under_their_mean(tmp_path, drawn):
    # XOR: two seeds learn it, one is stuck at 0.75; the mean, 0.92, is a curve no seed followed.
    xor = tmp_path / "xor"
    for seed, acc in ((1, 1.0), (2, 1.0), (3, 0.75)):
        fake_run(xor, [f"seed={seed}"], [0.5, acc], experiment="xor")
    report.build([xor])
    ax = drawn["val_acc.png"].axes[0]
    thin = sorted(tuple(line.get_ydata()) for line in ax.get_lines() if line.get_linewidth() == 0.7)
    assert thin == [(0.5, 0.75), (0.5, 1.0), (0.5, 1.0)] and "(thin: each seed)" in ax.get_title()
    # Four settings or more: the means and bands alone.
    many = tmp_path / "many"
    for activation in ("relu", "tanh", "sigmoid", "elu"):
        for seed in (1, 2):
            fake_run(many, [f"model.activation={activation}", f"seed={seed}"], [0.5, 0.8 + seed / 100])
    report.build([many])
    ax = drawn["val_acc.png"].axes[0]
    assert not [line for line in ax.get_lines() if line.get_linewidth() == 0.7] and "thin" not in ax.get_title()


def test_several_sweeps_judge_each_row_across_the_sweeps(tmp_path):
    # At depth 8 the shortcuts keep the accuracy plain ReLU loses; at depth 2 the two are alike.
    accs = {"depth_relu": {2: [0.90, 0.91, 0.92], 8: [0.40, 0.45, 0.50]},
            "depth_residual": {2: [0.905, 0.912, 0.915], 8: [0.90, 0.91, 0.93]}}
    for name, by_depth in accs.items():
        for depth, values in by_depth.items():
            for seed, acc in enumerate(values, start=1):
                fake_run(tmp_path / name, [f"model.depth={depth}", f"seed={seed}"], [acc - 0.1, acc], experiment=name)
    text = report.build([tmp_path / "depth_relu", tmp_path / "depth_residual"], out=tmp_path / "compare").text
    assert "the last column judges each row across the sweeps, paired by seed" in text
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in text.split("\n\n")[1].splitlines()[2:]}
    p = compare(dict(enumerate(accs["depth_residual"][8], 1)), dict(enumerate(accs["depth_relu"][8], 1))).p
    assert rows["8"] == f"depth_residual best; depth_relu worse (p = {p:.2g})" and p < 0.05
    assert rows["2"] == "depth_relu, depth_residual tied best"  # in the order of the columns


def test_a_sweeps_report_that_cannot_be_written_says_why_and_how_to_make_it_later(tmp_path, monkeypatch, capsys):
    import errno

    from omegaconf import OmegaConf

    from mlpbench.sweep import SweepSummary

    def full(config):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "summary.md"))

    monkeypatch.setattr(SweepSummary, "_report", lambda self, config: full(config))
    with pytest.raises(SystemExit) as exit_info:
        SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert err.strip() == (f"mlpbench: error: the sweep's report could not be written: No space left on device "
                           f"({tmp_path / 'summary.md'}). Free the space (or the folder), then: python -m mlpbench.report "
                           f"{tmp_path}")
