"""Files in and out: atomic writes, the one table reader, and text tables for the terminal.

Every file launcher writes goes through `atomic_write` (a folder: `atomic_dir`): a temporary
sibling, flushed, renamed into place, with the permissions the user's umask gives any new file.
A reader never sees half a file, and an interrupted write leaves nothing behind. A process
killed mid-write cannot clean up after itself: its temporary sibling is named for its host and
process id, and the next write into the same folder removes the ones whose process is gone.

Every table launcher reads (training data, prediction input) goes through `read_table`, so
train and predict read a file the same way.
"""
from __future__ import annotations

import codecs
import csv
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from launcher.core.errors import ArtifactError, DataError

CHECKSUMS = "checksums.json"
log = logging.getLogger("launcher")


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- temporary siblings -----------------------------------------------------------------------
# .<name>.partial-<host>.<pid>.<random>: whose it is, so a later write can tell a dead
# process's leftover from a write in progress (the host keeps a shared filesystem safe: a pid
# means nothing on another machine).
PARTIAL = ".partial-"
_OWNER = re.compile(r"^\..+?" + re.escape(PARTIAL) + r"(?P<host>.+)\.(?P<pid>\d+)\.[^.]+$")


def _partial_prefix(path: Path) -> str:
    return f".{path.name}{PARTIAL}{socket.gethostname()}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill there terminates the process it names: never ask
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or not a pid): not ours to judge
    return True


