"""Your own data (`data=table`): a .csv, .tsv, .parquet or .npz file read into the arrays every
source gives (float32 features, int64 class labels; a regression's float32 targets), with the
encoding a trained run needs to read new rows alike: the feature columns, each number column's
mean and standard deviation, each text column's categories, the class names or the target's
scale.

- Features: number columns standardised, text columns one-hot encoded (a category the training
  rows lack is all zeros), both fitted on the training rows: every row but the test split's. A
  run's train/validation split is drawn from its seed, and stacked runs of several seeds share
  one copy of the rows, so the encoding is fitted once on the rows those splits are drawn from;
  the test rows never inform it.
- The test split: the file `data.test_path`, or the rows whose `data.split_column` says "test",
  else `data.test_split` of the rows, stratified by
  class, the same rows for every seed (TEST_SPLIT_SEED).
- Classes: the target's values in sorted order (numbers numerically), named in the encoding.
- Regression (data.task, or a float target of many values): the target standardised on the
  training rows, its mean and standard deviation in the encoding; test rows drawn at random.
- A file that cannot be used stops the run before anything trains, with the file and the
  column named (DataError, exit 2).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import lzma
import math
import re
import shlex
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mlpbench.schema import ConfigError, Missing, Task

FORMATS = (".csv", ".tsv", ".parquet", ".npz")
TEXT_FORMATS = (".csv", ".tsv")
# A text table may come compressed (data.csv.gz): pandas inflates it as it reads.
COMPRESSED = {".gz": gzip, ".bz2": bz2, ".xz": lzma}
FORMATS_WANTED = "give a .csv, .tsv (either may be .gz, .bz2 or .xz), .parquet or .npz file"
# The held-out test rows of a source without a test split (a table's; mnist_small's, digits')
# never depend on the run's seed.
TEST_SPLIT_SEED = 12345
MIN_ROWS_PER_CLASS = 2  # fewer on average: an identifier or a number, not a class label
# A float target with more values than this is taken for a number to predict (data.task=null).
MAX_INFERRED_CLASSES = 20  # with fractions, or more than one value per ten rows of a float column
# A text column with more categories than this (and than half its rows) is an identifier or free
# text: one input per value would make the model as wide as the file is long.
MAX_CATEGORIES = 1000
SHOWN = 8  # columns, rows or classes listed in a message


class TableError(ConfigError):
    """The table cannot be used as asked; the message names the file and the column."""


def file_path(path: str, root: Optional[str]) -> Path:
    """data.path, relative to data.root where one is given."""
    found = Path(path).expanduser()
    return found if found.is_absolute() or root is None else Path(root).expanduser() / found


def content_digest(path: Path) -> str:
    """The file's BLAKE2 digest: the array cache's key, so that an edited file is read again
    even where its size and time stamp are kept."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(data_cfg) -> dict[str, str]:
    """data=table's files (data.path, data.test_path) that exist, by their content digest; {} for
    the other sources, which mlpbench ships or fetches as they are."""
    from mlpbench.schema import Source

    if Source(data_cfg.source) is not Source.table:
        return {}
    return {str(f): content_digest(f) for f in table_files(data_cfg) if f.is_file()}


def files_read(data_cfg) -> dict[str, str]:
    """What a run records of the files it reads (result.json's `files`): each one's full path and
    content digest; {} for the sources mlpbench ships or fetches."""
    return {str(Path(path).resolve()): digest for path, digest in file_digests(data_cfg).items()}


def check_unchanged(recorded: list[tuple[str, str, str]]) -> None:
    """ConfigError where a file that runs recorded reading, as (path, digest, which runs), now
    holds other content: continuing them, or adding runs beside them, would mix two versions of
    the data in one result. A file no longer there is not checked (a finished run reads nothing)."""
    now: dict[str, str] = {}
    for path, digest, runs in recorded:
        if path not in now and Path(path).is_file():
            now[path] = content_digest(Path(path))
        if now.get(path, digest) != digest:
            raise ConfigError(f"{path}: its content changed since {runs} read it (digest {digest[:8]} -> "
                              f"{now[path][:8]}); continuing would mix two versions of the data in one result. Put "
                              "the file back as it was, or start over in another folder (without resume=true)")


def table_files(data_cfg) -> list[Path]:
    """data.path, and data.test_path where given, each relative to data.root."""
    return [file_path(p, data_cfg.root) for p in (data_cfg.path, data_cfg.test_path) if p]


def table_format(path: Path) -> str:
    """The format a file is read in, by its name: .csv, .tsv, .parquet or .npz; a compressed
    text table (data.csv.gz) by the name under its compression."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSED and suffixes[-2] in TEXT_FORMATS:
        return suffixes[-2]
    return path.suffix.lower()


def as_named(path: Path, text: str) -> bytes:
    """A text table's bytes as `path`'s name asks: compressed where it ends .gz, .bz2 or .xz."""
    compression = COMPRESSED.get(path.suffix.lower())
    return compression.compress(text.encode()) if compression else text.encode()


def check_file(path: Path, key: str) -> None:
    """TableError where `path` (given as `key`) is no file of a format read here, or empty: what
    a sweep checks once before its first run, and each run again as it reads the file."""
    suffix, where = table_format(path), f"{key}={path}"
    if path.is_dir():
        raise TableError(f"{where}: a folder; {FORMATS_WANTED}")
    if suffix not in FORMATS:
        raise TableError(f"{where}: {f'a {suffix} file' if suffix else 'a file without an extension'}; {FORMATS_WANTED}")
    if not path.is_file():
        raise TableError(f"{where}: no such file")
    if path.stat().st_size == 0:
        raise TableError(f"{where}: the file is empty")


def check_files(data_cfg) -> None:
    """check_file for data=table's files (data.path, data.test_path); nothing for other sources."""
    from mlpbench.schema import Source

    if Source(data_cfg.source) is Source.table:
        for key in ("path", "test_path"):
            if data_cfg[key]:
                check_file(file_path(data_cfg[key], data_cfg.root), f"data.{key}")


def _listed(items: list, n: int = SHOWN) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" ... ({len(items)} in all)" if len(items) > n else "")


# ---------------------------------------------------------------------------- reading


def _open_file(path: Path):
    """The file's bytes, decompressed where its suffix says so (.gz, .bz2, .xz)."""
    opener = COMPRESSED.get(path.suffix.lower())
    return (opener.open if opener else open)(path, "rb")


