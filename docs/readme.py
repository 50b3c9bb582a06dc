#!/usr/bin/env python3
"""README true by construction: regenerate its result blocks, and check that its commands run.

    python docs/readme.py regenerate [NAME ...]   run generated blocks' commands at full size, rewrite them
    python docs/readme.py check                   run every README command at a small size; check the blocks
    python docs/readme.py verify [NAME ...]       run blocks at full size; fail where a value differs
    python docs/readme.py list                    the commands and generated blocks, what check would run

Generated blocks (in README.md and docs/*.md) are delimited by HTML comments:

    <!-- generated: NAME: COMMAND [&& COMMAND ...] [| option ...] -->
    ```text
    what COMMAND printed at the end (the answer, the table, the report's files)
    ```
    <!-- end generated: NAME (made at COMMIT on DATE, CPU) -->

Several commands joined by ` && ` run in turn in one folder; the block shows what the last printed.
Options, each after ` | `:
    figure=SRC:docs/DEST.png   copy the figure SRC that the command wrote (newest of that name) to docs/DEST.png
    cut=REGEX                  keep the output up to the first line matching REGEX (then a line "…")

Commands: every line of a ```bash block is a command (a trailing `# comment` is for the reader;
`# ... exits N` says the command fails on purpose with exit code N). Upper-case placeholders:
NAME is a preset (the check uses `xor`), DIR is a sweep folder (the check uses the folder the
command before it wrote). Every command runs in one temporary working folder, in README's order,
with the environment's bin/ first on PATH.

At small size (check): `mlpbench` commands get trainer.max_epochs=1 and seed=1 (a preset then
sweeps one seed; seed=auto stays, with sweep.max_seeds=3: its first round), the search (experiment=tune_units) tune.n_trials=2 (3 where the command raises
it), and the outputs must not contain "Traceback".
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

PLACEHOLDER_PRESET = "xor"  # NAME in a command: the smallest preset (one run a seed)
SMALL_TRIALS, SMALL_MORE_TRIALS = 2, 3
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]\[")  # Hydra's log format
START = re.compile(r"^<!-- generated: (?P<name>[\w.-]+): (?P<body>.*?) -->\s*$")
END = re.compile(r"^<!-- end generated: (?P<name>[\w.-]+)(?: \(made at (?P<made>[^)]*)\))? -->\s*$")
EXITS = re.compile(r"\bexits? (\d+)\b")
SWEEP_FOLDER = re.compile(r"tensorboard --logdir (\S+)")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
OPTIONAL_LAUNCHERS = {"slurm": "hydra_plugins.hydra_submitit_launcher", "submitit_local": "hydra_plugins.hydra_submitit_launcher",
                      "ray": "hydra_plugins.hydra_ray_launcher", "ray_cluster": "hydra_plugins.hydra_ray_launcher"}


class ReadmeError(Exception):
    """README's structure is broken: a marker without its pair, a block without a command."""


# ---------------------------------------------------------------------------- parsing


@dataclass
class Command:
    text: str  # as README writes it, without its comment
    comment: str
    file: Path
    line: int
    block: int  # which ```bash block of the file

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def expected_exit(self) -> int:
        found = EXITS.search(self.comment)
        return int(found.group(1)) if found else 0

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT) if self.file.is_relative_to(ROOT) else self.file}:{self.line}"


@dataclass
class Generated:
    name: str
    command: str
    options: dict[str, list[str]]
    file: Path
    start: int  # line index of the start marker (0-based)
    end: int  # line index of the end marker
    content: list[str] = field(default_factory=list)
    made: str = ""  # what its end marker says it was made at: "COMMIT on DATE, CPU"

    @property
    def cpu(self) -> Optional[str]:
        """The CPU's vendor it was made on (its end marker's last part), None where not said."""
        return self.made.rpartition(", ")[2] if ", " in self.made else None

    def option(self, key: str) -> list[str]:
        return self.options.get(key, [])

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT) if self.file.is_relative_to(ROOT) else self.file}:{self.start + 1}"

    @property
    def commands(self) -> list[list[str]]:
        return [shlex.split(part) for part in self.command.split(" && ")]