def remove_stale_partials(folder: Path | str) -> list[Path]:
    """Remove the temporary siblings in `folder` left by processes of this host that are gone
    (killed mid-write); a write in progress, or one from another host, is left alone."""
    host, removed = socket.gethostname(), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        owner = _OWNER.match(entry.name) if PARTIAL in entry.name else None
        if owner is None or owner["host"] != host or int(owner["pid"]) == os.getpid() or _alive(int(owner["pid"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path`; renamed onto it when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_partial_prefix(path))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes it private; a result file is not
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """A temporary folder beside `path`; it replaces `path` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_partial_prefix(path)))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; a result folder is not
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
# Byte-order marks, longest first (UTF-32 LE's starts with UTF-16 LE's). The utf-16/utf-32
# codecs read the mark and drop it.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# charset-normalizer's answer is taken when its "chaos" (the share of text that reads like
# mojibake) is at most this percentage; above it, the usual spreadsheet code page is the guess.
CONFIDENT_CHAOS = 1.0
# What a thousands separator may be, for each decimal mark: the other mark, or a (no-break) space.
THOUSANDS = {".": (",", " ", "\u00a0", "\u202f"), ",": (".", " ", "\u00a0", "\u202f")}


@dataclass
class TableFormat:
    """How a table file was read: what `read_table` detected, or what the caller forced."""

    kind: str = "csv"  # csv | parquet
    sep: str = ","
    encoding: str = "utf-8"
    decimal: str = "."
    compression: str | None = None
    thousands: str | None = None  # the separator of the columns read as numbers with one

    def describe(self) -> str:
        if self.kind == "parquet":
            return "Parquet"
        parts = [f"delimiter {SEP_NAMES.get(self.sep, repr(self.sep))}", f"encoding {self.encoding}",
                 f"decimal {self.decimal!r}"]
        if self.thousands:
            parts.append(f"thousands {self.thousands!r}")
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
    # A column name the header repeats -> the names its columns were read under, in file order.
    duplicates: dict[str, list[str]] = field(default_factory=dict)


def read_table(path: Path | str, what: str = "data file", option: str = "the path", *,
               sep: str | None = None, encoding: str | None = None, decimal: str | None = None,
               options: str = "data.sep / data.encoding") -> Table:
    """A CSV (plain, .gz, .bz2, .xz or a one-file .zip) or Parquet file as a DataFrame, for
    training and prediction alike. Detected unless given: the delimiter (, ; tab |); the
    encoding (a byte-order mark: UTF-8, UTF-16, UTF-32; else UTF-8; else charset-normalizer's
    answer where it is confident; else cp1252, then Latin-1); a decimal comma in ';'-separated
    files. A text column whose every value is a number with thousands separators ("2.087,80",
    "1,234.5") is read as numbers. A file that is missing, a directory, unreadable, empty or
    unparsable raises DataError naming it and `option`, the setting that names the file
    (`options`: the settings that force the format). The log says what was detected."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; set {option} to a .csv file")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}; set {option} to an existing .csv file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path} is not readable (permission denied)")
    if path.suffix.lower() in PARQUET:
        frame = _read_parquet(path, what)
        frame.columns, duplicates = _column_names(frame.columns, None)
        table = Table(frame, TableFormat(kind="parquet"), _duplicate_notes(duplicates), duplicates)
        log.info("data: read %s (%s)", path.name, table.format.describe())
        return table
    compression = _compression(path)
    sample = _sample(path, compression, what)
    fmt = TableFormat(compression=compression)
    fmt.encoding = encoding or _encoding(sample)
    text = _decode_sample(sample, fmt.encoding)
    if not text.strip():
        raise DataError(f"{what} {path} is empty; it needs a header row and data rows")
    fmt.sep = _check_sep(sep) if sep else _detect_sep(text, path, what, options)
    fmt.decimal = decimal or _detect_decimal(text, fmt.sep)
    frame, notes, detected = None, [], fmt.encoding
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
            raise DataError(f"{what} {path} could not be parsed as CSV ({fmt.describe()}): {str(exc).strip()}; "
                            f"check the delimiter and quoting ({options})") from None
    frame.columns, duplicates = _column_names(frame.columns, _header(text, fmt.sep))
    notes = _duplicate_notes(duplicates) + notes
    fmt.thousands, converted = _read_thousands(frame, fmt.decimal)
    if converted:
        notes.append(f"read {len(converted)} column(s) of numbers written with thousands separator "
                     f"{fmt.thousands!r} and decimal {fmt.decimal!r} as numbers: "
                     + ", ".join(repr(c) for c in converted))
    log.info("data: read %s (%s)", path.name, fmt.describe())
    return Table(frame, fmt, notes, duplicates)


def _read_parquet(path: Path, what: str) -> Any:
    import pandas as pd

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError(f"reading {what} {path} (Parquet) needs pyarrow: pip install 'launcher[parquet]'") from None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise DataError(f"{what} {path} could not be read as Parquet: {exc}") from None


def _compression(path: Path) -> str | None:
    return {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}.get(path.suffix.lower())


def _sample(path: Path, compression: str | None, what: str) -> bytes:
    """The first bytes of the (decompressed) file."""
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
                    return f.read(SAMPLE_BYTES)
        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "", open)
        with opener(path, "rb") as f:
            return f.read(SAMPLE_BYTES)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataError(f"{what} {path} could not be read as a {compression or 'plain'} file: {exc}") from None


def _decode_sample(sample: bytes, encoding: str) -> str:
    """The sample as text, cut at its last line break when the file goes on (cut in the text,
    not the bytes: a UTF-16 line break is two bytes)."""
    try:
        text = sample.decode(encoding, errors="replace")
    except LookupError:
        raise DataError(f"encoding={encoding!r} is not an encoding Python knows; use e.g. utf-8, cp1252, "
                        "latin-1, utf-16") from None
    if len(sample) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def _encoding(sample: bytes) -> str:
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" not in sample:  # NUL bytes are valid UTF-8, but text files hold none: UTF-16/32 without a mark
        try:
            sample.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    return _guess_encoding(sample)


def _guess_encoding(sample: bytes) -> str:
    """Not UTF-8: charset-normalizer's answer when it is confident. cp1252, the spreadsheet
    default, when one of its plausible answers reads the text as cp1252 does (on a small
    sample it often names a neighbouring code page first) or none is plausible; Latin-1
    (every byte is a character) where cp1252 cannot decode."""
    fallback = "cp1252"
    try:
        usual = sample.decode(fallback)
    except UnicodeDecodeError:
        fallback, usual = "latin-1", None
    from charset_normalizer import from_bytes

    plausible = [match.encoding for match in from_bytes(sample) if match.percent_chaos <= CONFIDENT_CHAOS]
    if not plausible or any(_decodes_as(sample, name, usual) for name in plausible):
        return fallback
    return codecs.lookup(plausible[0]).name


def _decodes_as(sample: bytes, encoding: str, text: str | None) -> bool:
    try:
        return sample.decode(encoding) == text
    except UnicodeDecodeError:
        return False


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


def _number(decimal: str, thousands: str | None) -> re.Pattern[str]:
    """A number with this decimal mark; with `thousands`, only one that groups its digits by it
    ("2.087,80"; a first group never starts with 0: "0,123" is no grouping)."""
    fraction = rf"(?:{re.escape(decimal)}\d+)?"
    if thousands is None:
        return re.compile(rf"[-+]?\d+{fraction}")
    return re.compile(rf"[-+]?[1-9]\d{{0,2}}(?:{re.escape(thousands)}\d{{3}})+{fraction}")


def looks_like_number(value: Any) -> bool:
    """A number written with a decimal mark and thousands separators of either convention."""
    text = str(value).strip()
    return any(_number(decimal, sep).fullmatch(text) or _number(decimal, None).fullmatch(text)
               for decimal, seps in THOUSANDS.items() for sep in seps)


def _detect_decimal(text: str, sep: str) -> str:
    """A decimal comma ("3,14", "2.087,80") is the convention of ';'-separated files; count the
    evidence: numbers with a fraction after one mark (their digits maybe grouped by the other)."""
    if sep == ",":
        return "."
    lines = [line for line in text.splitlines() if line.strip()][1:51]
    cells = [cell.strip() for row in csv.reader(lines, delimiter=sep) for cell in row]
    counts: dict[str, int] = {}
    for mark, other in ((",", "."), (".", ",")):
        fraction = re.compile(rf"[-+]?(?:\d+|[1-9]\d{{0,2}}(?:{re.escape(other)}\d{{3}})+){re.escape(mark)}\d+")
        counts[mark] = sum(bool(fraction.fullmatch(c)) for c in cells)
    return "," if counts[","] > counts["."] else "."


def _read_thousands(frame: Any, decimal: str) -> tuple[str | None, list[str]]:
    """Text columns whose every value is a number, some of them grouped by a thousands
    separator of the file's convention, become numbers; (the separator, the columns)."""
    import pandas as pd

    plain, used, converted = _number(decimal, None), None, []
    for column in frame.columns:
        col = frame[column]
        if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)):
            continue
        values = col.dropna().astype(str).str.strip()
        for sep in THOUSANDS[decimal]:
            grouped_number = _number(decimal, sep)
            # the first values decide most columns (words, codes) without a pass over all rows
            if values.empty or not all(plain.fullmatch(v) or grouped_number.fullmatch(v) for v in values.iloc[:50]):
                continue
            grouped = values.str.fullmatch(grouped_number.pattern)
            if grouped.any() and (grouped | values.str.fullmatch(plain.pattern)).all():
                numbers = values.str.replace(sep, "", regex=False).str.replace(decimal, ".", regex=False)
                frame[column] = pd.to_numeric(numbers).reindex(col.index)
                used = used or sep
                converted.append(str(column))
                break
    return used, converted


def _header(text: str, sep: str) -> list[str]:
    return [h.strip() for h in next(csv.reader([text.splitlines()[0]], delimiter=sep, skipinitialspace=True), [])]


def _column_names(columns: Any, header: list[str] | None) -> tuple[list[str], dict[str, list[str]]]:
    """The columns' names stripped of surrounding spaces, a repeated one made unique as pandas
    does ('x', 'x.1'), and {repeated name: the names its columns got}. `header`, the file's own
    names, tells a repeat pandas renamed from a column really called 'x.1'."""
    read = [str(c).strip() for c in columns]
    original = header if header is not None and len(header) == len(read) else list(read)
    names: list[str] = []
    for i, name in enumerate(read):
        if name in names:  # equal only once stripped ('x ' and 'x'): pandas kept both
            n = 1
            while f"{name}.{n}" in names or f"{name}.{n}" in read[i + 1:]:
                n += 1
            name = f"{name}.{n}"
        names.append(name)
    duplicates: dict[str, list[str]] = {}
    for name in dict.fromkeys(original):
        positions = [i for i, o in enumerate(original) if o == name]
        if len(positions) > 1:
            duplicates[name] = [names[i] for i in positions]
    return names, duplicates


def _duplicate_notes(duplicates: dict[str, list[str]]) -> list[str]:
    return [f"duplicate column name {name!r} appears {len(read)} times: read as " + ", ".join(map(repr, read))
            for name, read in sorted(duplicates.items())]


def format_table(rows: Sequence[Sequence[Any]], underline: bool = True) -> str:
    """Left-aligned columns; the first row is the header."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if underline:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