def read_frame(path: Path, key: str):
    """The file as a pandas DataFrame (.csv, .tsv, .parquet), or TableError naming it."""
    import pandas as pd

    suffix = table_format(path)
    where = f"{key}={path}"
    check_file(path, key)
    if suffix in TEXT_FORMATS:
        compression = path.suffix.lower() if path.suffix.lower() in COMPRESSED else None
        try:
            with _open_file(path) as f:
                head = f.read(8192)
        except (OSError, EOFError, lzma.LZMAError) as e:  # not compressed after all, or cut short
            raise TableError(f"{where}: cannot be read as {compression} ({e}); a plain text file is named "
                             f"without {compression}, a cut-short one needs copying again") from None
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text" export
            raise TableError(f"{where}: UTF-16 text; save it as UTF-8 (Excel: CSV UTF-8)")
        if b"\x00" in head:
            raise TableError(f"{where}: not a text file (a binary file with a {suffix} name?)")
        sep = "," if suffix == ".csv" else "\t"
        try:
            frame = pd.read_csv(path, sep=sep, skipinitialspace=True)  # (from bytes in memory: 1.5x as long)
            header = pd.read_csv(path, sep=sep, skipinitialspace=True, header=None, nrows=1, dtype=str,
                                 na_filter=False).iloc[0].tolist()
        except UnicodeDecodeError:
            raise TableError(f"{where}: not UTF-8 text; save it as UTF-8 (Excel: CSV UTF-8)") from None
        except (OSError, EOFError, lzma.LZMAError) as e:  # the compressed stream cut short past its head
            if compression is None:
                raise
            raise TableError(f"{where}: truncated or corrupt {compression} file ({e}); copy or compress it "
                             "again") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise TableError(f"{where}: cannot be read as a {suffix[1:].upper()} table: {e}") from None
        frame = _checked_header(frame, header, where)
        codes: dict = {}
        if len(header) == len(frame.columns) and isinstance(frame.index, pd.RangeIndex):  # for _as_written:
            frame.attrs.update(separator=sep, rows=len(frame))  # each column where the file has it, each row its line's
            named = max((i + 1 for i, n in enumerate(header) if str(n).strip()), default=0)
            with _open_file(path) as f:  # read whole by pandas just before: not cut short
                short, codes = _scan_rows(f.read(), sep, named, _whole_number_columns(frame))
            frame.attrs["short"] = _Kept(short, named=named) if len(short["rows"]) else None
    else:
        try:
            frame = pd.read_parquet(path)
        except ImportError:
            raise TableError(f"{where}: reading Parquet needs pyarrow: pip install pyarrow") from None
        except Exception as e:  # pyarrow's errors: not a Parquet file, damaged
            raise TableError(f"{where}: cannot be read as Parquet: {type(e).__name__}: {e}") from None
    if len(frame.columns) and len(frame) == 0:
        raise TableError(f"{where}: a header ({_listed(list(frame.columns))}) but no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    if suffix in TEXT_FORMATS:
        frame.attrs["codes"] = _Kept({frame.columns[c]: values for c, values in codes.items()})
    # Text as the file holds it, less the spaces around it ("yes " and "yes" are one class).
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    return frame


def _column_option(key: str, name: str) -> str:
    """`KEY=[NAME]` as the command line takes it: a name Hydra would not read bare in Hydra's
    quotes, and those in the shell's ("data.drop=['Zip Code']": bash drops bare single quotes)."""
    bare = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) and name.lower() not in ("true", "false", "null", "nan",
                                                                                      "inf", "none")
    if bare:
        return f"{key}=[{name}]"
    # Hydra's quotes: a backslash is itself but before a quote or the end (there doubled), and
    # ${...} an interpolation unless escaped.
    quote = "'" if "'" not in name else '"'
    body = re.sub(rf"(\\*)({quote}|$)", lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""), name.replace("${", "\\${"))
    hydra = f"{key}=[{quote}{body}{quote}]"
    # Inside the shell's double quotes these would be read: then its single quotes, escaped.
    return shlex.quote(hydra) if re.search(r"['\"`\\!]|\$[\w{(]", name) else f'"{hydra}"'


# Bytes of a text table scanned at a time: its separators' positions take 8 bytes each.
SCAN_BLOCK = 1 << 24


def _whole_number_columns(frame) -> set[int]:
    """The positions of the columns pandas read as whole numbers (floats where a gap made them)."""
    import pandas as pd

    return {i for i, (_, column) in enumerate(frame.items())
            if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column)
            or pd.api.types.is_float_dtype(column) and bool(np.all(np.mod(column.dropna(), 1) == 0))}


def _scan_rows(raw: bytes, sep: str, named: int, whole: set[int]):
    """What pandas' reading of a text table hides, from its bytes: the rows with fewer values than
    the `named` columns (pandas leaves their last empty): arrays of their rows (as _file_row
    numbers them), lines and values; and the columns of `whole` numbers that the file writes
    with leading zeros (02139, a code: up to 3 of each)."""
    if b"\n" not in raw and b"\r" in raw:  # classic Mac line ends (Excel's "CSV (Macintosh)"): pandas' too
        raw = raw.replace(b"\r", b"\n")
    found = _Found(whole)
    sep_byte, quote = ord(sep), ord('"')
    spaces = np.array([b for b in b" \t\r" if b != sep_byte], np.uint8)
    lines_before, row, start = 0, -1, 0  # row: the data rows before this block (the header: 0)
    while start < len(raw):  # 784 pixel columns of 20,000 rows (56 MB): 0.24 s, pandas' reading 0.56
        end = raw.find(b"\n", min(start + SCAN_BLOCK, len(raw)) - 1)
        end = len(raw) if end < 0 else end + 1
        b = np.frombuffer(raw, np.uint8, end - start, start)
        ends = np.flatnonzero(b == 10)
        if b[-1] != 10:
            ends = np.append(ends, len(b))
        starts = np.concatenate(([0], ends[:-1] + 1))
        quotes = np.flatnonzero(b == quote)
        quoted = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)
        if (quoted % 2).any():  # a quoted field across lines, or a stray quote: the csv module reads it
            return _scan_records(raw, sep, named, whole)
        seps = np.flatnonzero(b == sep_byte)  # (a cumulative count took 3x as long)
        before = np.searchsorted(seps, starts)
        fields = np.searchsorted(seps, ends) - before + 1
        # Lines to read as records: quoted ones (R's write.csv quotes its header), and those
        # without a separator that may be blank (empty, or beginning with a space), which pandas skips.
        first = b[np.minimum(starts, len(b) - 1)]
        read = np.flatnonzero((quoted > 0) | (fields == 1) & ((starts == ends) | np.isin(first, spaces)))
        records = dict(zip(read.tolist(), csv.reader((raw[start + starts[i]:start + ends[i]].decode(
            "utf-8", errors="replace") for i in read), delimiter=sep, skipinitialspace=True)))
        for i, record in records.items():
            fields[i] = len(record) if any(field.strip() for field in record) or len(record) > 1 else 0
        rows = np.cumsum(fields > 0) + row
        short = np.flatnonzero((fields > 0) & (fields < named) & (rows >= 1))
        found.add_short(rows[short], lines_before + short + 1, fields[short])
        zeros = np.flatnonzero(b[:-1] == ord("0"))
        zeros = zeros[(b[zeros + 1] >= ord("0")) & (b[zeros + 1] <= ord("9"))]
        previous = b[np.maximum(zeros - 1, 0)]
        zeros = zeros[(zeros == 0) | (previous == sep_byte) | (previous == 10) | (previous == ord(" "))]
        line = np.searchsorted(starts, zeros, "right") - 1
        keep = (rows[line] >= 1) & (quoted[line] == 0)  # a quoted line's columns are its record's
        zeros, line = zeros[keep], line[keep]
        columns = np.searchsorted(seps, zeros) - before[line]
        order = np.argsort(columns, kind="stable")  # each column's in the file's order
        bounds = np.flatnonzero(np.diff(columns[order], prepend=-1))
        for a, z in zip(bounds, [*bounds[1:], len(order)]):
            column = int(columns[order[a]])
            for at in zeros[order[a:min(z, a + 50)]] if found.wants(column) else []:
                field = re.match(rb"[^\n" + re.escape(sep.encode()) + rb"]*", raw[start + at:start + at + 64])
                found.code(column, field.group().decode(errors="replace"))
        for i, record in records.items():
            if quoted[i] and rows[i] >= 1:
                found.codes_of(record)
        row, lines_before, start = int(rows[-1]), lines_before + len(ends), end
    return found.result()


def _scan_records(raw: bytes, sep: str, named: int, whole: set[int]):
    """_scan_rows by Python's csv module alone: records whose quoted fields hold line ends."""
    found = _Found(whole)
    csv.field_size_limit(2**31 - 1)  # pandas reads a field of any length (the module: 128 KiB)
    reader = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"), newline=""), delimiter=sep,
                        skipinitialspace=True)
    row = -1
    for record in reader:
        if not record or len(record) == 1 and not record[0].strip():  # pandas skips a blank line
            continue
        row += 1
        if row:
            if len(record) < named:
                found.add_short([row], [reader.line_num], [len(record)])
            found.codes_of(record)
    return found.result()