def split_comment(line: str) -> tuple[str, str]:
    """`cmd args  # comment` -> (cmd args, comment); a # inside quotes or a word stays."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def code_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first content line (1-based), lines) of each fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(`{3,})\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        indent, ticks, lang = fence.groups()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^\s*{ticks}\s*$", lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        blocks.append((lang.lower(), i + 2, body))
        i = j + 1
    return blocks


def commands(path: Path = README, text: Optional[str] = None) -> list[Command]:
    """Every command of the file's ```bash blocks, in order."""
    text = path.read_text() if text is None else text
    found = []
    for index, (lang, first, body) in enumerate(b for b in code_blocks(text) if b[0] in ("bash", "sh", "shell")):
        pending, start = "", None
        for offset, raw in enumerate(body):
            if not raw.strip() and not pending:
                continue
            start = first + offset if start is None else start
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            line, pending = pending + raw, ""
            cmd, comment = split_comment(line.strip())
            if cmd:
                found.append(Command(cmd, comment, path, start, index))
            start = None
    return found


def _parse_body(body: str) -> tuple[str, dict[str, list[str]]]:
    parts = [p.strip() for p in body.split(" | ")]
    options: dict[str, list[str]] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or key not in ("figure", "cut"):
            raise ReadmeError(f"generated block option {part!r}: expected figure=SRC:DEST or cut=REGEX")
        options.setdefault(key, []).append(value)
    return parts[0], options


def generated_blocks(path: Path = README, text: Optional[str] = None) -> list[Generated]:
    """The file's generated blocks; ReadmeError where markers do not pair up or a block has no command."""
    lines = (path.read_text() if text is None else text).splitlines()
    blocks, open_block, fence = [], None, None
    for i, line in enumerate(lines):
        opening = re.match(r"^\s*(`{3,}|~{3,})", line)
        if opening and fence is None:
            fence = opening.group(1)
            continue
        if fence is not None:  # a marker shown inside a code block is an example, not a block
            if re.match(rf"^\s*{re.escape(fence)}\s*$", line):
                fence = None
            continue
        start, end = START.match(line), END.match(line)
        if "<!-- generated" in line and not start or "<!-- end generated" in line and not end:
            raise ReadmeError(f"{path.name}:{i + 1}: malformed marker {line!r}")
        if start:
            if open_block:
                raise ReadmeError(f"{path.name}:{i + 1}: block {start['name']} starts inside block {open_block.name}")
            command, options = _parse_body(start["body"])
            if not command.strip():
                raise ReadmeError(f"{path.name}:{i + 1}: block {start['name']} has no command")
            open_block = Generated(start["name"], command.strip(), options, path, i, -1)
        elif end:
            if not open_block or end["name"] != open_block.name:
                raise ReadmeError(f"{path.name}:{i + 1}: end of {end['name']} without its start")
            open_block.end, open_block.content, open_block.made = i, lines[open_block.start + 1:i], end["made"] or ""
            blocks.append(open_block)
            open_block = None
    if open_block:
        raise ReadmeError(f"{path.name}:{open_block.start + 1}: block {open_block.name} has no end marker")
    return blocks


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def all_generated() -> list[Generated]:
    blocks = [b for path in documents() for b in generated_blocks(path)]
    names = [b.name for b in blocks]
    for name in names:
        if names.count(name) > 1:
            raise ReadmeError(f"generated block {name} appears {names.count(name)} times")
    return blocks


# ---------------------------------------------------------------------------- small size


def is_mlpbench(argv: list[str]) -> bool:
    return bool(argv) and (argv[0] == "mlpbench" or argv[:3] == ["python", "-m", "mlpbench"])


