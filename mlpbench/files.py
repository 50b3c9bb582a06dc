"""Writing output files: atomically, as Markdown and CSV tables, as PNG figures; lock files.

The one place files are written whole: result.json, the reports of sweeps and searches, and
the array cache all go through `write_atomic`. No torch here, and matplotlib only when a
figure is made; every figure's size and resolution are decided here.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import html
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


# Writing failed for a reason of the disk's (full, read-only, no permission), not the run's: the
# path says more than a traceback, and the run continues where it was once the disk is fixed.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM)

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it


# The locks this process holds (try_lock's), by real path: the open file that holds each.
_held: dict[str, Any] = {}


def try_lock(path: Path, wait: float = 0.25):
    """The open file `path` (made if missing) holding its exclusive lock, or None where another
    process holds it for `wait` seconds. Held while the file stays open, and at most until the
    process ends (a killed process holds nothing). The wait: `locked_elsewhere` asks by taking
    the lock for an instant, which must not refuse a sweep starting in that instant."""
    handle = open(path, "w")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _held[os.path.realpath(path)] = handle
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(0.01)


def locked_elsewhere(path: Path) -> bool:
    """Whether another open file holds `path`'s lock (try_lock's) now: a sweep still running.
    False where there is no such file, or it cannot be opened to ask (a folder read-only here).
    A lock this process holds is known at once (a sweep's own report waited 0.25 s to ask)."""
    if not path.exists():
        return False
    own = _held.get(os.path.realpath(path))
    if own is not None and not own.closed:
        return True
    try:
        handle = try_lock(path)
    except OSError:
        return False
    if handle is None:
        return True
    handle.close()
    return False


def write_atomic(path: Path, data: bytes) -> Path:
    """Readers never see a half-written file (someone may be reading the last report): write a
    temp file of a unique name beside it, then rename it over; the temp file goes on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from others the umask allows
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, payload: Any) -> Path:
    # JSON has no NaN or inf: a diverged run's losses become null.
    text = json.dumps(_finite_or_none(payload), indent=2, allow_nan=False) + "\n"
    return write_atomic(path, text.encode())


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def markdown(columns: list[str], rows: list[dict[str, Any]], cell: Callable[[str, Any], str] = None) -> str:
    """An aligned Markdown table: readable in a terminal as it is in a rendered page.
    `cell(column, value)` formats a value; numbers are right-aligned."""
    cell = cell or format_cell
    columns_shown = [escape_cell(c) for c in columns]
    cells = [[escape_cell(cell(c, row.get(c))) for c in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns_shown)]

    def line(items: list[str]) -> str:
        return "| " + " | ".join(s.rjust(w) if num else s.ljust(w)
                                 for s, w, num in zip(items, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(columns_shown), rule, *(line(r) for r in cells)]) + "\n"


def escape_cell(text: str) -> str:
    """A value as one table cell, whatever it holds: `|` would start a new column, HTML would
    render (a swept value `<img src=...>`), a newline would end the row."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return text.replace("|", "\\|")


def format_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, buffer.getvalue().encode())


# Every report figure's size and resolution, decided here alone. A panel of 10 x 5.5 inches at
# 150 dpi is 1500 x 825 pixels: its 10-point text stays legible when a viewer shrinks it to fit.
FIGURE_SIZE = (10.0, 5.5)
FIGURE_DPI = 150
COLUMN_WIDTH = 7.0  # inches per panel when panels stand side by side
LEGEND_SHARE = 0.25  # of a figure's width, that a legend beside its axes may take


def figure(rows: int = 1, columns: int = 1, height: float | None = None, **subplots):
    """A new report figure and its rows x columns array of axes. Its constrained layout makes
    room for legends outside the axes (`legend_beside`), so that none covers a curve."""
    import matplotlib.pyplot as plt

    width = FIGURE_SIZE[0] if columns == 1 else COLUMN_WIDTH * columns
    return plt.subplots(rows, columns, figsize=(width, height or FIGURE_SIZE[1] * rows), layout="constrained",
                        squeeze=False, **subplots)


def fit(fig):
    """A figure drawn by someone else (Optuna's) at the report's size and layout."""
    fig.set_size_inches(*FIGURE_SIZE)
    fig.set_layout_engine("constrained")
    return fig


def legend_beside(ax, **kwargs) -> None:
    """The axes' legend to their right, outside them: over the curves it would hide some."""
    labels = ax.get_legend_handles_labels()[1]
    if labels:
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small",
                           ncol=1 if len(labels) <= 18 else 2, **kwargs)
        # A legend wider than a quarter of the figure (20 settings' long names in two columns
        # took over half of it): the figure grows by the rest, and the axes keep their width.
        fig = ax.figure
        wide = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
        if wide > LEGEND_SHARE * fig.get_figwidth():
            fig.set_figwidth(fig.get_figwidth() + wide - LEGEND_SHARE * fig.get_figwidth())


def save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    finally:
        plt.close(fig)  # a failed figure too: pyplot keeps every open one
    return write_atomic(path, buffer.getvalue())