class _Found:
    """What _scan_rows finds, as it finds it."""

    def __init__(self, whole: set[int]):
        self.short: list[tuple] = []  # (rows, lines, values) of a block's short rows
        self.whole = whole
        self.codes: dict[int, list[str]] = {}

    def add_short(self, rows, lines, values) -> None:
        if len(rows):
            self.short.append((rows, lines, values))

    def wants(self, column: int) -> bool:
        return column in self.whole and len(self.codes.get(column, [])) < 3

    def code(self, column: int, field: str) -> None:
        field, codes = field.strip(), self.codes.setdefault(column, [])
        if (len(codes) < 3 and len(field) > 1 and field[0] == "0" and field.isdigit() and field.strip("0")
                and field not in codes):
            codes.append(field)  # (000 is zero, not a code)

    def codes_of(self, record: list[str]) -> None:
        """A record's codes, where its fields show any (one search of them all, in C)."""
        if LEADING_ZERO.search("\0".join(record)):
            for column in (c for c in self.whole if c < len(record) and self.wants(c)):
                self.code(column, record[column])

    def result(self):
        rows, lines, values = (np.concatenate([np.asarray(part[i], np.int64) for part in self.short])
                               if self.short else np.zeros(0, np.int64) for i in range(3))
        return ({"rows": rows, "lines": lines, "values": values},
                {c: tuple(codes) for c, codes in self.codes.items() if codes})


LEADING_ZERO = re.compile(r"(?:^|\0)\s*0\d")


class _Kept(dict):
    """A value read once and never changed, kept in frame.attrs: pandas deep-copies those with
    every column taken (784 columns of codes: 1 s for a pass over them; each short row's place)."""

    def __deepcopy__(self, memo):
        return self


NO_HEADER = "its first row looks like data, not names: a file without a header row? Add one naming the columns"


def _numbers_repeated(names: list[str]) -> bool:
    """A header of mostly numbers, some of them twice: an MNIST-style row (5,0,0,...) read as names."""
    numbers = 0
    for name in names:
        try:
            float(name)
            numbers += 1
        except ValueError:
            pass
    return bool(names) and numbers * 2 >= len(names) and len(set(names)) < len(names)


def _numbering(names: list[str]) -> bool:
    """Names whose numbers count up by one (pandas' 0,1,2 of unnamed columns; a survey's items
    1..5 beside its label): a numbering of columns, not a row of values."""
    numbers = [int(n) for n in names if n.isdecimal()]
    return len(numbers) >= 2 and numbers[0] in (0, 1) and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def _evenly_spaced(names: list[str]) -> bool:
    """Three or more names that are numbers in even steps (a spectrum's wavelengths 400, 410,
    420, ...): a scale the columns were measured on, not a row of values."""
    numbers = []
    for name in names:
        try:
            numbers.append(float(name))
        except ValueError:
            continue
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    return len(numbers) >= 3 and steps[0] != 0 and all(math.isclose(s, steps[0], rel_tol=1e-9) for s in steps)


def _header_looks_like_data(frame) -> bool:
    """A CSV or TSV whose header row reads as one of its rows: for at least half of the columns
    the name is a number inside the column's range, or a text among its values (0.84,2.27,blue,
    yes over columns of such values). Numbers as names alone are no sign (a spectrum's 1100.0,
    1100.5, ...; pandas' 0,1,2 of unnamed columns)."""
    import pandas as pd

    names = [str(c) for c in frame.columns]
    if len(names) < 2 or _numbering(names) or _evenly_spaced(names):
        return False
    alike = 0
    for name in names:
        column = frame[name].dropna()
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            try:
                alike += bool(len(column)) and float(column.min()) <= float(name) <= float(column.max())
            except ValueError:
                pass
        elif name in set(column.astype(str)):
            alike += 1
    return alike * 2 >= len(names)


def _checked_header(frame, header: list, where: str):
    """A text table's columns as its header names them. Names given twice are refused (pandas
    would rename the second `label.1`, an input holding a copy of the label). A column without a
    name keeps pandas' name for it (`Unnamed: 0`), and frame.attrs["nameless"] lists them: no
    input unless data.features names it (encode), as pandas' to_csv writes its row numbers so,
    and as an input they would tell the model the order the rows were saved in."""
    import collections

    names = [str(n).strip() for n in header]
    if len(names) != len(frame.columns):  # a header shorter than its rows: pandas' own reading
        return frame.set_axis([str(c).strip() for c in frame.columns], axis=1)
    twice = sorted(n for n, count in collections.Counter(names).items() if n and count > 1)
    if twice:
        raise TableError(f"{where}: the header names {_listed(twice)} more than once; give each column its own name"
                         + (f" ({NO_HEADER})" if _numbers_repeated(names) else ""))
    # pandas' name, unless a named column has it (a table saved twice with its row numbers)
    filled = [n or (f"Unnamed: {i}" if f"Unnamed: {i}" not in names else f"(column {i + 1})")
              for i, n in enumerate(names)]
    frame = frame.set_axis(filled, axis=1)
    frame.attrs["nameless"] = {filled[i]: (i + 1, bool(frame.iloc[:, i].isna().all()))
                               for i, n in enumerate(names) if not n}
    return frame


def _column_hint(given: str, frame, key: str) -> str:
    """For a column not found: the closest names (case aside first), and where the command line
    turned the name into a bool or a number (true -> True, 1e3 -> 1000.0), how to keep it text."""
    from mlpbench.overrides import did_you_mean

    columns = [str(c) for c in frame.columns]
    same = [c for c in columns if c.lower() == given.lower()]
    hint = f"; did you mean {same[0]}?" if same else did_you_mean(given, columns)
    try:
        float(given)
        number = True
    except ValueError:
        number = False
    if given in ("True", "False") or number:
        quoted = f"\"{key}=['NAME']\"" if key in ("data.drop", "data.features", "data.categorical") else \
            f"\"{key}='NAME'\""  # lists; the double quotes keep the single ones from the shell
        hint += (f" (the command line reads an unquoted true or 1e3 as a bool or a number, {given}: quote a "
                 f"column's name, {quoted})")
    return hint


def _separator_hint(frame, path: Path) -> str:
    """Where a file read as one column holds another separator in its name: what to do."""
    if len(frame.columns) != 1:
        return ""
    found = next((sep for sep in (";", "\t", "|", ",") if sep in str(frame.columns[0])), None)
    if found is None:
        return ""
    expected = "commas" if table_format(path) == ".csv" else "tabs"
    # A ';' file comes from a locale of decimal commas (Excel's German CSV): those need points too.
    points = " and decimal points (pandas: to_csv(index=False))" if found == ";" else ""
    return (f" (one column: the file seems separated by {found!r}, and a {table_format(path)} file is read "
            f"as separated by {expected}; save it with {expected}{points}"
            f"{', or name it .tsv' if found == chr(9) else ''})")


def numpy_file_kind(path: Path) -> Optional[str]:
    """".npy" or ".npz" by the file's first bytes, whatever its name; None for neither."""
    with open(path, "rb") as f:
        magic = f.read(6)
    return ".npy" if magic == b"\x93NUMPY" else ".npz" if magic.startswith(b"PK") else None  # .npz: a zip archive