def small(argv: list[str]) -> list[str]:
    """The same command at a small size: one epoch, one seed, two trials."""
    if not is_mlpbench(argv) or any(a in ("--help", "-h", "--cfg", "-c", "--info") for a in argv):
        return list(argv)
    trials = [a for a in argv if a.startswith("tune.n_trials=")]
    out = [a for a in argv if not a.startswith(("trainer.max_epochs=", "tune.n_trials="))
           and not (a.startswith("seed=") and "," in a)]
    out.append("trainer.max_epochs=1")
    presets = [a.split("=", 1)[1] for a in argv if a.startswith("experiment=")]
    if presets == ["tune_units"] or any(a.startswith("hydra/sweeper=tune") for a in argv):
        out.append(f"tune.n_trials={SMALL_MORE_TRIALS if trials else SMALL_TRIALS}")
    elif any(_preset_seeds(p) == "auto" for p in presets) and not any(a.startswith("seed=") for a in argv):
        out.append("seed=auto")  # the preset's own seeds, in their first round (below)
    elif (presets or "-m" in argv or any(a.startswith("seed=") for a in argv)) and not any(a.startswith("seed=") for a in out):
        out.append("seed=1")
    if "seed=auto" in out and not any(a.startswith("sweep.max_seeds=") for a in out):
        out.append("sweep.max_seeds=3")  # the first round only
    return out


def _preset_seeds(name: str) -> Optional[str]:
    """The seeds preset NAME sweeps (conf/experiment/NAME.yaml's hydra.sweeper.params.seed)."""
    from omegaconf import OmegaConf

    path = ROOT / "conf" / "experiment" / f"{name}.yaml"
    if not path.is_file():
        return None
    seeds = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params.seed")
    return None if seeds is None else str(seeds)


def substitute(argv: list[str], sweep_folder: Optional[str]) -> list[str]:
    """NAME -> a small preset, DIR -> the sweep folder the command before wrote."""
    out = []
    for a in argv:
        a = re.sub(r"\bNAME\b", PLACEHOLDER_PRESET, a)
        if re.search(r"\bDIR\b", a):
            if sweep_folder is None:
                raise ReadmeError("DIR: no command before it wrote a sweep folder")
            a = re.sub(r"\bDIR\b", sweep_folder, a)
        out.append(a)
    return out


def skip_reason(argv: list[str]) -> Optional[str]:
    """Why a command cannot run here, or None."""
    if not argv:
        return "empty"
    program = argv[0]
    if program == "make":
        return "the set-up's own command (CI runs `make test`)"
    if program in ("source", "."):
        return "activates the environment (the check puts its bin/ first on PATH)"
    if program == "tensorboard":
        return "a server"
    if program not in ("mlpbench", "python"):
        return f"{program}: not a command of this project"
    if program == "python" and argv[1:2] == ["-c"]:
        return None  # a one-line set-up, such as the table blocks' writing their CSV file
    if program == "python" and not (len(argv) > 2 and argv[1] == "-m" and argv[2].startswith("mlpbench")):
        return "not an mlpbench command"
    settings = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    source = settings.get("data")
    if source == "mnist" and not _idx_present("mnist"):
        return "data=mnist needs the four MNIST IDX files (~/.cache/mlpbench/mnist or $MLPBENCH_DATA)"
    if source == "fashion_mnist" and not (_idx_present("fashion_mnist") or Path("/usr/share/datasets/fashion-mnist").is_dir()):
        return "data=fashion_mnist needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"
    devices = settings.get("trainer.devices", "1")
    if devices.isdigit() and int(devices) > 1 and settings.get("trainer.accelerator") != "cpu" and _gpus() < int(devices):
        return f"trainer.devices={devices} needs {devices} GPUs"
    launcher = settings.get("hydra/launcher")
    if launcher in OPTIONAL_LAUNCHERS and not _importable(OPTIONAL_LAUNCHERS[launcher]):
        return f"hydra/launcher={launcher} needs its extra installed"
    return None


def _idx_present(source: str) -> bool:
    folder = Path(os.environ.get("MLPBENCH_DATA", "~/.cache/mlpbench")).expanduser() / source
    return all((folder / f).is_file() or (folder / f"{f}.gz").is_file() for f in IDX_FILES)


def _gpus() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        return out.stdout.count("GPU ") if out.returncode == 0 else 0
    except (OSError, subprocess.SubprocessError):
        return 0


