"""The data a loss is averaged over: an in-memory :class:`Dataset`, or :class:`Batches` — any
re-iterable of batches (a list, a grain or tf.data pipeline, a torch ``DataLoader``), read one
batch at a time, so data sets larger than memory work.

Every full-dataset mean is exact: each batch's mean is weighted by its size, so every sample
counts once whatever the batch size (:func:`landscape.objective.mean_over_batches`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from landscape.errors import InputError

PyTree = Any


class Batch(NamedTuple):
    """A batch of an in-memory :class:`Dataset` (a tuple: ``x, y = batch`` works)."""

    inputs: jax.Array  # (batch, *input_shape)
    targets: jax.Array  # (batch, ...)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Inputs and targets held in host memory, first axis = sample."""

    inputs: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise InputError(
                f"dataset inputs ({len(self.inputs)} samples) and targets "
                f"({len(self.targets)} samples) must have the same length"
            )
        if len(self.inputs) == 0:
            raise InputError("dataset is empty")

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def nbytes(self) -> int:
        return int(np.asarray(self.inputs).nbytes + np.asarray(self.targets).nbytes)

    def split_batches(self, batch_size: int) -> tuple[Batch | None, Batch | None]:
        """The dataset as ``(full, rest)``: ``full`` stacks the whole batches on a leading axis
        (num_full, batch_size, ...) for a scan, ``rest`` is the short last batch (or None)."""
        if batch_size < 1:
            raise InputError(f"`batch_size` (={batch_size}) must be >= 1")
        n = len(self)
        num_full, rest = divmod(n, batch_size)
        full = None
        if num_full:
            cut = num_full * batch_size
            full = Batch(
                self.inputs[:cut].reshape(num_full, batch_size, *self.inputs.shape[1:]),
                self.targets[:cut].reshape(num_full, batch_size, *self.targets.shape[1:]),
            )
        last = Batch(self.inputs[n - rest :], self.targets[n - rest :]) if rest else None
        return full, last

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """The dataset in order, ``batch_size`` samples at a time (the last batch may be short)."""
        for start in range(0, len(self), batch_size):
            yield Batch(self.inputs[start : start + batch_size],
                        self.targets[start : start + batch_size])

    def shuffled_batches(self, batch_size: int, key: jax.Array) -> Iterator[Batch]:
        """One epoch of batches in a random order; the short last batch is dropped."""
        order = np.asarray(jax.random.permutation(key, len(self)))
        for start in range(0, len(self) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield Batch(self.inputs[idx], self.targets[idx])

    def subset(self, num: int, *, seed: int = 0, stratify: bool = False) -> tuple[Dataset, np.ndarray]:
        """A fixed subset of ``num`` samples and their indices (sorted), drawn with ``seed``;
        ``stratify``: each target class keeps its share (largest remainders), for classifiers."""
        n = len(self)
        if not 1 <= num <= n:
            raise InputError(f"`samples` (={num}) must be between 1 and the {n} samples of the "
                             "data", param="samples")
        rng = np.random.default_rng(seed)
        if not stratify:
            index = np.sort(rng.choice(n, num, replace=False))
        else:
            labels = np.asarray(self.targets).reshape(n, -1)[:, 0]
            classes, counts = np.unique(labels, return_counts=True)
            share = counts * num / n
            take = np.floor(share).astype(int)
            extra = num - take.sum()  # largest remainders get one more, ties by class order
            take[np.argsort(-(share - take), kind="stable")[:extra]] += 1
            index = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(labels == c), k, replace=False)
                for c, k in zip(classes, take) if k
            ]))
        return Dataset(self.inputs[index], self.targets[index]), index


@dataclasses.dataclass(frozen=True, eq=False)
class Batches:
    """A re-iterable of batches, read one batch at a time: every ``iter()`` must start again
    from the first batch (a list, a torch ``DataLoader`` without shuffling, a tf.data or grain
    pipeline). A batch is any pytree of arrays that share a leading sample axis (``(x, y)``, a
    dict ...); arrays convertible with ``np.asarray`` (torch CPU tensors, tf tensors) are
    converted. The loss sees each batch as it comes (numpy leaves)."""

    source: Iterable

    def __post_init__(self) -> None:
        if iter(self.source) is self.source:
            raise InputError(
                "data given as a one-shot iterator (a generator?) cannot be read once per chunk "
                "of grid points; give a re-iterable (a list, a DataLoader, a Dataset)"
            )

    def __iter__(self) -> Iterator[PyTree]:
        for number, batch in enumerate(self.source):
            batch = jax.tree.map(np.asarray, _as_tuple(batch))
            sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(batch)}
            if len(sizes) != 1 or None in sizes or 0 in sizes:
                found = sorted("a scalar (no sample axis)" if size is None else str(size)
                               for size in sizes) or ["no arrays"]
                raise InputError(f"batch {number} of the data: every array needs the same "
                                 f"non-empty leading sample axis, found {', '.join(found)}",
                                 param="data")
            yield batch


def _as_tuple(batch: Any) -> Any:
    # A list [x, y] (what a DataLoader of TensorDataset yields) is a tuple to the loss.
    return tuple(batch) if isinstance(batch, list) else batch


Data = Dataset | Batches


def as_data(data: Any) -> Data:
    """``data`` as a :class:`Dataset` (in-memory ``(inputs, targets)`` arrays) or
    :class:`Batches` (any other re-iterable of batches)."""
    if isinstance(data, (Dataset, Batches)):
        return data
    if isinstance(data, tuple) and len(data) == 2 and all(_is_array(a) for a in data):
        return Dataset(np.asarray(data[0]), np.asarray(data[1]))
    if _is_array(data) or isinstance(data, dict):
        raise InputError("data must be `(inputs, targets)` arrays, a landscape.Dataset or a "
                         f"re-iterable of batches; got {type(data).__name__}", param="data")
    if isinstance(data, (list, tuple)) and data and all(_is_array(a) for a in data):
        tails = [tuple(np.shape(a)[1:]) for a in data]
        if len(set(tails)) > 1:  # not batches of one data set: arrays of different kinds
            shapes = ", ".join(str(tuple(np.shape(a))) for a in data[:4])
            raise InputError(f"data is a {type(data).__name__} of arrays shaped {shapes}: not "
                             "batches of one data set; give `(inputs, targets)` as a tuple, or "
                             "a list of batches that are each `(inputs, targets)`",
                             param="data")
    try:
        iter(data)
    except TypeError:
        raise InputError("data must be `(inputs, targets)` arrays, a landscape.Dataset or a "
                         f"re-iterable of batches; got {type(data).__name__}") from None
    return Batches(data)


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def batch_size_of(batch: PyTree) -> int:
    """Samples in a batch: the leading axis of its first leaf."""
    return int(np.shape(jax.tree.leaves(batch)[0])[0])
