"""The folder outputs go to: created (with its parents) and checked writable before anything
is written there, with the message ``landscape`` commands give for ``--out``."""

from __future__ import annotations

import os

from landscape.errors import WriteError


def make_output_folder(path: str | os.PathLike, *, param: str = "out") -> str:
    """Create the folder ``path`` and its parents if missing; a :class:`WriteError` if that
    fails or the folder is not writable, naming the argument ``param`` in backticks (the CLI names the option: "cannot create
    `--out` folder ...")."""
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create `{param}` folder {path}: {exc.strerror}",
                         param=param) from exc
    if not os.access(path, os.W_OK):
        raise WriteError(f"`{param}` folder {path} is not writable", param=param)
    return path
