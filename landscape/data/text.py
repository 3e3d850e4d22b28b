"""Next-byte prediction on text that ships with Python itself: its standard library's sources.

``text-gpt``: a 2-layer character-level :class:`~landscape.models.GPT` (d_model 64, 4 heads,
context 64) over bytes (vocabulary 256). The text is the bytes of :data:`STDLIB_FILES`, read in
that order from the folder of the running Python's ``os`` module (``os.path.dirname(os.__file__)``)
and joined, up to the bytes the windows need; nothing else is read and nothing is downloaded.
The stream is cut into consecutive windows of ``context`` bytes: sample ``i`` is the window
``text[i·c : (i+1)·c]`` and its targets the same window shifted by one byte. The first
``num_train`` windows train, the next ``num_test`` test.

The data are the same on every machine with the same Python version (the sources change between
versions). A file of the list that the windows reach but that is missing (a Python installed
without its ``.py`` sources) is a :class:`~landscape.errors.ReadError` naming it: the workload
never substitutes other text, so that a surface always means the same data.

Loss: mean next-byte cross-entropy over every position of every window (nats); ``acc``: the
fraction of positions whose most likely byte is the next one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landscape.data.classification import classification_workload
from landscape.data.files import read_bytes
from landscape.errors import InputError, ReadError
from landscape.models import GPT, pure_modes
from landscape.workload import Dataset, Workload

# Large, long-lived modules (present from Python 3.8 on), read in this order.
STDLIB_FILES: tuple[str, ...] = (
    "textwrap.py", "functools.py", "os.py", "random.py", "collections/__init__.py",
    "argparse.py", "subprocess.py", "inspect.py", "typing.py",
)
VOCAB = 256  # bytes


def stdlib_folder() -> Path:
    """The running Python's standard-library folder (where ``os.py`` lies)."""
    return Path(os.path.dirname(os.__file__))


def read_text_bytes(num_bytes: int, *, folder: str | os.PathLike | None = None,
                    files: Sequence[str] = STDLIB_FILES) -> np.ndarray:
    """The first ``num_bytes`` bytes of ``files`` (relative to ``folder``, default
    :func:`stdlib_folder`) joined in order, as uint8; files past those bytes are not opened.

    Raises:
      ReadError: a file the bytes reach is missing or unreadable, or all of them are shorter
        than ``num_bytes``.
    """
    root = Path(folder) if folder is not None else stdlib_folder()
    parts: list[bytes] = []
    have = 0
    for name in files:
        if have >= num_bytes:
            break
        path = root / name
        if not path.is_file():
            raise ReadError(
                f"workload `text-gpt`: {path} not found; it reads the first {num_bytes} bytes of "
                f"Python's own standard-library sources ({', '.join(files)}), which this Python "
                "installation lacks"
            )
        parts.append(read_bytes(path))
        have += len(parts[-1])
    if have < num_bytes:
        raise ReadError(f"workload `text-gpt`: the {len(files)} source files in {root} hold "
                        f"{have} bytes, fewer than the {num_bytes} the windows need")
    return np.frombuffer(b"".join(parts)[:num_bytes], dtype=np.uint8)


def byte_windows(text: np.ndarray, count: int, context: int) -> Dataset:
    """``count`` consecutive windows of ``context`` bytes (int32) and their next-byte targets;
    ``text`` needs ``count · context + 1`` bytes."""
    cut = count * context
    inputs = text[:cut].reshape(count, context).astype(np.int32)
    targets = text[1 : cut + 1].reshape(count, context).astype(np.int32)
    return Dataset(inputs, targets)


def text_gpt(num_train: int = 1024, num_test: int = 256, *, context: int = 64,
             d_model: int = 64, layers: int = 2, heads: int = 4, batch_size: int = 256,
             folder: str | os.PathLike | None = None,
             files: Sequence[str] = STDLIB_FILES) -> Workload:
    """The ``text-gpt`` workload (see the module docstring); ``folder`` and ``files`` replace the
    standard library's sources (tests)."""
    if num_train < 1 or num_test < 0 or context < 1:
        raise InputError(f"`num_train` (={num_train}) must be >= 1, `num_test` (={num_test}) "
                         f">= 0 and `context` (={context}) >= 1")
    text = read_text_bytes((num_train + num_test) * context + 1, folder=folder, files=files)
    train = byte_windows(text, num_train, context)
    test = (byte_windows(text[num_train * context :], num_test, context) if num_test else None)
    model = pure_modes(lambda rngs: GPT(VOCAB, context, d_model=d_model, layers=layers,
                                        heads=heads, rngs=rngs))
    # Targets are (windows, context): the classification loss and accuracy average over every
    # position, and every window weighs the same, so dataset means are per-byte means.
    return classification_workload("text-gpt", model, train, test, input_shape=(context,),
                                   batch_size=batch_size)
