"""Files in and out: atomic writes, the one table reader, and text tables for the terminal.

Every file launcher writes goes through `atomic_write`: a temporary sibling, flushed, renamed
into place, with the permissions the user's umask gives any new file. A reader never sees half
a file, and an interrupted write leaves nothing behind.

Every table launcher reads (training data, prediction input) goes through `read_table`, so
train and predict read a file the same way.
"""
from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from launcher.core.errors import ArtifactError, DataError

CHECKSUMS = "checksums.json"


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto it when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes it private; a result file is not
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp_path) and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path | str, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def write_csv(path: Path | str, frame: Any) -> Path:
    """A pandas DataFrame as CSV, atomically."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def sha256(path: Path | str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_verified(path: Path | str, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically and record its sha256 in the folder's checksums.json, which
    `verify` checks. The record keeps the previous digest too: a crash between the two renames
    leaves the old file with a digest that still verifies."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
        sums = _checksums(path.parent)
        sums[path.name] = [sha256(tmp), *sums.get(path.name, [])[:1]]
        write_json(path.parent / CHECKSUMS, sums)
    return path


def verify(path: Path | str, what: str) -> None:
    """Refuse a file written by write_verified that was modified, truncated or never finished."""
    path = Path(path)
    sums = _checksums(path.parent).get(path.name)
    if not sums:
        raise ArtifactError(f"{what} {path} has no checksum record ({CHECKSUMS}): it was not written by launcher, "
                            "or not completely")
    if sha256(path) not in sums:
        raise ArtifactError(f"{what} {path} does not match its checksum: it was modified or corrupted")


def _checksums(folder: Path) -> dict[str, list[str]]:
    try:
        data = json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# -- reading tables ---------------------------------------------------------------------------
SEPARATORS = (",", ";", "\t", "|")
SEP_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
PARQUET = (".parquet", ".pq")
SAMPLE_BYTES = 1 << 16


@dataclass
class TableFormat:
    """How a table file was read: what `read_table` detected, or what the caller forced."""

    kind: str = "csv"  # csv | parquet
    sep: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    compression: str | None = None

    def describe(self) -> str:
        if self.kind == "parquet":
            return "Parquet"
        parts = [f"{SEP_NAMES.get(self.sep, repr(self.sep))}-separated", self.encoding]
        if self.decimal != ".":
            parts.append(f"decimal {self.decimal!r}")
        if self.compression:
            parts.append(f"{self.compression}-compressed")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Table:
    frame: Any  # pandas.DataFrame
    format: TableFormat
    notes: list[str] = field(default_factory=list)  # what reading changed (renamed duplicate columns)


def read_table(path: Path | str, what: str = "data file", option: str = "the path", *,
               sep: str | None = None, encoding: str | None = None, decimal: str | None = None,
               options: str = "data.sep / data.encoding") -> Table:
    """A CSV (plain, .gz, .bz2, .xz or a one-file .zip) or Parquet file as a DataFrame, for
    training and prediction alike. The delimiter (, ; tab |), the encoding (UTF-8 with or without
    a BOM, then cp1252, then Latin-1) and, for ';'-separated files, a decimal comma are detected
    unless given. A file that is missing, a directory, unreadable, empty or unparsable raises
    DataError naming it and `option`, the setting that names the file (`options`: the settings
    that force the format)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; set {option} to a .csv file")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}; set {option} to an existing .csv file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path} is not readable (permission denied)")
    if path.suffix.lower() in PARQUET:
        return Table(_read_parquet(path, what), TableFormat(kind="parquet"))
    compression = _compression(path)
    sample = _sample(path, compression, what)
    if not sample.strip():
        raise DataError(f"{what} {path} is empty; it needs a header row and data rows")
    fmt = TableFormat(compression=compression)
    fmt.encoding = encoding or _encoding(sample)
    text = sample.decode(fmt.encoding, errors="replace")
    fmt.sep = _check_sep(sep) if sep else _detect_sep(text, path, what, options)
    fmt.decimal = decimal or _detect_decimal(text, fmt.sep)
    notes = _duplicate_names(text, fmt.sep)
    frame, detected = None, fmt.encoding
    for attempt in dict.fromkeys((fmt.encoding, "cp1252", "latin-1")):
        try:
            frame = pd.read_csv(path, sep=fmt.sep, encoding=attempt, decimal=fmt.decimal,
                                skipinitialspace=True, compression=compression or "infer")
            fmt.encoding = attempt
            if attempt != detected:
                notes.append(f"the file is not {detected} throughout: read as {attempt}")
            break
        except UnicodeDecodeError as exc:
            if encoding:  # forced: say so rather than guess
                raise DataError(f"{what} {path} is not {encoding} ({exc.reason} at byte {exc.start}); set "
                                f"the right encoding (e.g. encoding=cp1252)") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{what} {path} is empty; it needs a header row and data rows") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{what} {path} could not be parsed as {fmt.describe()} CSV: {str(exc).strip()}; "
                            f"check the delimiter and quoting ({options})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(frame, fmt, notes)