def read_npz(path: Path, key: str, labelled: bool = True):
    """x (rows x features) and y (labels) of a NumPy .npz file, as a DataFrame (x0, x1, ...,
    then y), so that it is encoded as a table is. New rows to predict need no y."""
    import pandas as pd

    where = f"{key}={path}"
    if not path.is_file():
        raise TableError(f"{where}: no such file")
    kind = numpy_file_kind(path)
    if kind != ".npz":
        saved = "one NumPy array (np.save's .npy)" if kind == ".npy" else "not a NumPy .npz file"
        raise TableError(f"{where}: {saved}; save x and y with np.savez(path, x=x, y=y)")
    try:
        with np.load(path, allow_pickle=False) as npz:  # no pickled objects: loading runs no code
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as e:
        raise TableError(f"{where}: cannot be read as a NumPy .npz file: {' '.join(str(e).split())[:200]}") from None
    if "x" not in arrays or ("y" not in arrays and labelled):
        raise TableError(f"{where}: has arrays {_listed(sorted(arrays)) or 'none'}; needs x (rows x features) "
                         "and y (a label per row)")
    x = arrays["x"]
    if not labelled:  # rows to predict: a y beside them is not read (a Keras-style (n, 1) one too)
        arrays.pop("y", None)
    y = arrays["y"] if "y" in arrays else np.zeros(len(x) if x.ndim else 0)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or not len(y):
        raise TableError(f"{where}: x must be rows x features and y one label per row; they are {x.shape} and "
                         f"{y.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):  # bools: 1 and 0, as a CSV's
        raise TableError(f"{where}: x holds {x.dtype}, not numbers")
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    if "y" in arrays:
        frame["y"] = y
    return frame


def read_table(path: Path, key: str, labelled: bool = True):
    return read_npz(path, key, labelled) if table_format(path) == ".npz" else read_frame(path, key)


# ---------------------------------------------------------------------------- encoding


# Marks of a missing value that pandas reads as text (its own: '', NA, N/A, null, NaN, ...).
GAP_MARKS = ("?", "-", "--", ".", "missing", "unknown", "none")


def _column_kind(column, name: str, path: Path) -> str:
    """"number" or "text"; a column of numbers and words both is refused."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return "number"
    present = column.dropna()
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    if parsed.notna().all():
        return "number"
    text = present.astype(str).str.strip()
    for pattern, written in ((r"[+-]?\d*,\d+|[+-]?\d+", "with a decimal comma or a thousands separator"), (r"[+-]?\d*\.?\d+ ?%", "as percentages")):
        if len(text) and text.str.fullmatch(pattern).all():  # else each value a category: 139 inputs
            raise TableError(f"{path}: column {name} holds numbers written {written} ({text.iloc[0]!r}), read as text "
                             "(each value would be a category of its own); write them as plain numbers: a decimal "
                             "point, no thousands separator or % (pandas: to_csv(decimal='.')), or leave the column "
                             f"out with {_column_option('data.drop', name)}")
    if parsed.notna().any():
        numbers, words = present[parsed.notna()], present[parsed.isna()]
        # UCI's files mark a gap '?': pandas reads only an empty cell, NA, null and the like as one.
        marks = sorted({w for w in words.astype(str).str.strip() if w in GAP_MARKS})
        gap = (f" ({_listed([repr(m) for m in marks])} marks a missing value? Write an empty cell there, then choose "
               "data.missing)" if marks else "")
        raise TableError(f"{path}: column {name} mixes numbers and text (row {numbers.index[0] + 1}: "
                         f"{numbers.iloc[0]!r}, row {words.index[0] + 1}: {words.iloc[0]!r}){gap}; make it one or "
                         f"the other, or leave it out with {_column_option('data.drop', name)}")
    return "text"


def _as_numbers(column):
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return pd.to_numeric(column, errors="coerce")
    # A bool column read with a gap comes as text: True/False as 1/0, as where it had none.
    text = column.astype(str).str.strip().replace({"True": "1", "False": "0", "true": "1", "false": "0"})
    return pd.to_numeric(text, errors="coerce")


def _usable_rows(frame, used: list[str], target: str, path: Path, how: Missing, where, notes: list[str]):
    """The rows data.missing keeps, and those of no label; a note in `notes` of how many were left out."""
    kept = _missing(frame, used, path, how)
    kept = kept[kept[target].notna()]
    if len(kept) < len(frame):
        notes.append(f"data.missing={how.value}: {len(frame) - len(kept)} of {len(frame)} rows of {where} left out")
    return kept


def short_rows(frame, where: str, how: Missing | None = None, notes: list[str] | None = None):
    """The frame less the rows of its text file with fewer values than its header names, which
    pandas read with the values after the one left out in the columns before theirs: left out
    with data.missing=drop (said in `notes`), else refused, by row and line (`how` None: rows
    to predict)."""
    short = frame.attrs.get("short")
    if not short:
        return frame
    rows, lines, values = short["rows"], short["lines"], short["values"]
    if how is Missing.drop:
        notes.append(f"data.missing=drop: {len(rows)} row(s) of {where} with fewer values than its header names "
                     f"left out (row {rows[0]}, line {lines[0]}: {values[0]} of {short['named']})")
        return frame.drop(index=rows - 1)  # the file's rows are the frame's index, from 0
    listed = ", ".join(map(str, rows[1:SHOWN])) + (", ..." if len(rows) > SHOWN else "")
    more = f" (and rows {listed}: {len(rows)} in all)" if len(rows) > 1 else ""
    plural = "s" if values[0] != 1 else ""
    raise TableError(f"{where}: row {rows[0]} (line {lines[0]}) has {values[0]} value{plural} for "
                     f"the header's {short['named']} names{more}: one left out moves those after it into the columns "
                     "before theirs; write a missing value as an empty field (1,,3)"
                     + (", or set data.missing=drop to leave such rows out" if how is not None else ""))


def _missing(frame, columns: list[str], path: Path, how: Missing):
    """The rows to keep, having refused or dropped missing values as data.missing says."""
    counts = {c: int(frame[c].isna().sum()) for c in columns}
    counts = {c: n for c, n in counts.items() if n}
    if not counts:
        return frame
    if how is Missing.refuse:
        column, n = next(iter(counts.items()))
        rows = [_file_row(frame, i) for i in np.flatnonzero(frame[column].isna().to_numpy())]
        others = f" (and {len(counts) - 1} more column(s): {_listed(list(counts)[1:])})" if len(counts) > 1 else ""
        raise TableError(f"{path}: column {column} has {n} missing value(s), row(s) {_listed(rows, 5)}{others}"
                         f"{_gap_words(frame, path, column)}; set data.missing=drop to leave such rows out, or "
                         "data.missing=mean to fill them")
    return frame.dropna(subset=list(counts)) if how is Missing.drop else frame


def _as_written(frame, path: Path, name: str, missing_words: bool = True):
    """Column `name` of a text table as its file writes it, stripped, where pandas' reading
    changes it (007 reads as 7; whole numbers with a gap read as floats, 7.0), or None for other
    files. A gap is None; with missing_words=False the words pandas reads as gaps (NA, null,
    nan, ...) are kept as written."""
    import pandas as pd

    separator, rows = frame.attrs.get("separator"), frame.attrs.get("rows")
    if separator is None or name not in frame.columns:
        return None
    # The header read as the first read reads it (blank lines before it, rows shorter than it).
    column = pd.read_csv(path, sep=separator, skipinitialspace=True, dtype=str, keep_default_na=missing_words,
                         usecols=[list(frame.columns).index(name)]).iloc[:, 0]
    if len(column) != rows:
        return None  # not the rows the frame has: nothing read as written
    return column.str.strip().reindex(frame.index)


def categories_as_written(frame, path: Path, names: list[str]):
    """The frame with the columns `names` (data.categorical) as text, each value a category as
    the file writes it: 02139, not the number 2139; 7, not the 7.0 pandas reads where a gap
    makes the column floats."""
    if not names:
        return frame
    frame = frame.copy()
    for name in (n for n in names if n in frame.columns):  # a lacking one: apply_encoding names it
        written = _as_written(frame, path, name)
        if written is None:  # Parquet, .npz: the values it holds, whole numbers without a point
            written = frame[name].map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer()
                                      else str(v).strip(), na_action="ignore")
        frame[name] = written.astype(object)
    return frame


def _codes_note(frame, path: Path, names: list[str]) -> list[str]:
    """A note on the number input columns `names` that the file writes with leading zeros
    (02139): codes, read as numbers (2139) whose sizes the model would take to mean something."""
    found = {name: codes for name, codes in frame.attrs.get("codes", {}).items() if name in names}
    if not found:
        return []
    (name, codes), *others = found.items()
    columns = f"column {name} is" if not others else f"columns {_listed(list(found))} are"
    return [f"{path}: {columns} written with leading zeros ({_listed(list(codes), 3)}): codes? Read as numbers "
            f"({int(codes[0])}) their sizes are what the model learns from; "
            f"{_column_option('data.categorical', name) if not others else 'data.categorical=[...]'} reads each as a "
            "category"]


def _target_as_written(frame, path: Path, target: str, task: Optional[str], as_text: bool = False):
    """The frame with its target's labels as the file writes them where they are codes with
    leading zeros (007, 042: classes named so, not 7 and 42; not for data.task=regression) or
    `as_text` (a test file of such labels), and whether its numbers were written as whole
    numbers: one blank label makes pandas read 0..29 as floats, which, with more than one value
    per ten rows, looked like a number to predict."""
    import pandas as pd

    column = frame[target]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return frame, False
    present = column.dropna().to_numpy(dtype=float)
    if not as_text and np.any(np.mod(present[np.isfinite(present)], 1) != 0):
        return frame, False  # fractions: neither codes nor whole numbers, and no second read of the file
    written = _as_written(frame, path, target)
    if written is None:
        return frame, False
    present = written.dropna()
    whole = bool(len(present)) and bool(present.str.fullmatch(r"[+-]?\d+").all())
    codes = task is None or Task(task) is not Task.regression
    if as_text or (whole and codes and present.str.fullmatch(r"[+-]?0\d+").any()):
        frame = frame.copy()
        frame[target] = written
    return frame, whole


def _gap_words(frame, path: Path, column: str) -> str:
    """Where a text table's gaps in `column` are words pandas reads as missing (NA, null, None,
    nan, n/a): which, since a value such as NA (North America) would be lost."""
    written = _as_written(frame, path, column, missing_words=False)
    if written is None:
        return ""
    words = list(dict.fromkeys(w for w in written[frame[column].isna()].tolist() if w))
    if not words:
        return ""
    return (f" (written {_listed([repr(w) for w in words], 3)}, which pandas reads as missing; where that is a "
            "value, write it otherwise in the file)")


def _file_row(frame, position: int) -> int:
    """The 1-based row of the file (its header aside) of the frame's row at `position`: the
    frame's index, which reading numbers 0, 1, ... and dropping or splitting rows keeps."""
    label = frame.index[position]
    return int(label) + 1 if isinstance(label, (int, np.integer)) else int(position) + 1


