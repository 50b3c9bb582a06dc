"""README's commands and generated blocks, checked fast and in-process (docs/readme.py check runs
them for real: `make readme-check`)."""

import importlib.util
import sys
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from mlpbench.overrides import parse
from mlpbench.run import compose_config
from mlpbench.schema import ConfigError, resolved, validate
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _load_readme_tool():
    spec = importlib.util.spec_from_file_location("readme_tool", ROOT / "docs" / "readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


readme = _load_readme_tool()
COMMANDS = readme.commands(readme.README)
FLAGS_WITH_VALUE = {"--config-dir", "--config-name", "-cd", "-cn", "--cfg", "-c"}


def _overrides(argv: list[str]) -> list[str]:
    """The Hydra overrides of an mlpbench command: its flags (and their values) left out."""
    args = argv[1:] if argv[0] == "mlpbench" else argv[3:]
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in FLAGS_WITH_VALUE:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def _variants(overrides: list[str]) -> list[list[str]]:
    """One override list per value of each swept key (the others at their first value)."""
    parsed = parse(overrides)
    first = [f"{o.key_or_group}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
             for o in parsed]
    variants = [first]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            for value in list(o.sweep_string_iterator())[1:]:
                variants.append([*first[:i], f"{o.key_or_group}={value}", *first[i + 1:]])
    return variants


MLPBENCH = [c for c in COMMANDS if readme.is_mlpbench(c.argv) and "--config-dir" not in c.argv]


def test_readme_has_commands_in_the_one_convention():
    text = readme.README.read_text()
    assert len(MLPBENCH) >= 10
    assert ".venv/bin/python" not in text  # the environment is activated once, at the top
    # The main app is `mlpbench`, never `python -m mlpbench` (the report stays python -m mlpbench.report).
    assert not [c.text for c in COMMANDS if c.argv[:3] == ["python", "-m", "mlpbench"]]
    assert {c.argv[0] for c in COMMANDS} <= {"make", "source", "mlpbench", "python", "tensorboard"}


@pytest.mark.parametrize("command", MLPBENCH, ids=[c.where() for c in MLPBENCH])
def test_each_mlpbench_command_of_the_readme_composes(command):
    argv = readme.substitute(command.argv, "outputs/multirun/2026-01-01_00-00-00")
    overrides = _overrides(argv)
    for variant in _variants(overrides):
        if "seed=auto" in variant:  # a sweep's seeds, given to its runs one by one (mlpbench/seeds.py)
            assert "-m" in argv, f"{command.where()}: seed=auto needs -m"
            variant = ["seed=1" if o == "seed=auto" else o for o in variant]
        with_hydra = any(o.lstrip("+~").startswith("hydra") for o in variant)
        try:  # every key and every group option it names exists
            cfg = compose_config(variant, with_hydra=with_hydra)
        except (HydraException, OmegaConfBaseException) as e:
            pytest.fail(f"{command.where()}: {command.text}: {variant} does not compose: {e}")
        if command.expected_exit == 0:
            if with_hydra:
                cfg = compose_config(variant)
            validate(resolved(cfg))
        else:  # README shows it refused on purpose: the schema must refuse it
            with pytest.raises(ConfigError):
                validate(resolved(cfg))


def test_small_size_shrinks_epochs_seeds_and_trials():
    small = readme.small
    assert small(["mlpbench", "-m", "model.depth=2,4", "seed=1,2,3", "trainer.max_epochs=20"]) == [
        "mlpbench", "-m", "model.depth=2,4", "trainer.max_epochs=1", "seed=1"]
    assert small(["mlpbench", "experiment=width"])[-2:] == ["trainer.max_epochs=1", "seed=1"]
    assert "tune.n_trials=2" in small(["mlpbench", "experiment=tune_units"])
    assert "tune.n_trials=3" in small(["mlpbench", "experiment=tune_units", "tune.n_trials=40"])
    assert small(["mlpbench", "--help"]) == ["mlpbench", "--help"]
    # A preset of seeds until decided keeps them, in their first round: its report's columns.
    assert small(["mlpbench", "experiment=table_depth"])[-3:] == ["trainer.max_epochs=1", "seed=auto",
                                                                   "sweep.max_seeds=3"]
    # A block's one-line set-up (the table blocks write their CSV file) runs; other programs do not.
    assert readme.skip_reason(["python", "-c", "print(1)"]) is None
    assert readme.skip_reason(["python", "script.py"]) == "not an mlpbench command"
    assert readme.substitute(["python", "-m", "mlpbench.report", "DIR"], "outputs/x") == [
        "python", "-m", "mlpbench.report", "outputs/x"]
    with pytest.raises(readme.ReadmeError):
        readme.substitute(["python", "-m", "mlpbench.report", "DIR"], None)


def test_generated_blocks_are_well_formed():
    blocks = readme.all_generated()  # markers pair up, names are unique
    assert {"main", "activations", "depth"} <= {b.name for b in blocks if b.file == readme.README}
    for block in blocks:
        assert block.commands and all(argv for argv in block.commands), block.where()
        assert block.content[0] == "```text" and block.content[-1] == "```", block.where()
        assert readme.tables(block.content), f"{block.where()}: block {block.name} shows no table"
        for figure in block.option("figure"):
            source, _, dest = figure.partition(":")
            assert source.endswith(".png") and dest.startswith("docs/") and (ROOT / dest).is_file(), figure


@pytest.mark.parametrize("text", [
    "<!-- generated: a: mlpbench -->\n```text\n```\n",  # no end
    "<!-- end generated: a -->\n",  # no start
    "<!-- generated: a: mlpbench -->\n<!-- generated: b: mlpbench -->\n<!-- end generated: b -->\n"
    "<!-- end generated: a -->\n",  # nested
    "<!-- generated: a: mlpbench -->\n<!-- end generated: b -->\n",  # another name
    "<!-- generated: a:  -->\n<!-- end generated: a -->\n",  # no command
    "<!-- generated: a: mlpbench | colour=red -->\n<!-- end generated: a -->\n",  # unknown option
])
def test_malformed_generated_blocks_are_refused(text):
    with pytest.raises(readme.ReadmeError):
        readme.generated_blocks(Path("X.md"), text)


def test_commands_are_read_as_a_shell_reads_them():
    text = ("```bash\nmlpbench -m a=1,2   # a comment\n\nmlpbench 'x=a # b' \\\n  y=2  # exits 2\n```\n"
            "```\n$ mlpbench not=run\n```\n")
    found = readme.commands(Path("X.md"), text)
    assert [(c.argv, c.expected_exit) for c in found] == [
        (["mlpbench", "-m", "a=1,2"], 0), (["mlpbench", "x=a # b", "y=2"], 2)]
    example = "````\n<!-- generated: a: mlpbench -->\n```text\n```\n<!-- end generated: a -->\n````\n"
    assert readme.generated_blocks(Path("X.md"), example) == []  # a marker shown in a code block
    shown = ["| k | n |", "|---|--:|", "| 2 | 3 |", "| 4 | 3 |"]
    assert readme.structure_differences(shown, ["x", *shown]) == []
    assert readme.structure_differences(shown, ["| k | n |", "|---|--:|", "| 2 | 1 |"])
    assert readme.structure_differences(shown, ["| j | n |", "|---|--:|", "| 2 | 1 |", "| 4 | 1 |"])
    # A one-setting sweep is labelled by what its command set: at small size, by the added key.
    single = ["| setting | n |", "|---|--:|", "| xor | 5 |"]
    small = ["| trainer.max_epochs | n |", "|---|--:|", "| 1 | 1 |"]
    assert readme.structure_differences(single, small, frozenset({"trainer.max_epochs"})) == []
    assert readme.structure_differences(single, small)


def test_a_block_whose_values_differ_from_what_the_code_prints_fails_verification(tmp_path, capsys, monkeypatch):
    # As `make test` verifies README's main block (docs/readme.py verify), on a small sweep: a
    # block that shows what the code prints passes; a copy with one number edited fails, naming
    # the line and how to make the block true again.
    command = ("mlpbench -m data=digits model.units=8 data.limit=200 trainer.max_epochs=1 seed=1,2 "
               "hydra.launcher.workers=1")
    doc = tmp_path / "doc.md"

    def run(argv: list[str], cwd: Path, timeout: float):
        # The command forked from a process that imported torch already (its fresh interpreter
        # imports for 7 s; tests/test_packaging.py checks the two print the same).
        assert argv[0] == "mlpbench", argv
        done = run_cli(*argv[1:], cwd=cwd, pool=True)
        return readme.Ran(argv, done.returncode, done.stdout, done.stdout + done.stderr, 0.0)

    monkeypatch.setattr(readme, "run", run)

    def write(content: list[str], made: str = "") -> None:
        doc.write_text("\n".join([f"<!-- generated: tiny: {command} -->", *content,
                                   f"<!-- end generated: tiny{made} -->"]) + "\n")

    write(["```text", "nothing yet", "```"])
    assert readme.verify(["tiny"], files=[doc]) == 1  # runs the command once
    printed = readme.PRINTED[command]
    assert printed and any(line.startswith("| ") for line in printed)
    write(printed)
    capsys.readouterr()
    assert readme.verify(["tiny"], files=[doc]) == 0 and "block tiny: the same values" in capsys.readouterr().out
    row = next(i for i, line in enumerate(printed) if line.startswith("| ") and "0." in line)
    edited = [*printed[:row], printed[row].replace("0.", "0.0", 1), *printed[row + 1:]]
    write(edited)
    assert readme.verify(["tiny"], files=[doc]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and f"-{readme.comparable([edited[row]])[0]}" in out
    assert f"+{readme.comparable([printed[row]])[0]}" in out and 'make readme NAMES="tiny"' in out
    # Made on another vendor's CPU (its float kernels round otherwise): the values are not
    # compared, the tables' structure is; made on this one's, they are.
    write(edited, " (made at abc1234 on 2026-12-07, OtherVendor)")
    assert readme.verify(["tiny"], files=[doc]) == 0
    assert f"block tiny: values not compared (made on OtherVendor, this CPU is {readme.cpu_vendor()}" in \
        capsys.readouterr().out
    write([line for line in edited if not line.startswith("| ")] + ["| a | b |", "|---|---|", "| 1 | 2 |"],
          " (made at abc1234 on 2026-12-07, OtherVendor)")
    assert readme.verify(["tiny"], files=[doc]) == 1 and "its tables DIFFER" in capsys.readouterr().out
    write(edited, f" (made at abc1234 on 2026-12-07, {readme.cpu_vendor()})")
    assert readme.verify(["tiny"], files=[doc]) == 1 and "DIFFERS" in capsys.readouterr().out


def test_what_varies_between_identical_runs_is_no_difference():
    shown = ["| trial | value | seconds |", "|---:|---:|---:|", "| 7 | 0.9463 | 4.7 |",
             "20 runs in outputs/activations/2026-12-05_01-22-31 (0.7 min); report: summary.csv"]
    again = ["| trial | value | seconds |", "|---:|---:|---:|", "| 7 | 0.9463 | 5.9 |",
             "20 runs in outputs/activations/2026-12-06_09-00-00-2 (1.1 min); report: summary.csv"]
    assert readme.value_differences(shown, again, "b") == []
    assert readme.value_differences(shown, [again[0], again[1], "| 7 | 0.9462 | 5.9 |", again[3]], "b")
