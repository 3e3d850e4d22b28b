"""Where the file-backed workloads find their data, and how a data file is read into memory.

Nothing is downloaded: the files must already lie in a local folder. That folder is, in order,
the ``folder`` argument of the workload function, ``$LANDSCAPE_DATA/<name>``, or
``~/.cache/landscape/data/<name>`` (``<name>`` is the workload name, e.g. ``mnist``). A missing
file is a :class:`~landscape.errors.ReadError` that says which file and where to put it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from landscape.errors import ReadError

ENV_VAR = "LANDSCAPE_DATA"


def data_root() -> Path:
    """``$LANDSCAPE_DATA`` if set, else ``~/.cache/landscape/data``."""
    root = os.environ.get(ENV_VAR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "landscape" / "data"


def data_folder(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The folder holding workload ``name``'s files: ``folder`` if given, else
    ``data_root() / name``."""
    return Path(folder).expanduser() if folder is not None else data_root() / name


def find_file(folder: Path, filename: str, *, workload: str, source: str,
              gzip_ok: bool = True) -> Path:
    """``folder/filename`` (or ``filename.gz`` when ``gzip_ok``), else a ReadError that names
    the file, the folder, and where the data comes from (``source``)."""
    candidates = [filename, filename + ".gz"] if gzip_ok else [filename]
    for candidate in candidates:
        path = folder / candidate
        if path.is_file():
            return path
    wanted = f"{filename}[.gz]" if gzip_ok else filename
    raise ReadError(
        f"workload `{workload}`: {wanted} not found in {folder}; put the {source} there "
        f"(or point ${ENV_VAR} at a folder holding {workload}/); nothing is downloaded"
    )


def read_bytes(path: Path) -> bytes:
    """The whole file, decompressed if its name ends in ``.gz``; a truncated or corrupt gzip
    stream is a one-line ReadError naming the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        with open(path, "rb") as handle:
            return handle.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ReadError(f"{path}: truncated or corrupt gzip data ({_one_line(exc)})") from exc
    except OSError as exc:
        raise ReadError(f"{path}: cannot read ({exc.strerror or _one_line(exc)})") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe(filenames: Sequence[str]) -> str:
    """``a, b and c`` for messages."""
    names = list(filenames)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