def _class_order(values: list) -> list:
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def stratified_counts(sizes, fraction: float) -> np.ndarray:
    """How many rows of each class (of these sizes) to hold out, so that the whole holds out
    `fraction` of the rows, rounded: each class its share rounded down, the rows left over one
    each to the classes with the largest remainders (the larger class first on a tie), as
    scikit-learn's stratified split allocates them (which rounds the total up, ties at random).
    A class of one row keeps it for training, and every class keeps one. Rounding each class
    alone held out 1 row of every class of 4 at 0.2: 25% of the rows."""
    sizes = np.asarray(sizes, dtype=np.int64)
    eligible = sizes > 1
    exact = fraction * sizes * eligible
    counts = np.minimum(np.floor(exact).astype(np.int64), np.maximum(sizes - 1, 0))
    total = min(int(round(fraction * sizes[eligible].sum())), int((sizes[eligible] - 1).sum()))
    room = [c for c in np.flatnonzero(eligible & (counts < sizes - 1))]
    room.sort(key=lambda c: (-(exact[c] - counts[c]), -sizes[c], c))
    for c in room[:max(0, total - int(counts.sum()))]:
        counts[c] += 1
    return counts


def _stratified_test_rows(labels: np.ndarray, fraction: float) -> np.ndarray:
    """data.test_split of the rows, each class's share (stratified_counts), the same for every seed."""
    rng = np.random.default_rng(TEST_SPLIT_SEED)
    classes = np.unique(labels)
    shuffled = [rng.permutation(np.flatnonzero(labels == label)) for label in classes]
    counts = stratified_counts([len(rows) for rows in shuffled], fraction)
    return np.sort(np.concatenate([rows[:n] for rows, n in zip(shuffled, counts)]))