def _importable(module: str) -> bool:
    out = subprocess.run([str(_bin() / "python"), "-c", f"import {module}"], capture_output=True)
    return out.returncode == 0


# ---------------------------------------------------------------------------- running


def _bin() -> Path:
    venv = ROOT / ".venv" / "bin"
    return venv if (venv / "python").exists() else Path(sys.executable).parent


@dataclass
class Ran:
    argv: list[str]
    code: int
    stdout: str
    output: str  # stdout and stderr
    seconds: float


def run(argv: list[str], cwd: Path, timeout: float) -> Ran:
    env = dict(os.environ, PATH=f"{_bin()}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1")
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as err:
        try:
            done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                  timeout=timeout)
            code, stdout = done.returncode, done.stdout
        except subprocess.TimeoutExpired as e:
            code, stdout = -9, (e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or "")
            stdout += f"\n(killed after {timeout:.0f} s)"
        except OSError as e:
            code, stdout = 127, str(e)
        err.seek(0)
        stderr = err.read()
    return Ran(argv, code, stdout, stdout + ("\n" + stderr if stderr else ""), time.monotonic() - started)


def printed_result(ran: Ran, cwd: Path) -> list[str]:
    """What the command printed at its end: its stdout after the last log line, the working
    folder's absolute path taken out."""
    lines = ran.stdout.replace(f"{cwd}/", "").replace(str(cwd), ".").splitlines()
    last_log = max((i for i, line in enumerate(lines) if LOG_LINE.match(line)), default=-1)
    lines = [line.rstrip() for line in lines[last_log + 1:]]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def cut(lines: list[str], block: Generated) -> list[str]:
    for pattern in block.option("cut"):
        at = next((i for i, line in enumerate(lines) if re.search(pattern, line)), None)
        if at is not None:
            lines = [*lines[:at], "…"]
            while len(lines) > 1 and not lines[-2].strip():
                lines.pop(-2)
    return lines


def sweep_folder(ran: Ran, cwd: Path) -> Optional[str]:
    found = SWEEP_FOLDER.findall(ran.output.replace(f"{cwd}/", ""))
    return found[-1] if found else None


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:])


# ---------------------------------------------------------------------------- regenerate


def _chosen(names: list[str], files: Optional[list[Path]] = None) -> Optional[list[Generated]]:
    blocks = all_generated() if files is None else [b for path in files for b in generated_blocks(path)]
    unknown = [n for n in names if n not in {b.name for b in blocks}]
    if unknown:
        print(f"no generated block named {', '.join(unknown)}; there are: {', '.join(b.name for b in blocks)}")
        return None
    return [b for b in blocks if not names or b.name in names]


def produce(block: Generated, work: Path, figures: bool) -> Optional[list[str]]:
    """The block's content as its commands print it now, at full size (its figures copied into
    docs/ if `figures`); None, said, where a command failed."""
    for argv in block.commands:
        argv = substitute(argv, None)
        print(f"[{_stamp()}] {block.name}: {shlex.join(argv)}", flush=True)
        ran = run(argv, work, timeout=4 * 3600)
        print(f"    {ran.seconds:.0f} s, exit {ran.code}", flush=True)
        if ran.code != 0 or "Traceback" in ran.output:
            print(f"FAILED: {shlex.join(argv)}\n{_tail(ran.output)}")
            return None
    lines = cut(printed_result(ran, work), block)
    if not lines:
        print(f"FAILED: {block.command} printed nothing to put in block {block.name}")
        return None
    for figure in block.option("figure") if figures else ():
        source, _, dest = figure.partition(":")
        made = sorted(work.rglob(source), key=lambda p: p.stat().st_mtime)
        if not made:
            print(f"FAILED: {block.command} wrote no {source} (block {block.name})")
            return None
        shutil.copyfile(made[-1], ROOT / dest)
        print(f"    {made[-1].relative_to(work)} -> {dest}")
    return ["```text", *lines, "```"]


