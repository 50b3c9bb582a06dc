"""data=table: your own CSV, TSV, Parquet or NPZ file, read, encoded and trained as the bundled
sources are; a file that cannot be used named with its column before anything trains."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import pytest
from omegaconf import OmegaConf

from mlpbench import data, predict, table
from mlpbench.predict import main as predict_main
from mlpbench.schema import Task
from mlpbench.run import compose_config
from mlpbench.schema import ConfigError, checked
from tests.conftest import REPO, run_cli, run_rows, summary_rows


def sklearn_csv(folder, dataset: str):
    """docs/data.md's worked examples: one of scikit-learn's bundled tables as a CSV, its target
    column `target`: breast_cancer (569 rows, 2 classes), diabetes (442 rows, a float target of
    214 values: disease progression after a year, a regression)."""
    from sklearn import datasets

    path = folder / f"{dataset}.csv"
    getattr(datasets, f"load_{dataset}")(as_frame=True).frame.to_csv(path, index=False)
    return path


def breast_cancer(folder):
    return sklearn_csv(folder, "breast_cancer")


def table_cfg(path, *overrides):
    return compose_config(["data=table", f"data.path={path}", *overrides]).data


def write(path, text):
    path.write_text(text)
    return path


def depth_sweep(folder, dataset: str, seeds: str, epochs: int):
    """`mlpbench -m` over depth 1 and 2 on the dataset's CSV: its sweep folder and the process."""
    sweep = folder / "sweep"
    proc = run_cli("-m", "data=table", f"data.path={sklearn_csv(folder, dataset)}", "data.target=target",
                   "model.depth=1,2", f"seed={seeds}", f"trainer.max_epochs={epochs}", "hydra.launcher.workers=1",
                   f"hydra.sweep.dir={sweep}", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return sweep, proc


def test_a_csv_of_your_own_trains_sweeps_and_reports(tmp_path):
    sweep, _ = depth_sweep(tmp_path, "breast_cancer", "1,2", epochs=2)
    rows = summary_rows(sweep)
    assert [r["model.depth"] for r in rows] == ["1", "2"] and {r["n"] for r in rows} == {"2"}
    assert all(float(r["best_val_acc_mean"]) > 0.8 for r in rows)  # 30 features, 2 classes: an easy table
    result = json.loads((sweep / "model.depth=1,seed=1" / "result.json").read_text())
    assert result["data"] == {"train": 364, "val": 91, "test": 114}  # 569 rows: 20% test, stratified
    encoding = result["table"]
    assert encoding["classes"] == ["0", "1"] and encoding["target"] == "target"
    assert len(encoding["features"]) == 30 and encoding["categories"] == {}
    assert result["stacked"]["replicas"] == 2  # seeds of a table stack as any source's
    # predict's run: the best setting's best run, or --run NAME; from the sweep or a folder of sweeps.
    best_depth = next(r["model.depth"] for r in rows if r["verdict"] == "best")
    best = max((r for r in run_rows(sweep) if r["model.depth"] == best_depth), key=lambda r: float(r["best_val_acc"]))
    assert predict.choose_run(tmp_path, None) == sweep / best["run"]
    for folder in (sweep, tmp_path):
        assert predict.choose_run(folder, "model.depth=2,seed=1") == sweep / "model.depth=2,seed=1"
        with pytest.raises(ConfigError, match=f"--run depth=9: no run of that name in {sweep}; its runs: "
                                              "model.depth=1,seed=1, model.depth=1,seed=2, model.depth=2,seed=1"):
            predict.choose_run(folder, "depth=9")


def test_a_sweep_over_files_and_target_columns_trains_each(tmp_path):
    # data.path and data.target are required with data=table: swept, each run has its own, and
    # the sweep is not refused for the settings without them (the command's own, checked first).
    rows = ["colour,size,label"] + [f"{c},{s},{'big' if s > 5 else 'small'}" for c, s in
                                    zip(["red", "blue", "green"] * 10, range(30))]
    for name in ("a.csv", "b.csv"):
        write(tmp_path / name, "\n".join(rows) + "\n")
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "data=table", "data.path=a.csv,b.csv", "data.target=label,colour", "trainer.max_epochs=1",
                   "hydra.launcher.workers=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    classes = {(r["data.path"], r["data.target"]): r["status"] for r in run_rows(sweep)}
    assert classes == {(p, t): "ok" for p in ("a.csv", "b.csv") for t in ("label", "colour")}
    result = json.loads(next(sweep.glob("*data.target=colour*/result.json")).read_text())
    assert result["table"]["classes"] == ["blue", "green", "red"]
    # A value wrong whatever the other keys say is refused before anything trains, named.
    proc = run_cli("-m", "data=table,digits", "data.path=a.csv", "data.target=label", cwd=tmp_path)
    assert proc.returncode == 2 and "data=digits: this value of the grid cannot run: data.path=a.csv: applies to " \
        "data=table only (this is data=digits)" in proc.stderr
    # A file only its run reads wrong: that run fails; the hint is to fix it, not to retry.
    write(tmp_path / "short.csv", "colour,label\nred,big\n")
    proc = run_cli("-m", "data=table", "data.path=a.csv", "data.target=label", "data.test_path=a.csv,short.csv",
                   "trainer.max_epochs=1", "hydra.launcher.workers=1", f"hydra.sweep.dir={tmp_path / 'tests'}",
                   cwd=tmp_path)
    assert proc.returncode == 1 and "TableError: data.test_path=short.csv: lacks the column(s) size" in proc.stderr
    assert "Fix the value named above" in proc.stderr and "resume=true" not in proc.stderr
    # Two files whose run folders would have one name (a / becomes _): refused, not one skipped.
    (tmp_path / "s1").mkdir()
    write(tmp_path / "s1" / "a.csv", "\n".join(rows) + "\n")
    write(tmp_path / "s1_a.csv", "\n".join(rows) + "\n")
    proc = run_cli("-m", "data=table", "data.path=s1/a.csv,s1_a.csv", "data.target=label", cwd=tmp_path)
    assert proc.returncode == 2 and "data.path=s1/a.csv and data.path=s1_a.csv would share a run folder " \
        "(data.path=s1_a.csv: a / in a folder's name becomes _)" in proc.stderr, proc.stderr
    # Folders named otherwise (by the job's number) share nothing: both train.
    proc = run_cli("-m", "data=table", "data.path=s1/a.csv,s1_a.csv", "data.target=label", "trainer.max_epochs=1",
                   "hydra.sweep.subdir=${hydra.job.num}", f"hydra.sweep.dir={tmp_path / 'numbered'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.parent.name for p in (tmp_path / "numbered").glob("*/result.json")) == ["0", "1"]


def test_a_resumed_run_refused_by_its_edited_file_keeps_its_folder_for_the_next_resume(tmp_path):
    rows = ["size,label"] + [f"{s},{'big' if s > 20 else 'small'}" for s in range(40)]
    write(tmp_path / "rows.csv", "\n".join(rows) + "\n")
    run = ["data=table", "data.path=rows.csv", "data.target=label", "trainer.max_epochs=3",
           f"+callbacks.stop={{_target_:tests.faults.CtrlCOnceInSecondEpoch,marker:'{tmp_path / 'stopped'}'}}"]
    assert run_cli(*run, cwd=tmp_path).returncode == 130
    (run_dir,) = (tmp_path / "outputs" / "run").glob("*/*")
    write(tmp_path / "rows.csv", "size,label\n1,big\n2,big\n3,big\n")  # another file: refused
    proc = run_cli(*run, "resume=true", cwd=tmp_path)
    assert proc.returncode == 2 and (f"{tmp_path / 'rows.csv'}: its content changed since the run in {run_dir} "
                                     "read it") in proc.stderr, proc.stderr
    assert "continuing would mix two versions of the data in one result" in proc.stderr
    assert (run_dir / ".hydra" / "overrides.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    write(tmp_path / "rows.csv", "\n".join(rows) + "\n")
    proc = run_cli(*run, "resume=true", cwd=tmp_path)
    assert proc.returncode == 0 and f"Resuming the run in {run_dir.relative_to(tmp_path)}" in proc.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "ok"


def test_a_sweep_continued_or_given_more_seeds_after_its_file_was_edited_is_refused(tmp_path):
    rows = ["size,label"] + [f"{s},{'big' if s > 20 else 'small'}" for s in range(40)]
    write(tmp_path / "rows.csv", "\n".join(rows) + "\n")
    grid = ["-m", "data=table", "data.path=rows.csv", "data.target=label", "model.depth=1,2", "trainer.max_epochs=1",
            "hydra.sweep.dir=s"]
    assert run_cli(*grid, "seed=1", cwd=tmp_path).returncode == 0
    runs = sorted(p.name for p in (tmp_path / "s").iterdir() if (p / "result.json").is_file())
    recorded = json.loads((tmp_path / "s" / runs[0] / "result.json").read_text())["files"]
    assert recorded == {str(tmp_path / "rows.csv"): table.content_digest(tmp_path / "rows.csv")}
    # The labels flipped: seed 2's runs would read them, seed 1's did not.
    write(tmp_path / "rows.csv", "\n".join(rows).replace("big", "x").replace("small", "big").replace("x", "small"))
    proc = run_cli(*grid, "seed=1,2", cwd=tmp_path)
    assert proc.returncode == 2 and (f"{tmp_path / 'rows.csv'}: its content changed since run {runs[0]} and 1 more "
                                     "read it") in proc.stderr, proc.stderr
    assert not list((tmp_path / "s").glob("*seed=2*"))  # nothing trained
    write(tmp_path / "rows.csv", "\n".join(rows) + "\n")  # put back: the sweep goes on
    assert run_cli(*grid, "seed=1,2", cwd=tmp_path).returncode == 0
    # Runs that failed start over: the file fixed for them is no edit to refuse.
    holes = ["size,label"] + [f"{'' if s == 3 else s},{'big' if s > 20 else 'small'}" for s in range(40)]
    write(tmp_path / "holes.csv", "\n".join(holes) + "\n")
    failing = [*grid[:2], "data.path=holes.csv", *grid[3:-1], "hydra.sweep.dir=h", "seed=1"]
    assert run_cli(*failing, cwd=tmp_path).returncode == 1
    write(tmp_path / "holes.csv", "\n".join(rows) + "\n")
    proc = run_cli(*failing, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_parquet_tsv_and_npz_read_the_same_rows_as_csv(tmp_path):
    import pandas as pd

    csv = breast_cancer(tmp_path)
    frame = pd.read_csv(csv)
    frame.to_parquet(tmp_path / "bc.parquet")
    frame.to_csv(tmp_path / "bc.tsv", sep="\t", index=False)
    np.savez(tmp_path / "bc.npz", x=frame.drop(columns="target").to_numpy(), y=frame["target"].to_numpy())
    reference = table.encode(table_cfg(csv, "data.target=target"))
    for name in ("bc.parquet", "bc.tsv", "bc.npz"):
        found = table.encode(table_cfg(tmp_path / name, *([] if name.endswith("npz") else ["data.target=target"])))
        for mine, theirs in zip(found[:4], reference[:4]):
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, err_msg=name)
    # An .npz's labels are its y: a data.target given with one is said to go unread.
    *_, encoding = table.encode(table_cfg(tmp_path / "bc.npz", "data.target=target"))
    assert f"data.target=target: not read: {tmp_path / 'bc.npz'}'s labels are its array y" in encoding["notes"]


def test_text_columns_are_one_hot_and_labels_may_be_words(tmp_path):
    rows = ["colour,size,label"] + [f"{c},{s},{'big' if s > 5 else 'small'}" for c, s in
                                    zip(["red", "blue", "green"] * 10, range(30))]
    train = write(tmp_path / "train.csv", "\n".join(rows) + "\n")
    test = write(tmp_path / "test.csv", "colour,size,label\npurple,3,small\nred,20,big\n")
    x_train, y_train, x_test, y_test, encoding = table.encode(
        table_cfg(train, "data.target=label", f"data.test_path={test}"))
    assert encoding["classes"] == ["big", "small"] and encoding["categories"] == {"colour": ["blue", "green", "red"]}
    assert encoding["columns"] == ["colour=blue", "colour=green", "colour=red", "size"]
    assert x_train.shape == (30, 4) and x_test.shape == (2, 4) and list(y_test) == [1, 0]
    assert list(x_test[0, :3]) == [0, 0, 0] and list(x_test[1, :3]) == [0, 0, 1]  # purple: no training row had it
    # size standardised on the training rows only: mean 0, sd 1 there.
    assert abs(x_train[:, 3].mean()) < 1e-6 and abs(x_train[:, 3].std() - 1) < 1e-5
    assert x_test[1, 3] == pytest.approx((20 - 14.5) / np.std(np.arange(30)), rel=1e-5)


@pytest.mark.parametrize("name, text, options, message", [
    ("no_target.csv", "a,b\n1,2\n3,4\n", [], "data.target=label: {path} has no such column; its columns: a, b"),
    ("one_class.csv", "a,label\n1,x\n2,x\n3,x\n", [], "has one class only ('x')"),
    ("one_value.csv", "a,label\n1,3.5\n2,3.5\n3,3.5\n", ["data.task=regression"],
     "data.target=label: {path} has one value only (3.5) in every row; a regression needs values that vary"),
    ("ids.csv", "a,label\n" + "".join(f"{i},{i}\n" for i in range(10)), [], "10 classes in 10 rows (fewer than 2 rows "
     "a class): an identifier, or a number to predict"),
    ("tiny.csv", "a,label\n1,x\n2,y\n3,x\n", [], "2 classes in 3 rows (fewer than 2 rows a class): too few rows"),
    ("empty.csv", "", [], "data.path={path}: the file is empty"),
    ("header.csv", "a,b,label\n", [], "data.path={path}: a header (a, b, label) but no rows"),
    ("mixed.csv", "a,label\n1,x\n2,y\nthree,x\n4,y\n", [], "column a mixes numbers and text (row 1: '1', row 3: 'three')"),
    ("marks.csv", "a,label\n1,x\n2,y\n?,x\n4,y\n", [], "column a mixes numbers and text (row 1: '1', row 3: '?') "
     "('?' marks a missing value? Write an empty cell there, then choose data.missing); make it one or the other"),
    ("holes.csv", "a,b,label\n1,,x\n2,5,y\n,6,x\n4,7,y\n", [], "column a has 1 missing value(s), row(s) 3"),
    ("semicolons.csv", "a;b;label\n1;2;x\n2;3;y\n", [], "has no such column; its columns: a;b;label (one column: "
     "the file seems separated by ';', and a .csv file is read as separated by commas; save it with commas and "
     "decimal points"),
    ("infinite.csv", "a,b,label\n1,2,x\n2,3,y\n3,-inf,x\n4,5,y\n5,6,x\n6,7,y\n", [],
     "column b holds 1 infinite value(s) (-inf), row(s) 3; replace them, or leave the column out with data.drop=[b]"),
    # float64's own range: no mean or spread to standardize by
    ("huge.csv", "a,b,label\n1,2,x\n2,3,y\n3,1e308,x\n4,1.7e308,y\n5,6,x\n6,7,y\n", [],
     "column b's values are too large to standardize (mean inf, standard deviation"),
    ("feature.csv", "a,b,label\n1,2,x\n2,3,y\n", ["data.features=[a,c]"], "data.features: {path} has no column c"),
    ("text.xlsx", "a,label\n1,x\n", [], "a .xlsx file; give a .csv, .tsv (either may be .gz, .bz2 or .xz), "
     ".parquet or .npz file"),
    ("plain.csv.gz", "a,label\n1,x\n", [], "cannot be read as .gz (Not a gzipped file (b'a,')); a plain text file "
     "is named without .gz"),
    # pandas would read the second `label` as `label.1`: an input holding a copy of the label
    ("twice.csv", "a,a,label,label\n1,2,x,x\n3,4,y,y\n", [], "the header names a, label more than once"),
    # else each value a category of its own: 1,5 and 3,25 one-hot
    ("comma.tsv", "preis\tlabel\n1,5\tx\n2\ty\n3,25\tx\n4,5\ty\n", [],
     "column preis holds numbers written with a decimal comma or a thousands separator ('1,5'), read as text"),
    ("percent.csv", "a,label\n5%,x\n10%,y\n12.5 %,x\n1%,y\n", [], "column a holds numbers written as percentages ('5%')"),
    ("bools.csv", "a,true\n1,x\n2,y\n", ["data.target=true"], "data.target=True: {path} has no such column; did you "
     "mean true? (the command line reads an unquoted true or 1e3 as a bool or a number, True: quote a column's name"),
    ("case.csv", "a,label\n1,x\n2,y\n", ["data.features=[A]"], "has no column A; did you mean a?; its columns: a, label"),
    # a list key's quoting is a list's: data.drop='true' is refused as no list
    ("drop_true.csv", "a,true,label\n1,2,x\n2,3,y\n", ["data.drop=[True]"], "data.drop: {path} has no column True; "
     "did you mean true? (the command line reads an unquoted true or 1e3 as a bool or a number, True: quote a "
     "column's name, \"data.drop=['NAME']\")"),
    # a column with no value: named before data.missing=drop would drop every row for it
    ("unfilled.csv", "a,gone,label\n1,,x\n2,,y\n3,,x\n", ["data.missing=drop"], "column gone has no value in any "
     "row; leave it out with data.drop=[gone]"),
    # a file without a header row: its first row read as names
    ("no_header.csv", "0.3,2.5,x\n0.25,1.5,y\n0.5,3.5,x\n", [], "its columns: 0.3, 2.5, x (its first row "
     "looks like data, not names: a file without a header row? Add one naming the columns)"),
    ("pixels.csv", "5,0,0,0\n0,0,1,0\n", [], "the header names 0 more than once; give each column its own name "
     "(its first row looks like data"),
    # a row short of a value: pandas reads the values after the gap into the columns before theirs
    ("short_row.csv", "a,b,colour,label\n1,2,red,x\n4,5,blue,y\n7,blue,y\n1,2,red,x\n", [],
     "{path}: row 3 (line 4) has 3 values for the header's 4 names: one left out moves those after it into the "
     "columns before theirs; write a missing value as an empty field (1,,3), or set data.missing=drop"),
    ("categorical_target.csv", "a,label\n1,x\n2,y\n", ["data.categorical=[label]"],
     "data.categorical: lists the target column label; its values are the classes already"),
    ("categorical_dropped.csv", "a,b,label\n1,2,x\n2,3,y\n", ["data.drop=[b]", "data.categorical=[b]"],
     "data.categorical: lists b, which is no input (data.drop leaves it out)"),
    ("categorical_unread.csv", "a,b,label\n1,2,x\n2,3,y\n", ["data.features=[a]", "data.categorical=[b]"],
     "data.categorical: lists b, which is no input (data.features does not list it)"),
])
def test_a_file_that_cannot_be_used_is_named_with_its_column(tmp_path, name, text, options, message):
    path = write(tmp_path / name, text)
    with pytest.raises(table.TableError) as error:
        table.encode(table_cfg(path, "data.target=label", *options))
    assert message.format(path=path) in str(error.value)


def test_a_sweep_on_a_file_it_cannot_use_says_so_once(tmp_path):
    # No such file: refused before any run, no sweep folder left.
    proc = run_cli("-m", "data=table", f"data.path={tmp_path / 'nope.csv'}", "data.target=label", "model.depth=1,2",
                   cwd=tmp_path)
    assert proc.returncode == 2 and f"data.path={tmp_path / 'nope.csv'}: no such file" in proc.stderr
    assert not (tmp_path / "outputs").exists()
    # Missing values, found as each run reads the file: the runs that failed alike, named together.
    holes = write(tmp_path / "holes.csv", "a,label\n" + "".join(f"{'' if i == 3 else i},{i % 2}\n" for i in range(40)))
    proc = run_cli("-m", "data=table", f"data.path={holes}", "data.target=label", "model.depth=1,2", "seed=1,2",
                   "trainer.max_epochs=1", cwd=tmp_path)
    assert proc.returncode == 1
    failures = [line for line in proc.stderr.splitlines() if "TableError" in line]
    assert len(failures) == 1 and "column a has 1 missing value(s), row(s) 4" in failures[0]
    assert failures[0].startswith("  model.depth=1,seed=1; model.depth=1,seed=2; model.depth=2,seed=1; "
                                  "model.depth=2,seed=2: TableError:") and "(4 runs; logs:" in failures[0]
    assert "Compare the curves" not in proc.stdout  # no run trained


def test_large_values_train_standardized_in_float64(tmp_path):
    # Luminosities in cgs units (1e38 to 1e44): beyond float32 as written, ordinary once standardized.
    rng = np.random.default_rng(0)
    lum = 10 ** rng.uniform(38, 44, 100)
    path = write(tmp_path / "astro.csv", "lum,label\n" + "".join(f"{v!r},{int(v > 1e41)}\n" for v in lum))
    x_train, *_ = table.encode(table_cfg(path, "data.target=label"))
    assert np.isfinite(x_train).all() and abs(float(x_train.mean())) < 0.5
    # Past 1.3e154 the squares of a spread overflow float64: standardized all the same, as numpy
    # does the same values in a smaller unit.
    path = write(tmp_path / "huger.csv", "lum,label\n" + "".join(f"{v * 1e200!r},{int(v > 1e41)}\n" for v in lum))
    x_huge, *_ = table.encode(table_cfg(path, "data.target=label"))
    assert np.allclose(x_huge, x_train, rtol=1e-6, atol=1e-6)
    # Values near float64's end (a largest of 2^1023 or more): a unit that is a float itself.
    path = write(tmp_path / "edge.csv", "v,label\n1.7e308,a\n-1.7e308,b\n" + "".join(f"{i},{'ab'[i % 2]}\n"
                                                                                     for i in range(10)))
    x_edge, *_ = table.encode(table_cfg(path, "data.target=label"))
    assert np.isfinite(x_edge).all()


def test_a_finished_sweep_resumes_after_its_file_moved_as_its_runs_read_nothing(tmp_path):
    path = write(tmp_path / "g.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    args = ["-m", "data=table", "data.path=g.csv", "data.target=label", "model.depth=1,2", "trainer.max_epochs=1",
            "hydra.sweep.dir=s"]
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    path.rename(tmp_path / "g.bak")
    proc = run_cli(*args, "resume=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("already ok") + proc.stdout.count("already ok") == 2  # skipped, as before


def test_a_compressed_text_table_reads_as_the_plain_one_and_a_cut_one_is_named(tmp_path):
    import bz2
    import gzip
    import lzma

    text = "size,colour,label\n" + "".join(f"{i * 0.5},{'red' if i % 3 else 'blue'},{i % 2}\n" for i in range(60))
    plain = table.encode(table_cfg(write(tmp_path / "rows.csv", text), "data.target=label"))
    for name, compress in (("rows.csv.gz", gzip.compress), ("rows.tsv.xz", lzma.compress),
                           ("rows.csv.bz2", bz2.compress)):
        raw = (text.replace(",", "\t") if ".tsv" in name else text).encode()
        (tmp_path / name).write_bytes(compress(raw))
        *arrays, encoding = table.encode(table_cfg(tmp_path / name, "data.target=label"))
        assert all(np.array_equal(a, b) for a, b in zip(arrays, plain[:4])), name
        assert encoding == {**plain[4], "file": str(tmp_path / name)}
    # Cut short in copying (past the first 8 KiB read for the checks): said, with what to do.
    long_text = text + "".join(f"{i},red,{i % 2}\n" for i in range(5000))
    cut = gzip.compress(long_text.encode())
    (tmp_path / "cut.csv.gz").write_bytes(cut[:len(cut) // 2])
    with pytest.raises(table.TableError, match=r"cut.csv.gz: truncated or corrupt .gz file \(.*\); copy or compress"):
        table.encode(table_cfg(tmp_path / "cut.csv.gz", "data.target=label"))


def test_a_binary_file_and_a_damaged_npz_are_named(tmp_path):
    binary = tmp_path / "model.csv"
    binary.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with pytest.raises(table.TableError, match=r"not a text file \(a binary file with a .csv name\?\)"):
        table.encode(table_cfg(binary, "data.target=label"))
    (tmp_path / "latin1.csv").write_bytes("a,label\n1,café\n2,thé\n".encode("latin-1"))
    with pytest.raises(table.TableError, match="latin1.csv: not UTF-8 text; save it as UTF-8"):
        table.encode(table_cfg(tmp_path / "latin1.csv", "data.target=label"))
    (tmp_path / "excel.tsv").write_bytes("a\tlabel\n1\tx\n".encode("utf-16"))
    with pytest.raises(table.TableError, match="excel.tsv: UTF-16 text; save it as UTF-8"):
        table.encode(table_cfg(tmp_path / "excel.tsv", "data.target=label"))
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    (tmp_path / "x.npy").rename(tmp_path / "array.npz")
    with pytest.raises(table.TableError, match=r"array.npz: one NumPy array \(np.save's .npy\); save x and y with"):
        table.encode(table_cfg(tmp_path / "array.npz"))
    np.savez(tmp_path / "wrong.npz", features=np.zeros((3, 2)))
    with pytest.raises(table.TableError, match="has arrays features; needs x"):
        table.encode(table_cfg(tmp_path / "wrong.npz"))
    (tmp_path / "rows.csv").mkdir()
    with pytest.raises(table.TableError, match="rows.csv: a folder; give a .csv"):
        table.encode(table_cfg(tmp_path / "rows.csv", "data.target=label"))


def test_a_nameless_column_is_left_out_and_said_and_spaces_around_a_text_are_no_part_of_it(tmp_path, caplog):
    # pandas' to_csv writes its row numbers as a first column without a name: here they would
    # give the label away (the rows sorted by it); a separator at each line's end, an empty one.
    labels = sorted(["yes", "no", "yes "] * 10)
    path = write(tmp_path / "saved.csv", ",v,label,\n" + "".join(f"{i},{i % 7},{y},\n" for i, y in enumerate(labels)))
    with caplog.at_level("INFO", logger="mlpbench"):
        arrays = data.load_table(table_cfg(path, "data.target=label"))
    encoding = arrays.encoding
    assert encoding["features"] == ["v"] and arrays.x_train.shape[1] == 1
    assert encoding["classes"] == ["no", "yes"]  # "yes " is yes
    import pandas as pd

    pd.DataFrame({"v": range(30), "label": labels}).to_parquet(tmp_path / "saved.parquet")  # a Parquet file's too
    assert table.encode(table_cfg(tmp_path / "saved.parquet", "data.target=label"))[4]["classes"] == ["no", "yes"]
    said = (f"{path}: column 1 has no name in the header (row numbers that pandas' to_csv wrote?); left out: name "
            "it, or give data.features=[...,'Unnamed: 0'], to use it")
    assert said in caplog.text and f"{path}: column 4 has no name and no value" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="mlpbench"):  # every run says it, from the array cache too
        data.load_table(table_cfg(path, "data.target=label"))
    assert said in caplog.text
    # Named in data.features, it is an input; new rows to predict keep it by pandas' name.
    x, *_, encoding = table.encode(table_cfg(path, "data.target=label", "data.features=[v,'Unnamed: 0']"))
    assert encoding["features"] == ["v", "Unnamed: 0"] and x.shape[1] == 2
    assert not any("column 1 " in note for note in encoding["notes"])  # it is not left out
    # Saved twice with its row numbers: the first save's column has pandas' name; the new one may not.
    again = write(tmp_path / "again.csv", ",Unnamed: 0,v,label\n" + "".join(f"{i},{i},{i % 7},{y}\n"
                                                                          for i, y in enumerate(labels)))
    *_, encoding = table.encode(table_cfg(again, "data.target=label"))
    assert encoding["features"] == ["Unnamed: 0", "v"]
    assert "column 1 has no name in the header" in encoding["notes"][0] and "'(column 1)'" in encoding["notes"][0]


def test_a_text_column_of_mostly_different_values_is_said_to_look_like_an_identifier(tmp_path, caplog):
    path = write(tmp_path / "ids.csv", "id,a,label\n" + "".join(f"cust-{i:05},{i % 3},{i % 2}\n" for i in range(60)))
    *_, encoding = table.encode(table_cfg(path, "data.target=label"))
    assert encoding["notes"] == [f"{path}: column id has 48 different texts in 48 training rows, one input each: an "
                                 "identifier or a date, which a new row never matches? Leave it out with data.drop=[id]",
                                 f"{path}, the test rows: column id: 12 row(s) hold a category the training rows lacked "
                                 "(cust-00000, cust-00003, cust-00005, cust-00015, cust-00024, cust-00030, cust-00033, "
                                 "cust-00040 ... (12 in all)); the model reads it as none of its categories"]
    # As the note says: every other column an input, the identifier not.
    *_, encoding = table.encode(table_cfg(path, "data.target=label", "data.drop=[id]"))
    assert encoding["features"] == ["a"] and not any("identifier" in note for note in encoding["notes"])
    for drop, message in (("[idd]", "data.drop: {path} has no column idd; did you mean id?; its columns: id, a, label"),
                          ("[label]", "data.drop: lists the target column label; the labels to learn, never an input")):
        with pytest.raises(table.TableError) as error:
            table.encode(table_cfg(path, "data.target=label", f"data.drop={drop}"))
        assert message.format(path=path) in str(error.value)
    # A name Hydra would read as a bool or null is quoted in the advice, as the command line needs it.
    null = write(tmp_path / "null.csv", "true,a,label\n" + "".join(f"cust-{i:05},{i % 3},{i % 2}\n" for i in range(60)))
    *_, encoding = table.encode(table_cfg(null, "data.target=label"))
    assert encoding["notes"][0].endswith("Leave it out with \"data.drop=['true']\"")
    # Pasted into bash, such advice gives Hydra the name: bash drops bare single quotes, Hydra
    # reads a backslash before a quote or the end as an escape, and ${...} as an interpolation.
    from mlpbench.overrides import parse

    for name in ("true", "Zip Code", "Price ($)", "it's", 'a "b"', "$HOME", "id", "x\\y", "end\\", "${x}",
                 "both ' and \"", "tab\there"):
        advice = table._column_option("data.drop", name)
        typed = subprocess.run(["bash", "-c", f"printf '%s' {advice}"], capture_output=True, text=True).stdout
        read = OmegaConf.to_container(OmegaConf.create({"value": parse([typed])[0].value()}), resolve=True)["value"]
        assert read == [name], (name, advice, typed)
    with pytest.raises(ConfigError, match="data.drop=.'id'.: and data.features both choose the inputs; give one"):
        checked(compose_config(["data=table", f"data.path={path}", "data.target=label", "data.drop=[id]",
                                "data.features=[a]"]))


def test_a_number_column_that_counts_the_rows_is_said_to_tell_the_model_their_order(tmp_path):
    # A file sorted by label with an id 1..100: the id alone separates the classes.
    text = "".join(f"{i + 1},{(i * 7) % 10},{'no' if i < 50 else 'yes'}\n" for i in range(100))
    *_, encoding = table.encode(table_cfg(write(tmp_path / "sorted.csv", "id,a,label\n" + text), "data.target=label"))
    [note] = encoding["notes"]
    assert note.startswith(f"{tmp_path / 'sorted.csv'}: column id holds a different whole number on every row, in the "
                           "rows' order (") and note.endswith("leave it out with data.drop=[id]")
    # Counting down is the same; a measurement of unique values in no order, or a count that repeats, is not.
    for name, column in (("down", lambda i: 1000 - i), ("shuffled", lambda i: (i * 37) % 101), ("steps", lambda i: i // 2)):
        text = "".join(f"{column(i)},{i % 10},{'no' if i < 50 else 'yes'}\n" for i in range(100))
        *_, encoding = table.encode(table_cfg(write(tmp_path / f"{name}.csv", "n,a,label\n" + text), "data.target=label"))
        assert bool(encoding["notes"]) == (name == "down"), name


def test_a_header_that_reads_as_data_is_said_but_pandas_numbered_columns_are_names(tmp_path):
    rows = "".join(f"{i / 7},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(40))
    path = write(tmp_path / "no_header.csv", "0.5,2,no\n" + rows)
    *_, encoding = table.encode(table_cfg(path, "data.target=no"))
    assert encoding["notes"] == [f"{path}: the header (0.5, 2, no) reads as names; its first row looks like data, not "
                                 "names: a file without a header row? Add one naming the columns"]
    numbered = write(tmp_path / "numbered.csv", "0,1,2\n" + rows)  # pandas' to_csv of unnamed columns
    *_, encoding = table.encode(table_cfg(numbered, "data.target=2"))
    assert encoding["notes"] == []
    # A survey's items numbered 1..5, each answered 1-5, beside its label: names too.
    answers = "".join(",".join(str(1 + (i * k) % 5) for k in range(1, 6)) + f",{'yes' if i % 2 else 'no'}\n"
                      for i in range(40))
    *_, encoding = table.encode(table_cfg(write(tmp_path / "likert.csv", "1,2,3,4,5,label\n" + answers),
                                          "data.target=label"))
    assert not any("header" in note for note in encoding["notes"])
    # A row of data that happens to count up (3,4,yes) is no numbering of columns; nor is ².
    assert not table._numbering(["3", "4", "yes"]) and not table._numbering(["1", "²"])
    # A spectrum's wavelengths as names: numbers, but not of its values; in Parquet no header row at all.
    import pandas as pd

    spectrum = pd.DataFrame({"1100.0": np.linspace(0, 1, 40), "1100.5": np.linspace(1, 0, 40) ** 2,
                             "label": ["a", "b"] * 20})
    spectrum.to_csv(tmp_path / "spectrum.csv", index=False)
    spectrum.rename(columns={"1100.0": "0.5", "1100.5": "0.25"}).to_parquet(tmp_path / "spectrum.parquet")  # as CSV: said
    for name in ("spectrum.csv", "spectrum.parquet"):
        *_, encoding = table.encode(table_cfg(tmp_path / name, "data.target=label"))
        assert not any("header" in note for note in encoding["notes"]), name
    # Wavelengths in even steps whose values span them (counts of 0-1000 under 400, 410, 420 nm).
    rng = np.random.default_rng(0)
    counts = pd.DataFrame({str(400 + 10 * i): rng.integers(0, 1000, 40) for i in range(6)} | {"label": ["a", "b"] * 20})
    counts.to_csv(tmp_path / "counts.csv", index=False)
    *_, encoding = table.encode(table_cfg(tmp_path / "counts.csv", "data.target=label"))
    assert not any("header" in note for note in encoding["notes"])
    assert table._evenly_spaced(["0.5", "1", "1.5", "y"]) and not table._evenly_spaced(["0.84", "2.27", "3.1"])


def test_classes_that_differ_only_in_case_are_said(tmp_path):
    path = write(tmp_path / "case.csv", "a,label\n" + "".join(f"{i * 7 % 41},{['yes', 'no', 'Yes', 'NO'][i % 4]}\n"
                                                                for i in range(40)))
    *_, encoding = table.encode(table_cfg(path, "data.target=label"))
    assert encoding["classes"] == ["NO", "Yes", "no", "yes"]  # as written: a class each
    assert encoding["notes"] == [f"{path}: column label's classes NO, no; Yes, yes differ only in case: 4 classes, "
                                 "2 if those are one each. Write each class one way to make them one"]


def test_rows_repeated_across_the_test_split_are_said_to_make_scores_optimistic(tmp_path):
    rows = "".join(f"{i * 13 % 101},{i * 7 % 11},{i % 2}\n" for i in range(100))  # (a: no row count)
    once = write(tmp_path / "once.csv", "a,b,label\n" + rows)
    *_, encoding = table.encode(table_cfg(once, "data.target=label"))
    assert encoding["notes"] == []
    thrice = write(tmp_path / "thrice.csv", "a,b,label\n" + rows * 3)
    x_train, _, x_test, _, encoding = table.encode(table_cfg(thrice, "data.target=label"))
    # The 100 distinct rows, 3 copies each: a test row lacks a training copy only where all 3 are test rows.
    distinct_train = len(np.unique(x_train, axis=0))
    in_train = sum((x_train == row).all(axis=1).any() for row in x_test)
    assert len(x_test) == 60 and in_train > 50
    assert encoding["notes"] == [f"{thrice}: {in_train} of 60 test rows have the same inputs as a training row, and "
                                 f"{240 - distinct_train} of 240 training rows as another: copies on both sides of a "
                                 "split make val and test scores optimistic. Keep one row of each (pandas: "
                                 "drop_duplicates(subset=the input columns)), or keep each row's copies on one side "
                                 "of the test split (data.split_column, or a data.test_path file without them)"]
    # Inputs of few values each (binary flags): equal rows are the population, not copies.
    flags = write(tmp_path / "flags.csv", "a,b,c,label\n" + "".join(f"{i % 2},{i // 2 % 2},{i // 4 % 2},{i % 3 % 2}\n"
                                                                     for i in range(300)))
    *_, encoding = table.encode(table_cfg(flags, "data.target=label"))
    assert encoding["notes"] == []


def test_a_whole_number_target_read_as_classes_is_said(tmp_path, caplog):
    path = write(tmp_path / "price.csv", "a,price\n" + "".join(f"{i},{i % 30}\n" for i in range(300)))
    with caplog.at_level("INFO", logger="mlpbench"):
        arrays = data.load_table(table_cfg(path, "data.target=price"))
    assert arrays.num_classes == 30
    assert (f"data.task=classification (inferred): {path}'s column price holds 30 different whole numbers, read as "
            "classes; set data.task=regression to predict it as a number") in caplog.text
    # A rating in half steps: few values, so classes, but with fractions, so said too.
    rating = write(tmp_path / "rating.csv", "a,rating\n" + "".join(f"{i},{1 + i % 9 / 2}\n" for i in range(90)))
    caplog.clear()
    with caplog.at_level("INFO", logger="mlpbench"):
        arrays = data.load_table(table_cfg(rating, "data.target=rating"))
    assert arrays.num_classes == 9
    assert (f"data.task=classification (inferred): {rating}'s column rating holds 9 different numbers with "
            "fractions, read as classes; set data.task=regression") in caplog.text


def test_whole_number_labels_with_a_gap_stay_classes_and_codes_keep_their_leading_zeros(tmp_path, caplog):
    # One blank label makes pandas read 0..30 as floats (7.0): still 31 classes, not a regression
    # (as floats, more than one value per ten rows read as numbers to predict).
    rows = [f"{i},{i % 31}" for i in range(300)]
    rows[4] = "4,"
    path = write(tmp_path / "gap.csv", "a,price\n" + "\n".join(rows) + "\n")
    cfg = table_cfg(path, "data.target=price", "data.missing=drop")
    with caplog.at_level("INFO", logger="mlpbench"):
        arrays = data.load_table(cfg)
    assert arrays.num_classes == 31 and "31 different whole numbers, read as classes" in caplog.text
    assert table.task_of(cfg) is Task.classification  # as a search checks its objective
    # Written with fractions (151.0), the same values are numbers to predict, as before.
    written = write(tmp_path / "floats.csv", "a,price\n" + "".join(f"{i},{i % 31}.0\n" for i in range(300)))
    assert table.task_of(table_cfg(written, "data.target=price")) is Task.regression
    # Codes with leading zeros are the classes as written, in the test file too; the model's
    # classes (predict's p_007 column) match the file's labels.
    codes = write(tmp_path / "codes.csv", "a,code\n" + "".join(f"{i},{('007', '042')[i % 2]}\n" for i in range(40)))
    tested = write(tmp_path / "tested.csv", "a,code\n" + "".join(f"{i},{('007', '042')[i % 2]}\n" for i in range(6)))
    *_, y_test, encoding = table.encode(table_cfg(codes, "data.target=code", f"data.test_path={tested}"))
    assert encoding["classes"] == ["007", "042"] and y_test.tolist() == [0, 1] * 3
    # 7 and 07 in one file: a class each, as written, and said.
    mixed = write(tmp_path / "mixed.csv", "a,code\n" + "".join(f"{i},{('7', '07', '042')[i % 3]}\n" for i in range(45)))
    *_, encoding = table.encode(table_cfg(mixed, "data.target=code"))
    assert encoding["classes"] == ["7", "07", "042"]  # by value, then as first met
    assert (f"{mixed}: column code's classes 7, 07 differ only in leading zeros: 3 classes, 2 if those are one "
            "each. Write each class one way to make them one") in encoding["notes"]
    # Asked for as numbers to predict, they are numbers.
    *_, encoding = table.encode(table_cfg(codes, "data.target=code", "data.task=regression"))
    assert encoding["task"] == "regression" and encoding["target_scale"][0] == pytest.approx(24.5)
    # The labels as written are each row's own: a blank line before the header, rows one field
    # longer than it (pandas: the first an index). (A row shorter than it is refused.)
    lines = [f"{i},{('007', '042')[i % 2]}" for i in range(40)]
    for name, text in (("blank.csv", "\na,code\n" + "\n".join(lines) + "\n"),
                       ("longer.csv", "a,code\n" + "\n".join(f"{line}," for line in lines) + "\n")):
        cfg = table_cfg(write(tmp_path / name, text), "data.target=code", "data.missing=drop")
        try:
            x_train, y_train, *_, encoding = table.encode(cfg)
        except table.TableError as e:  # pandas' own reading of such a file may leave no usable row
            assert name == "longer.csv" and "usable row" in str(e), (name, e)
            continue
        assert encoding["classes"] == ["007", "042"], name
        a = x_train[:, 0] * encoding["numbers"]["a"][1] + encoding["numbers"]["a"][0]
        assert np.array_equal(np.round(a).astype(int) % 2, y_train), name  # row i: code (007, 042)[i % 2]


def test_codes_read_as_categories_keep_their_leading_zeros_and_a_column_of_such_codes_read_as_numbers_is_said(
        tmp_path, monkeypatch, capsys):
    # Zip codes: 02139 read as the number 2139 is a size to the model. Said, with the key that
    # reads each code as a category, as the file writes it: in the test file and new rows too.
    codes = ("02139", "02446", "10001", "94105")
    lines = ["zip,rooms,label"] + [f"{codes[i % 4]},{i % 5},{'east' if i % 4 < 2 else 'west'}" for i in range(40)]
    houses = write(tmp_path / "houses.csv", "\n".join(lines) + "\n")
    tested = write(tmp_path / "tested.csv", "zip,rooms,label\n02446,1,east\n94105,2,west\n")
    *_, encoding = table.encode(table_cfg(houses, "data.target=label"))
    assert encoding["columns"] == ["zip", "rooms"] and "categorical" not in encoding
    assert (f"{houses}: column zip is written with leading zeros (02139, 02446): codes? Read as numbers (2139) their "
            "sizes are what the model learns from; data.categorical=[zip] reads each as a category") in encoding["notes"]
    x_train, _, x_test, y_test, encoding = table.encode(
        table_cfg(houses, "data.target=label", "data.categorical=[zip]", f"data.test_path={tested}"))
    assert encoding["columns"] == ["zip=02139", "zip=02446", "zip=10001", "zip=94105", "rooms"]
    assert not any("leading zeros" in note for note in encoding["notes"])
    assert x_test[:, :4].tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]] and y_test.tolist() == [0, 1]
    assert x_train[:, :4].sum(axis=1).tolist() == [1] * 40  # every row one of the codes
    # Codes found wherever they are in the file (sorted by zip, the 0s last), quoted ones too.
    rows = [f"{90000 - 45 * i:05d},{i % 5},{'ab'[i % 2]}" for i in range(2001)]  # 09990 the 1,779th
    late = write(tmp_path / "late.csv", "zip,rooms,label\n" + "\n".join(rows) + "\n")
    quoted = write(tmp_path / "quoted.csv", 'zip,town,label\n' + '"02139","Cambridge, MA",a\n"10001","New York, NY",b\n' * 3)
    r_style = write(tmp_path / "r_style.csv", '"zip","rooms","label"\n' + "02139,1,a\n10001,2,b\n" * 3)  # write.csv
    for path, first in ((late, "09990"), (quoted, "02139"), (r_style, "02139")):
        notes = table.encode(table_cfg(path, "data.target=label"))[-1]["notes"]
        assert any(note.startswith(f"{path}: column zip is written with leading zeros ({first}") for note in notes)
    # Many such columns: one note (zero-padded numbers, perhaps); 000 is zero, no code.
    padded = "p0,p1,p2,p3,zero,label\n" + "".join(f"{i:03d},{i + 1:03d},{i + 2:03d},{i + 3:03d},000,{'ab'[i % 2]}\n"
                                                 for i in range(12))
    notes = table.encode(table_cfg(write(tmp_path / "padded.csv", padded), "data.target=label"))[-1]["notes"]
    assert [note for note in notes if "leading zeros" in note] == [
        f"{tmp_path / 'padded.csv'}: columns p0, p1, p2, p3 are written with leading zeros (001, 002, 003): codes? "
        "Read as numbers (1) their sizes are what the model learns from; data.categorical=[...] reads each as a category"]
    trained = {"table": encoding, "config": {"model": {}}}
    monkeypatch.setattr(predict, "load_model", lambda run, checkpoint_name="best": (torch.nn.Linear(5, 2), trained))
    capsys.readouterr()
    assert len(predict.predict(tmp_path, write(tmp_path / "new.csv", "zip,rooms\n02139,3\n2139,1\n"))) == 2
    assert "column zip: 1 row(s) hold a category the training rows lacked (2139)" in capsys.readouterr().err
    with pytest.raises(table.TableError, match="nozip.csv: lacks the column.s. zip the model reads; it has rooms"):
        predict.predict(tmp_path, write(tmp_path / "nozip.csv", "rooms\n3\n"))
    # A Parquet file's (or a gap's) whole floats are categories without a point: 7, not 7.0.
    import pandas as pd

    frame = pd.DataFrame({"code": [7.0, 12.0, None, 7.0] * 10, "label": ["a", "b"] * 20})
    frame.to_parquet(tmp_path / "codes.parquet")
    *_, encoding = table.encode(table_cfg(tmp_path / "codes.parquet", "data.target=label", "data.categorical=[code]",
                                          "data.missing=mean"))
    assert encoding["categories"] == {"code": ["12", "7"]}


def test_a_row_short_of_a_value_is_refused_by_its_row_and_line_or_left_out_with_data_missing_drop(tmp_path):
    # pandas fills a short row's last columns with gaps: the values after the one left out sit
    # in the columns before theirs, a text among numbers or a class of its own, with no error.
    def read(text, key="data.path", name="file.csv"):
        path = write(tmp_path / name, text)
        return table.short_rows(table.read_table(path, key, labelled=key != "--data"), f"{key}={path}",
                                None if key == "--data" else table.Missing.refuse)

    split = "a,b,label,split\n" + "1,2,x,train\n3,4,y,test\n" * 3 + "5,x,test\n"
    with pytest.raises(table.TableError, match=r"row 7 \(line 8\) has 3 values for the header's 4 names: one left out "
                                               r"moves those after it into the columns before theirs; write a missing "
                                               r"value as an empty field \(1,,3\), or set data.missing=drop to leave "
                                               r"such rows out$"):
        table.encode(table_cfg(write(tmp_path / "split.csv", split), "data.target=label", "data.split_column=split"))
    # Rows as pandas counts them (a line of spaces is none), lines as an editor does; the others named.
    spaces = write(tmp_path / "spaces.csv", "a,b,label\n1,2,x\n   \n3,4,y\n5,6\n7,8,x\n9,y\n1,2,x\n3\n" + "1,2,y\n" * 4)
    with pytest.raises(table.TableError, match=r"row 3 \(line 5\) has 2 values for the header's 3 names \(and rows 5, "
                                               r"7: 3 in all\): one left out"):
        table.encode(table_cfg(spaces, "data.target=label", "data.missing=mean"))
    # data.missing=drop leaves them out, whole, and says so; the test file's too.
    tested = write(tmp_path / "tested.csv", "a,b,label\n1,2,x\n3,y\n")
    x_train, _, x_test, _, encoding = table.encode(table_cfg(spaces, "data.target=label", "data.missing=drop",
                                                             f"data.test_path={tested}"))
    assert len(x_train) == 8 and len(x_test) == 1
    assert (f"data.missing=drop: 3 row(s) of data.path={spaces} with fewer values than its header names left out "
            "(row 3, line 5: 2 of 3)") in encoding["notes"]
    assert any(note.startswith(f"data.missing=drop: 1 row(s) of data.test_path={tested} with fewer values")
               for note in encoding["notes"])
    with pytest.raises(table.TableError, match=r"row 1 \(line 2\) .* \(and rows 2, 3, 4, 5, 6, 7, 8, \.\.\.: 12 in all\)"):
        read("a,b,label\n" + "1,2\n" * 12 + "1,2,x\n")
    # A separator inside quotes is no separator; a quoted field may hold a line end, and be long.
    for text, message in (('a,b,label\n"1,5",2,x\n"3,5",y\n', r"row 2 \(line 3\) has 2 values"),
                          ('a,b,label\n"1\n5",2,x\n"3,5",y\n', r"row 2 \(line 4\) has 2 values"),
                          ('a,b,label\r1,2,x\r3,4\r', r"row 2 \(line 3\) has 2 values")):  # Excel's CSV (Macintosh)
        with pytest.raises(table.TableError, match=message):
            read(text)
    assert read(f'a,text,label\n1,"{"x" * 200_000}",x\n2,"y",y\n')["text"].str.len().tolist() == [200_000, 1]
    with pytest.raises(table.TableError, match=r"^--data=.*new.csv: row 2 \(line 3\) has 1 value for the header's 2 "
                                               r"names: .* an empty field \(1,,3\)$"):  # rows to predict: refused
        read("a,b\n1,2\n3\n", "--data", "new.csv")
    # A header's separator at its end (a nameless column) with rows that lack it: no value left out.
    frame = read("a,b,label,\n1,2,x\n3,4,y\n")
    assert len(frame) == 2 and frame["label"].tolist() == ["x", "y"]


def test_rows_to_predict_need_no_labels(tmp_path):
    np.savez(tmp_path / "new.npz", x=np.ones((3, 2)))
    frame = table.read_table(tmp_path / "new.npz", "--data", labelled=False)
    assert list(frame.columns) == ["x0", "x1"] and len(frame) == 3  # no y column it lacks
    np.savez(tmp_path / "keras.npz", x=np.ones((3, 2)), y=np.zeros((3, 1)))  # a y beside them is not read
    assert list(table.read_table(tmp_path / "keras.npz", "--data", labelled=False).columns) == ["x0", "x1"]
    np.savez(tmp_path / "flags.npz", x=np.eye(4, dtype=bool)[np.arange(20) % 4], y=np.arange(20) % 2)
    x, *_ = table.encode(table_cfg(tmp_path / "flags.npz"))  # bools are 1 and 0, as in a CSV
    assert x.shape[1] == 4 and np.isfinite(x).all()
    *_, encoding = table.encode(table_cfg(write(tmp_path / "t.csv", "a,b,label\n" + "1,2,x\n3,4,y\n" * 5),
                                          "data.target=label"))
    semicolons = tmp_path / "new.csv"
    with pytest.raises(table.TableError, match="lacks the column.s. a, b the model reads; it has a;b .one column: the "
                                               "file seems separated by ';'"):
        table.apply_encoding(table.read_table(write(semicolons, "a;b\n1;2\n"), "--data"), encoding, str(semicolons))
    with pytest.raises(table.TableError, match="needs x .rows x features. and y"):
        table.read_table(tmp_path / "new.npz", "data.path")


def test_missing_values_are_dropped_or_filled_when_asked(tmp_path, monkeypatch, capsys):
    text = "a,b,label\n" + "".join(f"{i},{'' if i % 5 == 0 else i * 2},{'x' if i % 2 else 'y'}\n" for i in range(20))
    path = write(tmp_path / "holes.csv", text)
    dropped = table.encode(table_cfg(path, "data.target=label", "data.missing=drop"))
    filled = table.encode(table_cfg(path, "data.target=label", "data.missing=mean"))
    assert len(dropped[1]) + len(dropped[3]) == 16 and len(filled[1]) + len(filled[3]) == 20
    assert not np.isnan(filled[0]).any() and not np.isnan(filled[2]).any()
    # What fills the gaps is said, and a text column's gaps written NA (North America?) are named as such.
    assert any(note.startswith(f"{path}: data.missing=mean filled column b: 4 with its mean ")
               for note in filled[4]["notes"])
    assert f"data.missing=drop: 4 of 20 rows of {path} left out" in dropped[4]["notes"]  # said by every run
    # A test file's rows left out are said too (test_acc is measured on the rest), its gaps by its name.
    tests = write(tmp_path / "tests.csv", "a,b,label\n1,,x\n2,4,\n3,6,y\n4,8,x\n")
    dropped = table.encode(table_cfg(path, "data.target=label", "data.missing=drop", f"data.test_path={tests}"))
    assert len(dropped[3]) == 2 and f"data.missing=drop: 2 of 4 rows of data.test_path={tests} left out" in \
        dropped[4]["notes"]
    filled = table.encode(table_cfg(path, "data.target=label", "data.missing=mean", f"data.test_path={tests}"))
    assert len(filled[3]) == 3 and f"data.missing=mean: 1 of 4 rows of data.test_path={tests} left out" in \
        filled[4]["notes"]
    assert any(note.startswith(f"data.test_path={tests}: data.missing=mean filled column b: 1 with its mean ")
               for note in filled[4]["notes"])
    assert any(note.startswith(f"{path}: data.missing=mean filled column b: 4 with its mean ")
               for note in filled[4]["notes"])
    regions = write(tmp_path / "regions.csv", "a,region,label\n" + "".join(
        f"{i},{('NA', 'EU', 'EU')[i % 3]},{i % 2}\n" for i in range(30)))
    with pytest.raises(table.TableError, match="column region has 10 missing value.s., row.s. 1, 4, 7, 10, 13 ... .10 "
                                               "in all. .written 'NA', which pandas reads as missing; where that is a "
                                               "value, write it otherwise in the file.; set data.missing=drop"):
        table.encode(table_cfg(regions, "data.target=label"))
    *_, encoding = table.encode(table_cfg(regions, "data.target=label", "data.missing=mean"))
    assert f"{regions}: data.missing=mean filled column region: 10 with 'EU' (its most common text)" in encoding["notes"]
    # New rows' gaps, filled as the run's were, are said by predict too.
    trained = {"table": encoding, "config": {"model": {}}}
    monkeypatch.setattr(predict, "load_model", lambda run, checkpoint_name="best": (torch.nn.Linear(2, 2), trained))
    assert len(predict.predict(tmp_path, write(tmp_path / "new.csv", "a,region\n1,\n2,EU\n,EU\n"))) == 3
    err = capsys.readouterr().err
    assert (f"data.missing=mean filled column a: 1 with its mean {encoding['fill']['a']:.4g}; column region: 1 with "
            "'EU'") in err, err


def test_the_cli_refuses_a_bad_table_with_exit_2_and_trains_nothing(tmp_path):
    path = write(tmp_path / "one_class.csv", "a,label\n1,x\n2,x\n")
    proc = run_cli("data=table", f"data.path={path}", "data.target=label", f"hydra.run.dir={tmp_path / 'run'}",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "has one class only" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    with pytest.raises(ConfigError, match="data.path=null: is required with data=table"):
        checked(compose_config(["data=table", "data.target=label"]))


def test_an_edited_file_is_read_again_even_with_its_size_and_time_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    path = write(tmp_path / "t.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    cfg = table_cfg(path, "data.target=label")
    first = data.load_table(cfg)
    assert data.load_table(cfg).x_train.tolist() == first.x_train.tolist()  # from the cache
    stat = path.stat()
    path.write_text(path.read_text().replace("3,1", "7,1"))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data.load_table(cfg).x_train.tolist() != first.x_train.tolist()


def test_data_root_is_where_a_table_is_found_and_is_refused_where_nothing_reads_it(tmp_path):
    breast_cancer(tmp_path)
    cfg = table_cfg("breast_cancer.csv", "data.target=target", f"data.root={tmp_path}")
    assert data.load_table(cfg).x_train.shape[1] == 30
    with pytest.raises(ConfigError, match=f"data.root={tmp_path}: is not read by data=digits"):
        checked(compose_config(["data=digits", f"data.root={tmp_path}"]))
    with pytest.raises(ConfigError, match="data.path=x.csv: applies to data=table only"):
        checked(compose_config(["data.path=x.csv"]))
    assert OmegaConf.select(compose_config([]), "data.path") is None


def trained_on_first_rows(folder, dataset: str, rows: int, *options: str):
    """A 3-epoch run on the dataset's first `rows` rows (train.csv), tested on the others
    (test.csv, data.test_path): the table and the run's folder."""
    import pandas as pd

    frame = pd.read_csv(sklearn_csv(folder, dataset))
    frame.iloc[:rows].to_csv(folder / "train.csv", index=False)
    frame.iloc[rows:].to_csv(folder / "test.csv", index=False)
    run = folder / "run"
    proc = run_cli("data=table", f"data.path={folder / 'train.csv'}", f"data.test_path={folder / 'test.csv'}",
                   "data.target=target", "trainer.max_epochs=3", f"hydra.run.dir={run}", *options, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return frame, run


def test_predict_uses_the_runs_own_encoding_and_reproduces_its_test_accuracy(tmp_path, capsys):
    import pandas as pd

    frame, run = trained_on_first_rows(tmp_path, "breast_cancer", 450)
    out = tmp_path / "predictions.csv"
    # test_acc was measured with the last epoch's weights: --checkpoint last gives them.
    assert predict_main([str(run), "--data", str(tmp_path / "test.csv"), "--out", str(out), "--checkpoint", "last"]) == 0
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["prediction", "p_0", "p_1"] and len(predicted) == 119
    assert np.allclose(predicted.p_0 + predicted.p_1, 1, atol=1e-6)
    result = json.loads((run / "result.json").read_text())
    accuracy = float((predicted.prediction == frame.iloc[450:].target.to_numpy()).mean())
    assert accuracy == pytest.approx(result["metrics"]["test_acc"])
    # Rows without a column the model reads are refused, naming it; another source's run too.
    frame.iloc[450:].drop(columns=["mean radius"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(SystemExit) as exit_info:
        predict_main([str(run), "--data", str(tmp_path / "short.csv")])
    assert exit_info.value.code == 2
    with pytest.raises(table.TableError, match="lacks the column.s. mean radius the model reads"):
        predict.predict(run, tmp_path / "short.csv")
    # Where --out cannot be written: said before anything is predicted.
    capsys.readouterr()
    for out, message in ((tmp_path, f"--out {tmp_path}: a folder; give the file to write"),
                         (tmp_path / "no" / "p.csv", f"no folder {tmp_path / 'no'} to write it in"),
                         (tmp_path / "." / "test.csv", "the --data file itself")):
        with pytest.raises(SystemExit) as exit_info:
            predict_main([str(run), "--data", str(tmp_path / "test.csv"), "--out", str(out)])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "test.csv").shape == frame.iloc[450:].shape  # the rows, still there
    # Written as its name asks: TSV where it ends .tsv, compressed where it ends .gz; never as a Parquet.
    assert predict_main([str(run), "--data", str(tmp_path / "test.csv"), "--out", str(tmp_path / "p.tsv.gz"),
                         "--checkpoint", "last"]) == 0
    assert pd.read_csv(tmp_path / "p.tsv.gz", sep="\t").equals(predicted)
    with pytest.raises(SystemExit):
        predict_main([str(run), "--data", str(tmp_path / "test.csv"), "--out", str(tmp_path / "p.parquet")])
    assert "--out " in (error := capsys.readouterr().err) and "predictions are written as text" in error
    # A value float32 cannot hold once standardized by the training rows: refused, not predicted as nan.
    for column, value in (("mean radius", 1e300), ("mean smoothness", 3e38)):  # 3e38 / its sd, 0.014: beyond
        frame.iloc[450:452].assign(**{column: value}).to_csv(tmp_path / "huge.csv", index=False)
        with pytest.raises(SystemExit):
            predict_main([str(run), "--data", str(tmp_path / "huge.csv")])
        error = capsys.readouterr().err
        assert (f"huge.csv: column {column} holds 2 value(s) so far from the training rows' mean that, standardized, "
                "they pass float32's ±3.4e38") in error, error
        assert "replace them (the model reads this column)" in error and "data.drop" not in error
    # Printed into a pipe its reader closes (`| head -1`): no BrokenPipeError traceback.
    frame.iloc[450:].sample(n=5000, replace=True, random_state=0).to_csv(tmp_path / "many.csv", index=False)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "mlpbench.predict", str(run), "--data", str(tmp_path / "many.csv")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().startswith("prediction,p_0,p_1")
    proc.stdout.close()
    error = proc.stderr.read()
    proc.wait()
    assert "Traceback" not in error and "BrokenPipe" not in error, error
    # The default, best.ckpt: the epoch of the best val_acc.
    best = json.loads((run / "result.json").read_text())["metrics"]["best_epoch"]
    assert best in (1, 2, 3) and len(predict.predict(run, tmp_path / "test.csv")) == 119
    other = {key: value for key, value in result.items() if key != "table"}
    other["config"]["data"]["source"] = "xor"
    (tmp_path / "xor").mkdir()
    (tmp_path / "xor" / "result.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="trained on data=xor; predict reads new rows of a data=table run's columns, "
                                          "or new images of a run on mnist, mnist_small, fashion_mnist, digits"):
        predict.load_model(tmp_path / "xor")
    # A run that did not finish predicts with a note; one without the checkpoint says why.
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "result.json").write_text(json.dumps({**result, "status": "interrupted", "epochs": 2}))
    capsys.readouterr()
    assert len(predict.predict(unfinished, tmp_path / "test.csv")) == 119
    assert (f"note: {unfinished} is no finished run: interrupted after 2 epoch(s) (resume=true continues it); "
            "predicting with its best.ckpt") in capsys.readouterr().err
    (unfinished / "result.json").write_text(json.dumps({**result, "status": "diverged", "epochs": 1}))
    (unfinished / "checkpoints" / "best.ckpt").unlink()
    with pytest.raises(ConfigError, match=r"no checkpoints/best.ckpt: it diverged \(a NaN or infinite loss\) after 1 "
                                          r"epoch\(s\), with no epoch to keep"):
        predict.load_model(unfinished)
    # Rows without their header row: said, as training says it.
    headerless = write(tmp_path / "headerless.csv", (tmp_path / "test.csv").read_text().split("\n", 1)[1])
    with pytest.raises(table.TableError, match="a file without a header row"):
        predict.predict(run, headerless)
    # A folder above the sweeps (outputs): where they are.
    sweep = tmp_path / "outputs" / "multirun" / "2026-01-01_00-00-00"
    shutil.copytree(run, sweep / "run")
    with pytest.raises(ConfigError, match=f"there are runs further down: give a sweep's or a run's folder, e.g. {sweep}"):
        predict.choose_run(tmp_path / "outputs", None)


def test_validation_rows_are_stratified_by_class_for_every_seed(tmp_path):
    # 90 rows of class a, 10 of b: a random 20% could hold no b; stratified, each seed has 2.
    rows = "".join(f"{i},{'b' if i % 10 == 0 else 'a'}\n" for i in range(125))
    path = write(tmp_path / "skewed.csv", "x,label\n" + rows)
    cfg = table_cfg(path, "data.target=label")
    for seed in range(1, 6):
        splits = data.make_splits(cfg, seed)
        classes = splits.y_val.tolist()
        assert len(classes) == 20 and classes.count(0) == 18 and classes.count(1) == 2, seed
    stacked = data.make_stacked_splits(cfg, [1, 2, 3])
    assert stacked.val_rows.shape == (3, 20)


def test_many_small_classes_hold_out_the_fractions_asked_for_not_a_row_of_each(tmp_path):
    # 150 classes of 4 rows: rounding each class alone held out 1 of 4 (25%) for test and 1 of 3
    # (33%) for validation. As a whole: 20% of 600 tested, 20% of the 480 left validated.
    rows = "".join(f"{i},{i % 150}\n" for i in range(600))
    cfg = table_cfg(write(tmp_path / "many.csv", "x,label\n" + rows), "data.target=label")
    for seed in (1, 2):
        splits = data.make_splits(cfg, seed)
        assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (384, 96, 120), seed
        # Stratified still: no class more than one row of each held-out split, none left without training rows.
        for held in (splits.y_val, splits.y_test):
            assert np.bincount(held.numpy(), minlength=150).max() == 1
        assert len(np.unique(splits.y_train.numpy())) == 150


def test_the_table_depth_preset_sweeps_depth_over_seeds_until_decided_on_your_file(tmp_path):
    path = breast_cancer(tmp_path)
    cfg = compose_config(["experiment=table_depth", f"data.path={path}", "data.target=target"], with_hydra=True)
    assert dict(cfg.hydra.sweeper.params) == {"model.depth": "1,2,3,4", "seed": "auto"}
    assert cfg.data.source == "table" and str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    checked(cfg)
    with pytest.raises(ConfigError, match="data.path=null: is required with data=table"):
        checked(compose_config(["experiment=table_depth"]))


def test_a_sweep_over_a_file_of_classes_and_one_of_numbers_is_not_ranked_in_one_table(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((120, 2))
    write(tmp_path / "classes.csv", "a,b,y\n" + "".join(f"{p},{q},{'cat' if p > q else 'dog'}\n" for p, q in x))
    write(tmp_path / "numbers.csv", "a,b,y\n" + "".join(f"{p},{q},{p * 3 + q:.6f}\n" for p, q in x))
    proc = run_cli("-m", "data=table", "data.path=classes.csv,numbers.csv", "data.target=y", "trainer.max_epochs=1",
                   f"hydra.sweep.dir={tmp_path / 's'}", cwd=tmp_path)
    assert "its runs are classifiers (classes.csv) and regressions (numbers.csv): accuracy and r2 are not one " \
        "scale" in proc.stderr, proc.stderr
    assert proc.returncode != 0 and not (tmp_path / "s" / "summary.csv").exists()
    assert {r.parent.name for r in (tmp_path / "s").glob("*/result.json")} == {"data.path=classes.csv",
                                                                               "data.path=numbers.csv"}
    # A file edited while its sweep runs (after seed 1 trained): its runs are not compared as one data set.
    proc = run_cli("-m", "data=table", "data.path=classes.csv", "data.target=y", "seed=1,2", "trainer.max_epochs=1",
                   "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'edited'}",
                   f"+callbacks.edit={{_target_:tests.faults.EditFileOnce,path:'{tmp_path / 'classes.csv'}',"
                   f"line:'0.5,0.25,cat',marker:'{tmp_path / 'edit'}'}}", cwd=tmp_path)
    assert f"its runs read {tmp_path / 'classes.csv'} in 2 versions, edited while the sweep ran (seed=1 (earlier); " \
        "seed=2 (the file as it is))" in proc.stderr, proc.stderr


def test_a_float_target_trains_as_a_regression_with_r2_and_a_verdict_on_its_best_epochs_r2(tmp_path):
    sweep, proc = depth_sweep(tmp_path, "diabetes", "1,2,3", epochs=3)
    path = tmp_path / "diabetes.csv"
    assert "data.task=regression (inferred)" in proc.stdout + proc.stderr
    result = json.loads((sweep / "model.depth=1,seed=1" / "result.json").read_text())
    metrics = result["metrics"]
    assert "val_acc" not in metrics and "test_acc" not in metrics
    assert 0.2 < metrics["test_r2"] <= 1 and 0.2 < metrics["best_val_r2"] <= 1  # diabetes: about 0.5
    # RMSE in the target's unit: the standardised MSE times the target's standard deviation.
    mean, std = result["table"]["target_scale"]
    assert 140 < mean < 160 and 70 < std < 85 and result["table"]["task"] == "regression"
    assert metrics["val_rmse"] == pytest.approx(metrics["val_loss"] ** 0.5 * std)
    assert result["stacked"]["replicas"] == 3 and result["data"] == {"train": 283, "val": 71, "test": 88}
    # Stacked with its seeds, a run's numbers are those it gets alone (to the bit).
    alone = run_cli("data=table", f"data.path={path}", "data.target=target", "model.depth=1", "seed=1",
                    "trainer.max_epochs=3", "trainer.enable_progress_bar=true", f"hydra.run.dir={tmp_path / 'alone'}",
                    cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert "loss=" in alone.stdout and ", r2=" in alone.stdout and "acc=" not in alone.stdout  # the bar's score
    # Its arrays come from the cache the sweep filled: the log still says why it is a regression.
    assert "data.task=regression (inferred): " in (tmp_path / "alone" / "run.log").read_text()
    single = json.loads((tmp_path / "alone" / "result.json").read_text())
    assert single["history"]["val_loss"] == result["history"]["val_loss"]
    assert single["metrics"]["test_r2"] == metrics["test_r2"]
    rows = summary_rows(sweep)
    assert [r["objective"] for r in rows] == ["best_val_r2", "best_val_r2"]
    assert {r["verdict"] for r in rows} <= {"best", "tied", "worse"} and "best" in {r["verdict"] for r in rows}
    assert all(float(r["val_r2_mean"]) > 0.2 and r["n"] == "3" for r in rows)
    assert (sweep / "val_r2.png").is_file() and (sweep / "against_depth.png").is_file()
    assert "Epoch 3/3 - " in (sweep / "model.depth=1,seed=1" / "run.log").read_text()
    assert " - r2 " in (sweep / "model.depth=1,seed=1" / "run.log").read_text()
    # A classifier's objective is refused, naming what these runs can be compared by.
    for result_file in sweep.glob("*/result.json"):
        edited = json.loads(result_file.read_text())
        edited["config"]["report"]["objective"] = "best_val_acc"
        result_file.write_text(json.dumps(edited))
    from mlpbench import report

    with pytest.raises(ConfigError, match="report.objective=best_val_acc: these runs are a regression's"):
        report.read_sweep(sweep)


def test_a_regression_run_predicts_values_that_give_its_own_test_r2_and_rmse(tmp_path):
    frame, run = trained_on_first_rows(tmp_path, "diabetes", 350, "data.task=regression")
    metrics = json.loads((run / "result.json").read_text())["metrics"]
    predicted = predict.predict(run, tmp_path / "test.csv", "last").prediction.to_numpy()
    truth = frame.iloc[350:].target.to_numpy()
    assert len(predicted) == 92
    r2 = 1 - ((truth - predicted) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert r2 == pytest.approx(metrics["test_r2"], abs=1e-5)
    assert float(np.sqrt(((truth - predicted) ** 2).mean())) == pytest.approx(metrics["test_rmse"], rel=1e-5)


@pytest.mark.parametrize("text, options, message", [
    ("a,label\n1,x\n2,y\n3,x\n", ["data.task=regression"], "holds text ('x'), not numbers to predict"),
    ("a,label\n" + "".join(f"{i},{i}\n" for i in range(10)), [], "then set data.task=regression"),
    # inferred a regression (fractions), one value infinite: named as the file writes it
    ("a,label\n" + "".join(f"{i},{i / 7:.3f}\n" for i in range(30)) + "30,inf\n", [],
     "row 31 holds inf, not a number to predict"),
])
def test_a_target_that_is_no_number_to_predict_is_named(tmp_path, text, options, message):
    path = write(tmp_path / "t.csv", text)
    with pytest.raises(table.TableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        table.encode(table_cfg(path, "data.target=label", *options))


def test_a_float_target_of_few_values_stays_classes_and_regression_is_for_tables_only(tmp_path):
    path = write(tmp_path / "f.csv", "a,label\n" + "".join(f"{i},{float(i % 3)}\n" for i in range(30)))
    *_, encoding = table.encode(table_cfg(path, "data.target=label"))
    assert encoding["task"] == "classification" and encoding["classes"] == ["0", "1", "2"]
    # 26 whole-number classes stored as floats (an .npz's y) in 520 rows: still classes.
    np.savez(tmp_path / "letters.npz", x=np.arange(520.0)[:, None], y=np.arange(520) % 26 * 1.0)
    assert table.task_of(table_cfg(tmp_path / "letters.npz")).value == "classification"
    # 30 values with fractions in 600 rows: numbers to predict.
    path = write(tmp_path / "g.csv", "a,label\n" + "".join(f"{i},{i % 30 + 0.5}\n" for i in range(600)))
    assert table.task_of(table_cfg(path, "data.target=label")).value == "regression"
    with pytest.raises(ConfigError, match="data.task=regression: regression applies to data=table only"):
        checked(compose_config(["data=digits", "data.task=regression"]))


def test_r2_over_batches_and_stacked_replicas_is_sklearns(tmp_path):
    import torch
    from sklearn.metrics import r2_score

    from mlpbench.module import _Sums, regression_terms

    rng = np.random.default_rng(0)
    y, predicted = rng.normal(size=(2, 203)), rng.normal(size=(2, 203))
    sums = _Sums(torch.device("cpu"), (2,), regression=True)
    for lo in range(0, 203, 32):
        target, out = torch.from_numpy(y[:, lo:lo + 32]), torch.from_numpy(predicted[:, lo:lo + 32])
        sums.add(((out - target) ** 2).mean(1), regression_terms(target), target.shape[1])
    rows = torch.tensor(float(sums.rows), dtype=torch.float64)
    got = sums.scores(sums.loss, sums.terms, rows).tolist()
    assert got == pytest.approx([r2_score(y[k], predicted[k]) for k in range(2)], abs=1e-12)
    # Targets of one value: scikit-learn's finite r2 (1 for exact predictions, else 0), not inf or NaN.
    constant = torch.full((2, 10), 2.0, dtype=torch.float64)
    sums = _Sums(torch.device("cpu"), (2,), regression=True)
    sums.add(torch.tensor([0.0, 0.5], dtype=torch.float64), regression_terms(constant), 10)
    got = sums.scores(sums.loss, sums.terms, torch.tensor(10.0, dtype=torch.float64)).tolist()
    assert got == [r2_score(constant[0], constant[0]), r2_score(constant[1], constant[1] + 0.7)] == [1.0, 0.0]


def test_a_split_column_marks_the_test_rows_and_is_no_feature(tmp_path):
    import pandas as pd

    frame = pd.read_csv(breast_cancer(tmp_path))
    frame["part"] = ["test" if i >= 450 else "train" for i in range(len(frame))]
    frame.to_csv(tmp_path / "marked.csv", index=False)
    frame.iloc[:450].drop(columns="part").to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[450:].drop(columns="part").to_csv(tmp_path / "test.csv", index=False)
    marked = table.encode(table_cfg(tmp_path / "marked.csv", "data.target=target", "data.split_column=part"))
    two_files = table.encode(table_cfg(tmp_path / "train.csv", "data.target=target",
                                       f"data.test_path={tmp_path / 'test.csv'}"))
    for mine, theirs in zip(marked[:4], two_files[:4]):
        np.testing.assert_array_equal(mine, theirs)
    assert "part" not in marked[4]["features"]
    with pytest.raises(table.TableError, match="data.split_column=parts: .* has no such column"):
        table.encode(table_cfg(tmp_path / "marked.csv", "data.target=target", "data.split_column=parts"))
    frame.assign(part="train").to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(table.TableError, match="has 0 row.s. marked test of 569"):
        table.encode(table_cfg(tmp_path / "none.csv", "data.target=target", "data.split_column=part"))
    # Blank cells train; a message names the file's own row, not its place among the test rows.
    frame["part"] = ["test" if i >= 450 else None for i in range(len(frame))]
    frame.loc[500, "mean radius"] = None
    frame.to_csv(tmp_path / "blank.csv", index=False)
    with pytest.raises(table.TableError, match="column mean radius has 1 missing value.s., row.s. 501"):
        table.encode(table_cfg(tmp_path / "blank.csv", "data.target=target", "data.split_column=part"))
    assert len(table.encode(table_cfg(tmp_path / "blank.csv", "data.target=target", "data.split_column=part",
                                      "data.missing=drop"))[3]) == 118
    with pytest.raises(ConfigError, match="data.split_column=part: and data.test_path both say"):
        checked(compose_config(["data=table", "data.path=a.csv", "data.target=t", "data.split_column=part",
                                "data.test_path=b.csv"]))


def test_a_small_tables_listed_predictions_read_as_its_file(tmp_path, caplog):
    from mlpbench.run import predictions

    rows = ["colour,size,label"] + [f"{c},{s},{'big' if s > 5 else 'small'}" for c, s in
                                    zip(["red", "blue", "green"] * 10, range(30))]
    train = write(tmp_path / "train.csv", "\n".join(rows) + "\n")
    test = write(tmp_path / "test.csv", "colour,size,label\npurple,3,small\nred,20.5,big\n")
    *_, x_test, y_test, encoding = table.encode(table_cfg(train, "data.target=label", f"data.test_path={test}"))
    with caplog.at_level("INFO", logger="mlpbench"):
        listed = predictions(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.from_numpy(x_test),
                             torch.from_numpy(y_test), encoding)
    # The file's values, not the model's inputs (purple: no training row had it); classes by name.
    assert [r["input"] for r in listed] == [{"colour": None, "size": 3}, {"colour": "red", "size": 20.5}]
    assert [(r["predicted"], r["target"]) for r in listed] == [("big", "small"), ("small", "big")]
    assert "  colour=(unseen) size=3 -> big (p 0.8808; target small)" in caplog.text
    assert table.unseen_categories(table.read_table(test, "--data"), encoding) == [
        "column colour: 1 row(s) hold a category the training rows lacked (purple); the model reads it as none of "
        "its categories"]
    # Training says so too: such a test row is scored as none of the categories.
    assert (f"data.test_path={test}, the test rows: column colour: 1 row(s) hold a category the training rows "
            "lacked (purple)") in " ".join(encoding["notes"])
    assert "  colour=red size=20.5 -> small (p 0.8808; target big)" in caplog.text
    # A regression's value and target in the target's unit: mean + std x the standardised value.
    regression = {**encoding, "task": "regression", "target_scale": [150.0, 10.0]}
    listed = predictions(torch.tensor([[0.5], [-1.0]]), torch.from_numpy(x_test), torch.tensor([1.0, 0.0]), regression)
    assert [r["output"] for r in listed] == [[155.0], [140.0]] and [r["target"] for r in listed] == [160.0, 150.0]

def test_predict_says_which_categories_it_never_saw_and_refuses_an_npz_of_another_width(tmp_path, monkeypatch,
                                                                                         capsys):
    rows = ["colour,size,label"] + [f"{c},{s},{'big' if s > 5 else 'small'}" for c, s in
                                    zip(["red", "blue", "green"] * 10, range(30))]
    *_, encoding = table.encode(table_cfg(write(tmp_path / "train.csv", "\n".join(rows) + "\n"), "data.target=label"))
    trained = {"table": encoding, "config": {"model": {}}}
    monkeypatch.setattr(predict, "load_model", lambda run, checkpoint_name="best": (torch.nn.Linear(4, 2), trained))
    out = predict.predict(tmp_path, write(tmp_path / "new.csv", "colour,size\npurple,3\nred,4\npink,1\npurple,2\n"))
    assert len(out) == 4  # still predicted: such a category is none of the known ones (all zeros)
    assert ("note: column colour: 3 row(s) hold a category the training rows lacked (purple, pink); the model reads "
            "it as none of its categories") in capsys.readouterr().err
    # An .npz's columns are positions: 3 where the model was trained on 2 would be other data.
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(40, 2)), y=np.arange(40) % 2)
    *_, encoding = table.encode(table_cfg(tmp_path / "train.npz"))
    trained = {"table": encoding, "config": {"model": {}}}
    monkeypatch.setattr(predict, "load_model", lambda run, checkpoint_name="best": (torch.nn.Linear(2, 2), trained))
    np.savez(tmp_path / "wide.npz", x=np.zeros((3, 3)))
    with pytest.raises(table.TableError, match="wide.npz: x has 3 columns; the x the model was trained on had 2"):
        predict.predict(tmp_path, tmp_path / "wide.npz")
    np.savez(tmp_path / "same.npz", x=np.zeros((3, 2)))
    assert len(predict.predict(tmp_path, tmp_path / "same.npz")) == 3
    # Trained on some of the columns (data.features=[x0,x2]): new rows have the file's width.
    np.savez(tmp_path / "train5.npz", x=rng.normal(size=(40, 5)), y=np.arange(40) % 2)
    *_, encoding = table.encode(table_cfg(tmp_path / "train5.npz", "data.features=[x0,x2]"))
    trained = {"table": encoding, "config": {"model": {}}}
    np.savez(tmp_path / "five.npz", x=np.zeros((3, 5)))
    assert len(predict.predict(tmp_path, tmp_path / "five.npz")) == 3
    # A run recorded before the width was: all of x read (x0, x1), its features say the width...
    *_, encoding = table.encode(table_cfg(tmp_path / "train.npz"))
    trained = {"table": {k: v for k, v in encoding.items() if k != "x_width"}, "config": {"model": {}}}
    with pytest.raises(table.TableError, match="wide.npz: x has 3 columns; the x the model was trained on had 2"):
        predict.predict(tmp_path, tmp_path / "wide.npz")
    # ... some of it (x0, x2): nothing to check against.
    *_, encoding = table.encode(table_cfg(tmp_path / "train5.npz", "data.features=[x0,x2]"))
    trained = {"table": {k: v for k, v in encoding.items() if k != "x_width"}, "config": {"model": {}}}
    assert len(predict.predict(tmp_path, tmp_path / "five.npz")) == 3
