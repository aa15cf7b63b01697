"""Files in and out: atomic writes, the one table reader, and text tables for the terminal.

Every file launcher writes goes through `atomic_write`: a temporary sibling, flushed, renamed
into place, with the permissions the user's umask gives any new file. A reader never sees half
a file, and an interrupted write leaves nothing behind.

Every table launcher reads (training data, prediction input) goes through `read_table`, so
train and predict read a file the same way.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from launcher.core.errors import DataError


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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_table(path: Path | str, what: str = "data file", option: str = "the path") -> Any:
    """A CSV file as a pandas DataFrame, for training and prediction alike; a file that is
    missing, a directory, empty or unparsable raises DataError naming it and `option`, the
    setting that names the file."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; set {option} to a .csv file")
    if not path.is_file():
        raise DataError(f"{what} not found: {path}; set {option} to an existing .csv file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty; it needs a header row and data rows") from None
    except PermissionError:
        raise DataError(f"{what} {path} is not readable (permission denied)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} could not be parsed as CSV: {str(exc).strip()}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def format_table(rows: Sequence[Sequence[Any]], underline: bool = True) -> str:
    """Left-aligned columns; the first row is the header."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if underline:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