def cpu_vendor() -> str:
    """This machine's CPU vendor (GenuineIntel, AuthenticAMD, ...; else the architecture)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "unknown"


def _made_at() -> str:
    """The commit, date and CPU a block was made at (its end marker says so)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return f"{commit.stdout.strip() or 'no commit'} on {time.strftime('%Y-%m-%d')}, {cpu_vendor()}"


def regenerate(names: list[str], keep: bool = False) -> int:
    chosen = _chosen(names)
    if chosen is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="mlpbench-readme-"))
    print(f"Working folder {work}")
    new: dict[str, list[str]] = {}
    try:
        for block in chosen:
            lines = produce(block, work, figures=True)
            if lines is None:
                return 1
            new[block.name] = lines
        made = _made_at()
        for path in documents():
            lines = path.read_text().splitlines()
            changed = False
            for block in reversed(generated_blocks(path)):
                if block.name in new:
                    lines[block.start + 1:block.end + 1] = [*new[block.name],
                                                            f"<!-- end generated: {block.name} (made at {made}) -->"]
                    changed = True
            if changed:
                path.write_text("\n".join(lines) + "\n")
                print(f"Rewrote {', '.join(b.name for b in generated_blocks(path) if b.name in new)} in {path.relative_to(ROOT)}")
    finally:
        if keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------- verify

# What differs between two runs of the same command although no result does: the sweep folder's
# time stamp, the sweep's wall time and the seconds a trial took.
STAMP = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?")
DURATION = re.compile(r"\(\d+(\.\d+)? min\)")  # a sweep's wall time on its last line
VARYING_COLUMNS = ("seconds",)
# The blocks `make test` regenerates and compares by value: each ran in under two minutes on 2
# CPU cores (main 68 s, activations 19 s, optimizers 24 s, optimizers_tuned 69 s, width 37 s, xor
# 22 s, tune_units 101 s; 5.7 min in all; then table and regression, 57 s each). depth (5.3 min) is not: like every block, it carries the
# commit and date it was made at in its end marker.
VERIFIED = ("main", "activations", "optimizers", "optimizers_tuned", "width", "xor", "tune_units", "table",
            "regression")


def comparable(lines: list[str]) -> list[str]:
    """A block's lines with what varies between identical runs masked: folder time stamps, and the
    cells of timing columns in its tables."""
    out, masked = [], set()
    for line in lines:
        line = DURATION.sub("(<minutes>)", STAMP.sub("<time>", line.rstrip()))
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            if not masked and any(c.strip() in VARYING_COLUMNS for c in cells):
                masked = {i for i, c in enumerate(cells) if c.strip() in VARYING_COLUMNS}
            elif masked and not set(cells[0].strip()) <= set("-:"):
                cells = ["<varies>" if i in masked else c for i, c in enumerate(cells)]
                line = "|" + "|".join(cells) + "|"
        else:
            masked = set()
        out.append(line)
    return out


def value_differences(shown: list[str], printed: list[str], name: str) -> list[str]:
    """The lines in which a block README shows differs from what its command printed now (a
    unified diff), ignoring what varies between identical runs; [] if none."""
    import difflib

    return list(difflib.unified_diff(comparable(shown), comparable(printed), f"{name} as the docs show it",
                                     f"{name} as the code prints it now", lineterm="", n=1))


# What each block's command printed at full size, in this process: run once, compared with every
# copy of the block.
PRINTED: dict[str, Optional[list[str]]] = {}