def encode(data_cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """x_train, y_train, x_test, y_test and the encoding of data.path (and data.test_path)."""
    import pandas as pd

    path = file_path(data_cfg.path, data_cfg.root)
    how, short_notes = Missing(data_cfg.missing), []
    frame = short_rows(read_table(path, "data.path"), f"data.path={path}", how, short_notes)
    npz = table_format(path) == ".npz"
    text_file = table_format(path) in TEXT_FORMATS  # a header row: perhaps a row of data
    target = "y" if npz else str(data_cfg.target)
    if target not in frame.columns:
        separator = _separator_hint(frame, path)  # then no "did you mean" the whole header
        raise TableError(f"data.target={target}: {path} has no such column"
                         f"{'' if separator else _column_hint(target, frame, 'data.target')}; its "
                         f"columns: {_listed(list(frame.columns), 40)}{separator}"
                         + (f" ({NO_HEADER})" if text_file and _header_looks_like_data(frame) else ""))
    frame, written_whole = _target_as_written(frame, path, target, data_cfg.task)
    split = str(data_cfg.split_column) if data_cfg.split_column else None
    if split is not None and (split not in frame.columns or split == target):
        raise TableError(f"data.split_column={split}: " + (f"{path} has no such column; its columns: "
                                                            f"{_listed(list(frame.columns), 40)}" if split != target
                                                            else "is the target column"))
    nameless = frame.attrs.get("nameless", {})
    dropped = _named_columns([str(c) for c in data_cfg.get("drop") or []], "data.drop", frame, path, target,
                             "the labels to learn, never an input")
    features = ([str(f) for f in data_cfg.features] if data_cfg.features
                else [c for c in frame.columns if c not in (target, split, *nameless, *dropped)])
    notes = short_notes + [f"{path}: column {place} has " + (
        "no name and no value (a separator at each line's end?); left out" if empty else
        "no name in the header (row numbers that pandas' to_csv wrote?); left out: name it, or give "
        f"data.features=[...,'{c}'], to use it") for c, (place, empty) in nameless.items() if c not in features]
    if npz and data_cfg.target:
        notes.append(f"data.target={data_cfg.target}: not read: {path}'s labels are its array y")
    if text_file and _header_looks_like_data(frame):
        notes.append(f"{path}: the header ({_listed(list(frame.columns), 5)}) reads as names; {NO_HEADER}")
    _named_columns(features, "data.features", frame, path, target, "a model may not read its own label")
    if split is not None and split in features:
        raise TableError(f"data.features: lists the split column {split}; which rows are tested is no input")
    if not features:
        raise TableError(f"{path}: no feature column besides the target {target}")
    categorical = _named_columns([str(c) for c in data_cfg.get("categorical") or []], "data.categorical", frame, path,
                                 target, "its values are the classes already")
    not_read = next((c for c in categorical if c not in features), None)
    if not_read is not None:
        why = ("data.drop leaves it out" if not_read in dropped else "data.features does not list it"
               if data_cfg.features else "it marks the test rows" if not_read == split else "it has no name")
        raise TableError(f"data.categorical: lists {not_read}, which is no input ({why})")
    kinds = {name: "text" if name in categorical else _column_kind(frame[name], name, path)  # (row numbers: the file's)
             for name in features}
    notes += _codes_note(frame, path, [name for name in features if kinds[name] == "number"])
    frame = categories_as_written(frame, path, categorical)  # while its rows are the file's
    empty = [name for name in features if frame[name].isna().all()]
    if empty:  # before data.missing: dropping its rows would leave none, filling it no mean
        others = f" (and {_listed(empty[1:])})" if len(empty) > 1 else ""
        raise TableError(f"{path}: column {empty[0]}{others} has no value in any row; leave it out with "
                         f"{_column_option('data.drop', empty[0])}")
    test_frame, test_path, test_where = None, path, f"{path}"
    if data_cfg.test_path:
        test_path = file_path(data_cfg.test_path, data_cfg.root)
        test_where = f"data.test_path={test_path}"
        test_frame = short_rows(read_table(test_path, "data.test_path"), test_where, how, notes)
        lacking = [c for c in [*features, target] if c not in test_frame.columns]
        if lacking:
            raise TableError(f"{test_where}: lacks the column(s) {_listed(lacking)} of data.path")
        test_frame = categories_as_written(test_frame, test_path, categorical)
        if not pd.api.types.is_numeric_dtype(frame[target]):  # labels as written (007): the test file's too
            test_frame, _ = _target_as_written(test_frame, test_path, target, data_cfg.task, as_text=True)
    elif split is not None:
        tested = (frame[split].astype("string").str.strip().str.lower() == "test").fillna(False).astype(bool)
        if not tested.any() or tested.all():
            raise TableError(f"data.split_column={split}: {path} has {int(tested.sum())} row(s) marked test of "
                             f"{len(frame)}; mark the test rows 'test' and leave others (train, val, ...) for training")
        test_frame, frame = frame[tested], frame[~tested]
        test_where = f"data.split_column={split}: the test rows of {path}"
    used = [*features, target]
    # A row without a label cannot be filled in: with data.missing=mean it is left out too. Said
    # as a note (every run's, the array cache's too), the test rows' as well: test_acc is
    # measured on the rows left.
    frame = _usable_rows(frame, used, target, path, how, path, notes)
    if test_frame is not None:
        test_frame = _usable_rows(test_frame, used, target, test_path, how, test_where, notes)
    if len(frame) < 2:
        raise TableError(f"{path}: {len(frame)} usable row(s); need at least 2")

    task, inferred = _task(data_cfg, frame[target], target, path, written_whole)
    if task is Task.regression:
        y_all, names = _values_to_predict(frame, target, f"data.target={target}: {path}"), None
        if np.ptp(y_all) == 0:  # r2 would be 0 whatever the model: nothing measured
            raise TableError(f"data.target={target}: {path} has one value only ({y_all[0]:g}) in every row; a "
                             "regression needs values that vary")
    else:
        y_all, names, index = _class_labels(frame[target], target, path, len(frame))
        notes += _case_note(names, target, path)

    if test_frame is None:
        test_rows = (_stratified_test_rows(y_all, float(data_cfg.test_split)) if names is not None
                     else _random_test_rows(len(frame), float(data_cfg.test_split)))
        keep = np.setdiff1d(np.arange(len(frame)), test_rows)
        train_frame, test_frame = frame.iloc[keep], frame.iloc[test_rows]
        y_train, test_labels = y_all[keep], y_all[test_rows]
    else:
        train_frame, y_train = frame, y_all
        test_values = test_frame[target]
        if names is None:
            test_labels = _values_to_predict(test_frame, target, f"{test_where}: column {target}")
        else:
            if (pd.api.types.is_numeric_dtype(test_values) and all(isinstance(n, int) for n in names)
                    and np.all(np.mod(test_values.to_numpy(dtype=float), 1) == 0)):  # 1.5 stays 1.5: no class
                test_values = test_values.astype("int64")
            unseen = sorted({v for v in test_values.tolist() if v not in index}, key=str)
            if unseen:
                raise TableError(f"{test_where}: class(es) {_listed(unseen)} are not in the training "
                                 f"rows ({_listed(names)})")
            test_labels = np.array([index[v] for v in test_values.tolist()], dtype=np.int64)
    if not len(test_labels):
        raise TableError(f"{path}: {len(frame)} rows leave no test row at data.test_split={data_cfg.test_split}")

    encoding = fit_encoding(train_frame, features, kinds, how, str(path))
    if how is Missing.mean:
        # Each file's gaps named by it (rows split off one file: that file's).
        notes += (filled_note(encoding["fill"], [train_frame, test_frame], path) if not data_cfg.test_path else
                  filled_note(encoding["fill"], [train_frame], path)
                  + filled_note(encoding["fill"], [test_frame], test_where))
    encoding.update(file=str(path), target=target, task=task.value)
    if categorical:  # new rows' codes read as written too (predict)
        encoding["categorical"] = categorical
    encoding["notes"] = [*notes, *encoding["notes"],  # said by every run, the array cache's too (data.load_table)
                         *(f"{test_where}, the test rows: {line}" for line in unseen_categories(test_frame, encoding))]
    if npz:  # its columns are positions: new rows must have as many (predict)
        encoding["x_width"] = sum(1 for c in frame.columns if c != "y")
    if inferred:  # said by every run that reads the file, the array cache's too (data.load_table)
        encoding["task_inferred"] = inferred
    if names is None:
        # The target standardised on the training rows, as the features are: one scale of loss
        # whatever its unit; val_rmse and predictions are in the file's own unit.
        mean, std = float(y_train.mean()), float(y_train.std())
        encoding["target_scale"] = [mean, std if std > 0 else 1.0]
        y_train, test_labels = (scale_target(y, encoding) for y in (y_train, test_labels))
    else:
        encoding["classes"] = [str(n) for n in names]
    x_train = apply_encoding(train_frame, encoding, str(path))
    x_test = apply_encoding(test_frame, encoding, str(test_path))
    # Equal inputs are expected where every input takes few values (binary flags, small counts);
    # where one is a measurement of many values, they are copies of a row.
    measured = any(name in encoding["numbers"] and train_frame[name].nunique() > MAX_INFERRED_CLASSES
                   for name in features)
    encoding["notes"] += _copies_note(x_train, x_test, str(path)) if measured else []
    return x_train, y_train, x_test, test_labels, encoding


def filled_note(fill: dict[str, Any], frames: list, path: Path | str) -> list[str]:
    """data.missing=mean's fills said: each column's gaps and what fills them (a text column's
    most common category, which may be no value a gap stood for); for new rows too (predict)."""
    filled = []
    for name, value in fill.items():
        gaps = sum(int(f[name].isna().sum()) for f in frames)
        if gaps:
            shown = repr(value) + " (its most common text)" if isinstance(value, str) else f"its mean {value:.4g}"
            filled.append(f"column {name}: {gaps} with {shown}")
    return [f"{path}: data.missing=mean filled " + "; ".join(filled)] if filled else []


def _copies_note(x_train: np.ndarray, x_test: np.ndarray, where: str) -> list[str]:
    """A note where rows repeat: a test row whose inputs a training row has too is no held-out
    row (random labels, each row written three times: test_acc 0.87 in one run, not 0.5), and
    copies among the training rows fall on both sides of the validation split alike. Rows are
    compared by their hashes: no copy of the arrays."""
    seen = {hash(row.tobytes()) for row in x_train}
    test_copies = sum(hash(row.tobytes()) in seen for row in x_test)
    train_copies = len(x_train) - len(seen)
    if test_copies <= 0.01 * len(x_test) and train_copies <= 0.01 * len(x_train):
        return []
    return [f"{where}: {test_copies} of {len(x_test)} test rows have the same inputs as a training row, and "
            f"{train_copies} of {len(x_train)} training rows as another: copies on both sides of a split make "
            "val and test scores optimistic. Keep one row of each (pandas: drop_duplicates(subset=the input "
            "columns)), or keep each row's copies on one side of the test split (data.split_column, or a "
            "data.test_path file without them)"]


def _named_columns(names: list[str], key: str, frame, path: Path, target: str, why_not_target: str) -> list[str]:
    """The columns `key` (data.features, data.drop) names, or TableError for one the file lacks
    (with the closest names) or for the target among them."""
    unknown = [c for c in names if c not in frame.columns]
    if unknown:
        raise TableError(f"{key}: {path} has no column {_listed(unknown)}{_column_hint(unknown[0], frame, key)}; "
                         f"its columns: {_listed(list(frame.columns), 40)}")
    if target in names:
        raise TableError(f"{key}: lists the target column {target}; {why_not_target}")
    return names


def is_regression(encoding: Optional[dict[str, Any]]) -> bool:
    """The encoding is a regression's: its target is a number (standardised), not classes."""
    return bool(encoding) and encoding.get("task") == "regression"


def scale_target(y: np.ndarray, encoding: dict[str, Any]) -> np.ndarray:
    mean, std = encoding["target_scale"]
    return ((np.asarray(y, dtype=float) - mean) / std).astype(np.float32)


def unscale_target(y: np.ndarray, encoding: dict[str, Any]) -> np.ndarray:
    mean, std = encoding["target_scale"]
    return np.asarray(y, dtype=float) * std + mean


def task_of(data_cfg) -> Task:
    """What a run on this data predicts, without encoding it: a table's target read and judged
    as encode() does (a search checks its objective against it before any trial)."""
    from mlpbench.schema import Source

    if Source(data_cfg.source) is not Source.table:
        return Task.classification
    if data_cfg.task is not None:
        return Task(data_cfg.task)
    path = file_path(data_cfg.path, data_cfg.root)
    frame = read_table(path, "data.path")
    target = "y" if table_format(path) == ".npz" else str(data_cfg.target)
    if target not in frame.columns:
        return Task.classification  # the run names the missing column
    frame, written_whole = _target_as_written(frame, path, target, data_cfg.task)
    return _task(data_cfg, frame[target].dropna(), target, path, written_whole)[0]


def _task(data_cfg, labels, target: str, path: Path, written_whole: bool = False) -> tuple[Task, Optional[str]]:
    """data.task, or what the target looks like: a float column of many values is a number to
    predict (with why, for the log), anything else classes. `written_whole`: the file writes
    its numbers without fractions (read as floats for a gap among them)."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if data_cfg.task is not None:
        task = Task(data_cfg.task)
        if task is Task.regression and not numeric and _as_numbers(labels).isna().any():
            raise TableError(f"data.target={target}: {path} holds text ({labels.dropna().iloc[0]!r}), not numbers to "
                             "predict (data.task=regression); data.task=classification takes text labels")
        return task, None
    values = labels.nunique()
    if not numeric:
        return Task.classification, None
    numbers = labels.dropna().to_numpy(dtype=float)
    fractions = bool(np.any(np.mod(numbers[np.isfinite(numbers)], 1) != 0))  # (inf: _values_to_predict's)
    if values <= MAX_INFERRED_CLASSES:  # a rating of 1.0, 1.5, ... 5.0: classes, said where it has fractions
        return Task.classification, (f"{path}'s column {target} holds {values} different numbers with fractions, "
                                     "read as classes" if fractions else None)
    # Whole numbers in a float column (151.0) are values to predict where they are too many to be
    # classes (more than one per ten rows); fewer are labels stored as floats (an .npz's y).
    if fractions or (pd.api.types.is_float_dtype(labels) and not written_whole and values * 10 > len(numbers)):
        return Task.regression, (f"{path}'s column {target} holds {values} different numbers"
                                 + (" with fractions" if fractions else f" in {len(numbers)} rows"))
    return Task.classification, f"{path}'s column {target} holds {values} different whole numbers, read as classes"


def _class_labels(labels, target: str, path: Path, rows: int) -> tuple[np.ndarray, list, dict]:
    """Each row's class index, the class names in order, and the index of each name."""
    import pandas as pd

    numeric_labels = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if numeric_labels and np.all(np.mod(labels.to_numpy(dtype=float), 1) == 0):
        labels = labels.astype("int64")  # 1.0 and 1 are one class
    names = _class_order(list(dict.fromkeys(labels.tolist())))
    if len(names) < 2:
        raise TableError(f"data.target={target}: {path} has one class only ({names[0]!r}); a classifier needs two "
                         "or more")
    if len(names) * MIN_ROWS_PER_CLASS > rows:
        guess = ("too few rows to train, validate and test a classifier on" if rows < MIN_ROWS_PER_CLASS * 5
                 else "an identifier, or a number to predict (then set data.task=regression)?")
        raise TableError(f"data.target={target}: {path} has {len(names)} classes in {rows} rows (fewer than "
                         f"{MIN_ROWS_PER_CLASS} rows a class): {guess}")
    index = {value: i for i, value in enumerate(names)}
    return np.array([index[v] for v in labels.tolist()], dtype=np.int64), names, index


def _case_note(names: list, target: str, path: Path) -> list[str]:
    """A note where classes differ only in case (yes, Yes, YES), or in leading zeros (7, 07: codes
    kept as written): a class each, as written, where one may be meant."""
    notes = []
    for how, key in (("case", lambda n: n.lower()),  # (casefold would join ß and ss)
                     ("leading zeros", lambda n: n.lstrip("0") or "0" if n.isdecimal() else n)):
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(key(str(name)), []).append(str(name))
        alike = [group for group in groups.values() if len(group) > 1]
        if alike:
            notes.append(f"{path}: column {target}'s classes {'; '.join(', '.join(g) for g in alike)} differ only in "
                         f"{how}: {len(names)} classes, {len(groups)} if those are one each. Write each class one way "
                         "to make them one")
    return notes


def _values_to_predict(frame, target: str, where: str) -> np.ndarray:
    """A regression's target column as float64, or TableError naming a row that is no finite number."""
    values = _as_numbers(frame[target]).to_numpy(dtype=float)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        value = frame[target].iloc[row]
        shown = repr(value) if isinstance(value, str) else str(value)  # inf, not np.float64(inf)
        raise TableError(f"{where} row {_file_row(frame, row)} holds {shown}, not a number to "
                         "predict (data.task=regression)")
    return values


def _random_test_rows(rows: int, fraction: float) -> np.ndarray:
    """data.test_split of the rows of a regression's table, the same for every seed."""
    n = min(int(round(fraction * rows)), rows - 1)
    return np.sort(np.random.default_rng(TEST_SPLIT_SEED).permutation(rows)[:n])


def _refuse_infinite(frame, name: str, values, where: str, training: bool = True, standardized=None) -> None:
    """A TableError naming the rows where number column `name` (its `values`) is infinite, or
    with `standardized` (the values as the model reads them) beyond float32's range there: an
    input the model cannot read (every loss nan: the run "diverged", for no setting's fault; a
    prediction nan). A large value itself is no fault: it is standardized in float64."""
    if standardized is None:
        bad, what = np.isinf(values.to_numpy(dtype=float)), "infinite value(s)"
    else:
        bad = ~(np.abs(standardized.to_numpy(dtype=float)) <= np.finfo(np.float32).max) & values.notna().to_numpy()
        what = "value(s) so far from the training rows' mean that, standardized, they pass float32's ±3.4e38"
    if bad.any():
        rows = [_file_row(frame, i) for i in np.flatnonzero(bad)]
        fix = (f", or leave the column out with {_column_option('data.drop', name)}" if training
               else " (the model reads this column)")
        raise TableError(f"{where}: column {name} holds {int(bad.sum())} {what} "
                         f"({frame[name].iloc[int(np.flatnonzero(bad)[0])]}), row(s) {_listed(rows, 5)}; replace "
                         f"them{fix}")


def _counts_rows(values) -> bool:
    """A number column that numbers the rows (1, 2, 3, ... or an identifier rising with them):
    whole, each value once, in increasing or decreasing order, over more rows than a class count."""
    present = values.dropna()
    return (len(present) == len(values) > MAX_INFERRED_CLASSES and bool(np.all(np.mod(present, 1) == 0))
            and present.is_unique and (present.is_monotonic_increasing or present.is_monotonic_decreasing))


def fit_encoding(train, features: list[str], kinds: dict[str, str], how: Missing, where: str) -> dict[str, Any]:
    """How each feature column becomes model inputs, fitted on the training rows: a number
    column's mean and standard deviation, a text column's categories (and, with
    data.missing=mean, what fills a gap)."""
    numbers: dict[str, list[float]] = {}
    categories: dict[str, list[str]] = {}
    notes: list[str] = []
    fill: dict[str, Any] = {}
    columns: list[str] = []
    for name in features:
        if train[name].isna().all():
            raise TableError(f"{where}: column {name} has no value in the training rows; leave it out with "
                             f"{_column_option('data.drop', name)}")
        if kinds[name] == "number":
            values = _as_numbers(train[name]).astype(float)
            _refuse_infinite(train, name, values, where)
            with np.errstate(over="ignore", invalid="ignore"):  # said below, not as numpy's warning
                mean, std = float(values.mean()), float(values.std(ddof=0))
                if math.isfinite(mean) and not math.isfinite(std):  # squares past 1.3e154 overflow float64:
                    # in units of a power of 2 (exact), 2^(e-1) <= the largest (2^1024 is no float)
                    scale = math.ldexp(1.0, math.frexp(float(values.abs().max()))[1] - 1)
                    std = float((values / scale).std(ddof=0)) * scale
            if not (math.isfinite(mean) and math.isfinite(std)):  # values near float64's ±1.8e308
                raise TableError(f"{where}: column {name}'s values are too large to standardize (mean {mean}, standard "
                                 f"deviation {std}); rescale them (a log, another unit), or leave the column out with "
                                 f"{_column_option('data.drop', name)}")
            numbers[name] = [mean, std if std > 0 else 1.0]  # a constant column: centred only
            if _counts_rows(values):
                notes.append(f"{where}: column {name} holds a different whole number on every row, in the rows' "
                             f"order ({values.iloc[0]:.0f}, {values.iloc[1]:.0f}, ... {values.iloc[-1]:.0f}): a row "
                             "number or an identifier? As an input it tells the model where a row was in the file, "
                             "which in a file sorted by its label is the label; leave it out with "
                             f"{_column_option('data.drop', name)}")
            fill[name] = numbers[name][0]
            columns.append(name)
        else:
            text = train[name].astype("string")
            mode = text.mode()
            fill[name] = str(mode.iloc[0]) if len(mode) else ""
            categories[name] = sorted(text.dropna().unique().tolist())
            if len(categories[name]) > MAX_CATEGORIES and len(categories[name]) > len(text) / 2:
                raise TableError(f"{where}: column {name} has {len(categories[name])} different texts in {len(text)} training "
                                 "rows: an identifier or free text, not a category; leave it out with "
                                 f"{_column_option('data.drop', name)}")
            if len(categories[name]) > MAX_INFERRED_CLASSES and len(categories[name]) > len(text) / 2:
                notes.append(f"{where}: column {name} has {len(categories[name])} different texts in {len(text)} "
                             "training rows, one input each: an identifier or a date, which a new row never "
                             f"matches? Leave it out with {_column_option('data.drop', name)}")
            columns += [f"{name}={value}" for value in categories[name]]
    return {"features": list(features), "numbers": numbers, "categories": categories, "columns": columns,
            "missing": how.value, "fill": fill if how is Missing.mean else {}, "notes": notes}


def apply_encoding(frame, encoding: dict[str, Any], where: str, training: bool = True) -> np.ndarray:
    """Rows of `frame` as the model's float32 inputs, by a fitted encoding: the columns it
    names (others ignored); a category it has not seen is all zeros. A gap is filled where the
    encoding says how (data.missing=mean), else refused with the column and rows named.
    `training`: rows of a run's data (not new rows to predict), whose columns it may leave out."""
    lacking = [c for c in encoding["features"] if c not in frame.columns]
    if lacking:
        raise TableError(f"{where}: lacks the column(s) {_listed(lacking)} the model reads; it has "
                         f"{_listed(list(frame.columns), 40)}{_separator_hint(frame, Path(where))}"
                         + (f" ({NO_HEADER})" if frame.attrs.get("separator") and _header_looks_like_data(frame)
                            else ""))
    parts = []
    for name in encoding["features"]:
        column = frame[name]
        gaps = column.isna()
        if gaps.any() and name not in encoding["fill"]:
            rows = [_file_row(frame, i) for i in np.flatnonzero(gaps.to_numpy())]
            # Reached by new rows (predict): the training rows' gaps were refused or dropped before.
            raise TableError(f"{where}: column {name} has {int(gaps.sum())} missing value(s), row(s) {_listed(rows, 5)}; "
                             "fill them or leave those rows out (a run trained with data.missing=mean fills them "
                             "with its training rows' means)")
        if name in encoding["numbers"]:
            values = _as_numbers(column).astype(float)
            bad = values.isna() & ~gaps
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise TableError(f"{where}: column {name} holds text ({column.iloc[row]!r}, row "
                                 f"{_file_row(frame, row)}) where the "
                                 "training rows had numbers")
            _refuse_infinite(frame, name, values, where, training)
            mean, std = encoding["numbers"][name]
            standardized = (values.fillna(mean) - mean) / std  # float64: a value of 1e44 is no fault
            _refuse_infinite(frame, name, values, where, training, standardized)
            parts.append(standardized.to_numpy()[:, None])
        else:
            text = column.astype("string").fillna(encoding["fill"].get(name, "")).to_numpy()
            seen = np.array(encoding["categories"][name], dtype=object)
            parts.append((text[:, None] == seen[None, :]).astype(float))
    return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(frame), 0), np.float32)