def _read_parquet(path: Path, what: str) -> Any:
    import pandas as pd

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(f"reading {what} {path} (Parquet) needs pyarrow: pip install 'launcher[parquet]'") from None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise DataError(f"{what} {path} could not be read as Parquet: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _compression(path: Path) -> str | None:
    return {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}.get(path.suffix.lower())


def _sample(path: Path, compression: str | None, what: str) -> bytes:
    """The first bytes of the (decompressed) file, cut at the last line break."""
    import bz2
    import gzip
    import lzma
    import zipfile

    try:
        if compression == "zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise DataError(f"{what} {path} holds {len(names)} files; a .zip must hold exactly one CSV")
                with archive.open(names[0]) as f:
                    data = f.read(SAMPLE_BYTES)
        else:
            opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "", open)
            with opener(path, "rb") as f:
                data = f.read(SAMPLE_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataError(f"{what} {path} could not be read as a {compression or 'plain'} file: {exc}") from None
    if len(data) == SAMPLE_BYTES and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]
    return data


def _encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    for encoding in ("utf-8", "cp1252"):
        try:
            sample.decode(encoding)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"  # every byte is a Latin-1 character


def _check_sep(sep: str) -> str:
    sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(sep, sep)
    if len(sep) != 1:
        raise DataError(f"sep={sep!r} is not one character; use one of: comma, semicolon, tab, pipe")
    return sep


def _field_counts(text: str, sep: str) -> list[int]:
    lines = [line for line in text.splitlines() if line.strip()][:50]
    return [len(row) for row in csv.reader(lines, delimiter=sep, skipinitialspace=True)]


def _detect_sep(text: str, path: Path, what: str, options: str) -> str:
    """The candidate that splits every sampled line into the same number (> 1) of fields; the
    most fields wins among consistent candidates."""
    found: dict[str, list[int]] = {sep: _field_counts(text, sep) for sep in SEPARATORS}
    consistent = [(counts[0], sep) for sep, counts in found.items()
                  if counts and counts[0] > 1 and sum(c == counts[0] for c in counts) >= 0.9 * len(counts)]
    if consistent:
        return max(consistent, key=lambda pair: pair[0])[1]
    seen = ", ".join(f"{SEP_NAMES[sep]}: {counts[0] if counts else 0} field(s) in the header"
                     + (f", {min(counts)}-{max(counts)} per line" if counts and min(counts) != max(counts) else "")
                     for sep, counts in found.items())
    raise DataError(f"could not tell how {what} {path} is delimited ({seen}); set the delimiter ({options}): "
                    "comma, semicolon, tab, pipe or the character itself")


_COMMA_DECIMAL = re.compile(r"^-?\d+,\d+$")
_POINT_DECIMAL = re.compile(r"^-?\d+\.\d+$")


def _detect_decimal(text: str, sep: str) -> str:
    """A decimal comma ("3,14") is the convention of ';'-separated files; count the evidence."""
    if sep == ",":
        return "."
    lines = [line for line in text.splitlines() if line.strip()][1:51]
    cells = [cell.strip() for row in csv.reader(lines, delimiter=sep) for cell in row]
    commas = sum(bool(_COMMA_DECIMAL.match(c)) for c in cells)
    points = sum(bool(_POINT_DECIMAL.match(c)) for c in cells)
    return "," if commas > points else "."


def _duplicate_names(text: str, sep: str) -> list[str]:
    header = next(csv.reader([text.splitlines()[0]], delimiter=sep, skipinitialspace=True), [])
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    return [f"duplicate column name {n!r} appears {names.count(n)} times: read as "
            + ", ".join(repr(n if i == 0 else f"{n}.{i}") for i in range(names.count(n)))
            for n in dupes]


def format_table(rows: Sequence[Sequence[Any]], underline: bool = True) -> str:
    """Left-aligned columns; the first row is the header."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if underline:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