def verify(names: list[str], keep: bool = False, files: Optional[list[Path]] = None) -> int:
    """Run blocks at full size and compare their values with what the docs (or `files`) show; 1 if
    any differs."""
    chosen = _chosen(names or list(VERIFIED), files)
    if chosen is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="mlpbench-readme-verify-"))
    print(f"Working folder {work}")
    differing = []
    try:
        for block in chosen:
            if block.command not in PRINTED:  # a command shown in several files runs once
                PRINTED[block.command] = produce(block, work, figures=False)
            printed = PRINTED[block.command]
            if printed is None:
                return 1
            if block.cpu not in (None, cpu_vendor()):
                # Another vendor's CPU: MKL, oneDNN and torch's vector code take other paths there,
                # training's last bits differ, and a sweep's verdicts may (README's main block on an
                # Intel Xeon against an AMD EPYC's: depth 10 worse, not tied). Ran, and its tables'
                # structure compared.
                found = structure_differences(block.content, printed)
                print(f"    block {block.name}: values not compared (made on {block.cpu}, this CPU is "
                      f"{cpu_vendor()}: training rounds otherwise there); "
                      + ("its tables' structure the same" if not found else "its tables DIFFER"), flush=True)
            else:
                found = value_differences(block.content, printed, block.name)
                print(f"    block {block.name}: " + ("the same values" if not found else "DIFFERS"), flush=True)
            if found:
                differing.append(block.name)
                print("\n".join("    " + line for line in found))
    finally:
        if keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if differing:
        print(f"The docs' block(s) {', '.join(differing)} differ from what the code prints: run "
              f"`make readme NAMES=\"{' '.join(differing)}\"` and commit the result.")
        return 1
    return 0


# ---------------------------------------------------------------------------- check


def tables(lines: list[str]) -> list[tuple[list[str], list[str]]]:
    """(header cells, first cell of each row) of each Markdown table in the lines."""
    found, current = [], []
    for line in [*lines, ""]:
        if line.lstrip().startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            found.append((current[0], [row[0] for row in current[2:]]))
            current = []
    return found


def structure_differences(shown: list[str], printed: list[str], added: frozenset = frozenset()) -> list[str]:
    """How the tables README shows differ in structure from what the tool printed now. `added`:
    keys the small size put on the command line; a sweep of one setting is labelled by what its
    command set, so at small size its rows are named by them (trainer.max_epochs 1, not xor)."""
    a, b = tables(shown), tables(printed)
    if len(a) != len(b):
        return [f"README shows {len(a)} table(s), the tool printed {len(b)}"]
    problems = []
    for i, ((head_a, rows_a), (head_b, rows_b)) in enumerate(zip(a, b), 1):
        if head_b[0] in added and head_b[0] != head_a[0]:
            if head_a[1:] != head_b[1:] or len(rows_a) != len(rows_b):
                problems.append(f"table {i}: columns {head_a[1:]} in README, {head_b[1:]} now")
        elif head_a != head_b:
            problems.append(f"table {i}: columns {head_a} in README, {head_b} now")
        elif head_a[0] != "trial" and rows_a != rows_b:  # a search's trials depend on how many ran
            problems.append(f"table {i}: settings {rows_a} in README, {rows_b} now")
    return problems