def unseen_categories(frame, encoding: dict[str, Any]) -> list[str]:
    """Per text column, a line on the rows of `frame` holding a category the training rows lacked
    (read as none of its categories: all zeros): their number and the first of those values."""
    found = []
    for name, seen in encoding["categories"].items():
        text = frame[name].astype("string")
        unseen = text.notna() & ~text.isin(seen)
        if unseen.any():
            values = list(dict.fromkeys(text[unseen].tolist()))
            found.append(f"column {name}: {int(unseen.sum())} row(s) hold a category the training rows lacked "
                         f"({_listed(values)}); the model reads it as none of its categories")
    return found


def decode(x: np.ndarray, encoding: dict[str, Any]) -> list[dict[str, Any]]:
    """apply_encoding's inverse, for reading rows back: each row of model inputs as the file's
    columns and values (a number to 6 significant digits, whole numbers as ints; a category
    the training rows lacked, all zeros, as None)."""
    rows: list[dict[str, Any]] = [{} for _ in range(len(x))]
    column = 0
    for name in encoding["features"]:
        if name in encoding["numbers"]:
            mean, std = encoding["numbers"][name]
            for row, value in zip(rows, x[:, column].astype(float) * std + mean):
                value = float(f"{value:.6g}")
                row[name] = int(value) if value.is_integer() else value
            column += 1
        else:
            seen = encoding["categories"][name]
            for row, hot in zip(rows, x[:, column:column + len(seen)]):
                row[name] = seen[int(hot.argmax())] if hot.max() > 0 else None
            column += len(seen)
    return rows