def check(keep: bool = False) -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mlpbench-readme-check-"))
    print(f"Working folder {work}; {_bin()} first on PATH", flush=True)
    ran_count, skipped, failures = 0, [], []
    cache: dict[tuple[str, ...], Ran] = {}
    last_folder: Optional[str] = None

    def execute(label: str, argv: list[str], expected: int) -> Optional[Ran]:
        nonlocal ran_count, last_folder
        key = tuple(argv)
        if key in cache:
            print(f"[{_stamp()}] {label}: {shlex.join(argv)}  (ran above)", flush=True)
            return cache[key]
        print(f"[{_stamp()}] {label}: {shlex.join(argv)}", flush=True)
        done = run(argv, work, timeout=1800)
        ran_count += 1
        cache[key] = done
        status = "ok" if done.code == expected and "Traceback" not in done.output else "FAILED"
        print(f"    {done.seconds:.1f} s, exit {done.code}{'' if expected == 0 else f' (expected {expected})'}: {status}",
              flush=True)
        if status != "ok":
            why = (f"exit {done.code}, expected {expected}" if done.code != expected else "a Traceback in its output")
            failures.append((label, shlex.join(argv), why, done.output))
        last_folder = sweep_folder(done, work) or last_folder
        return done

    try:
        # (1) every command of README's bash blocks, in order, at a small size
        for command in commands(README):
            label = command.where()
            try:
                argv = command.argv
                reason = skip_reason(argv)
                if reason is None or argv[0] == "tensorboard":
                    argv = substitute(argv, last_folder)
            except (ValueError, ReadmeError) as e:
                failures.append((label, command.text, str(e), ""))
                print(f"[{_stamp()}] {label}: {command.text}\n    FAILED: {e}")
                continue
            if reason is not None:
                if argv[0] == "tensorboard" and "--logdir" in argv:
                    logdir = argv[argv.index("--logdir") + 1]
                    if not (work / logdir).is_dir():
                        failures.append((label, command.text, f"--logdir {logdir} does not exist", ""))
                        reason += f"; FAILED: its --logdir {logdir} does not exist"
                    else:
                        reason += f"; its --logdir {logdir} exists"
                skipped.append((label, command.text, reason))
                print(f"[{_stamp()}] {label}: {command.text}\n    skipped: {reason}", flush=True)
                continue
            execute(label, small(argv), command.expected_exit)

        # (2) each generated block: the tool's output now has the structure the block shows
        blocks = all_generated()
        for block in blocks:
            done = None
            for argv in block.commands:
                argv = small(substitute(argv, last_folder))
                reason = skip_reason(argv)
                if reason:
                    skipped.append((block.where(), block.command, reason))
                    done = None
                    break
                done = execute(f"{block.where()} [{block.name}]", argv, 0)
                if done.code != 0:
                    break
            if done is None or done.code != 0:
                continue
            added = frozenset(a.split("=", 1)[0] for a in argv if "=" in a) - frozenset(
                a.split("=", 1)[0] for part in block.commands for a in part if "=" in a)
            problems = structure_differences(block.content, cut(printed_result(done, work), block), added)
            if not block.content or not any(line.strip() and not line.startswith("```") for line in block.content):
                problems.append("the block is empty: run python docs/readme.py regenerate " + block.name)
            if problems:
                failures.append((block.where(), block.command, "; ".join(problems), "\n".join(printed_result(done, work))))
                print("    structure differs: " + "; ".join(problems), flush=True)
            else:
                print(f"    block {block.name}: same columns and settings", flush=True)
    finally:
        if keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    minutes = (time.monotonic() - started) / 60
    print(f"\n{ran_count} commands run, {len(skipped)} skipped, {len(failures)} failed, in {minutes:.1f} min")
    if skipped:
        print("Skipped:")
        for label, text, reason in skipped:
            print(f"  {label}: {text}\n      {reason}")
    if failures:
        print("Failed:")
        for label, text, why, output in failures:
            print(f"  {label}: {text}\n      {why}")
            if output:
                print(_tail(output))
        return 1
    return 0


def list_all() -> int:
    last = "DIR"
    for command in commands(README):
        reason = skip_reason(command.argv)
        shown = "skip: " + reason if reason else shlex.join(small(substitute(command.argv, last)))
        print(f"{command.where()}: {command.text}\n    {shown}")
    for block in all_generated():
        print(f"{block.where()} [{block.name}]: {block.command} {block.options or ''}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/readme.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    regen = sub.add_parser("regenerate", help="run generated blocks' commands at full size and rewrite the blocks")
    regen.add_argument("names", nargs="*", help="blocks to regenerate (default: all)")
    regen.add_argument("--keep", action="store_true", help="keep the working folder")
    chk = sub.add_parser("check", help="run README's commands at a small size; check the generated blocks")
    chk.add_argument("--keep", action="store_true", help="keep the working folder")
    ver = sub.add_parser("verify", help="run generated blocks at full size and compare their values with the docs")
    ver.add_argument("names", nargs="*", help=f"blocks to verify (default: {', '.join(VERIFIED)})")
    ver.add_argument("--keep", action="store_true", help="keep the working folder")
    ver.add_argument("--file", type=Path, action="append", help="a Markdown file whose blocks to verify (default: "
                     "README.md and docs/*.md)")
    sub.add_parser("list", help="the commands and blocks, as check would run them")
    args = parser.parse_args(argv)
    try:
        if args.what == "regenerate":
            return regenerate(args.names, args.keep)
        if args.what == "check":
            return check(args.keep)
        if args.what == "verify":
            return verify(args.names, args.keep, args.file)
        return list_all()
    except ReadmeError as e:
        print(f"readme.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
