"""The top eigenvalues of mini-batch Hessians: the Hessian of each of N mini-batches' own mean
loss, as studies of what SGD sees loop PyHessian over a data loader's batches (Park & Kim
2022, "How do vision transformers work?", xxxnell/how-do-vits-work#11).

Over batches that partition the data, the full-data Hessian is the size-weighted mean of the
batches' Hessians, but its top eigenvalue is not the mean of theirs: λmax is convex in the
matrix, so that mean of the batches' λmax is at least the full-data λmax; their spread shows
how much the curvature a single step sees varies.

Mini-batches of an in-memory :class:`~landscape.Dataset` are drawn as a shuffled data loader
draws them: one epoch in a random order (``seed``), the first N whole batches of ``batch_size``
(no sample in two of them). A re-iterable of batches (a ``DataLoader``) gives its first N
batches as they come. Each batch's Hessian is a problem of its own
(:func:`~landscape.curvature.operator.dataset_problem` over that batch), its eigenvalues by
Lanczos to the same tolerance as the full data's; out of device memory, a batch of an
in-memory data set is summed in halves (a streamed batch is taken whole).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from landscape.batches import Batch, Batches, Dataset
from landscape.errors import InputError
from landscape.curvature.eigen import hessian_eigenpairs
from landscape.curvature.operator import (
    BatchLoss,
    HessianProblem,
    Stacked,
    batch_count,
    dataset_problem,
    smaller_on_oom,
)

MINIBATCH_SIZE = 128  # the default mini-batch of in-memory data (as `landscape train`'s)


class MinibatchSpectra(NamedTuple):
    """Top-k eigenvalues of N mini-batch Hessians."""

    sizes: np.ndarray  # (N,) samples in each batch
    values: np.ndarray  # (N, k) each batch's top-k eigenvalues, descending
    residuals: np.ndarray  # (N, k) ‖H_b x − θ x‖: each value within this of an eigenvalue
    converged: np.ndarray  # (N, k) bool: the stopping rule passed
    iterations: np.ndarray  # (N,) Lanczos steps (Hessian-vector products) per batch


def minibatches(data: Any, *, num_batches: int, batch_size: int | None = None,
                seed: int = 0) -> Iterator[Any]:
    """The first ``num_batches`` mini-batches of ``data`` (module docstring): of a
    :class:`Dataset`, whole batches of ``batch_size`` (default :data:`MINIBATCH_SIZE`) from one
    shuffled epoch; of a :class:`Batches` stream, its own first batches (``batch_size`` must
    then be None)."""
    if num_batches < 1:
        raise InputError(f"`num_batches` (={num_batches}) must be >= 1", param="num_batches")
    if isinstance(data, Batches):
        if batch_size is not None:
            raise InputError("a re-iterable of batches gives its own mini-batches: leave "
                             f"`batch_size` (={batch_size}) out", param="batch_size")
        found = 0
        for batch in data:
            yield batch
            found += 1
            if found == num_batches:
                return
        raise InputError(f"`num_batches` (={num_batches}) is more than the {found} batches "
                         "the data yield", param="num_batches")
    if not isinstance(data, Dataset):
        raise InputError(f"mini-batches are cut from a landscape.Dataset or a Batches stream, "
                         f"not {type(data).__name__}")
    batch_size = MINIBATCH_SIZE if batch_size is None else batch_size
    if batch_size < 1:
        raise InputError(f"`batch_size` (={batch_size}) must be >= 1", param="batch_size")
    available = len(data) // batch_size
    if num_batches > available:
        raise InputError(
            f"`num_batches` (={num_batches}) whole batches of `batch_size` (={batch_size}) need "
            f"{num_batches * batch_size} samples; the data hold {len(data)} ({available} "
            "batches)", param=("num_batches", "batch_size"))
    shuffled = data.shuffled_batches(batch_size, jax.random.key(seed))
    for _ in range(num_batches):
        yield next(shuffled)


def minibatch_problem(loss: BatchLoss, params: Any, state: Any, batch: Any, *,
                      devices: Any = None, loop: str = "auto") -> HessianProblem:
    """The Hessian of ``batch``'s own mean loss: one batch (a :class:`Batch` of a data set is
    summed in smaller pieces when it does not fit in device memory)."""
    data = (Dataset(np.asarray(batch.inputs), np.asarray(batch.targets))
            if isinstance(batch, Batch) else Stacked(None, batch))
    return dataset_problem(loss, params, state, data, batch_size=batch_count(batch),
                           devices=devices, loop=loop)


def minibatch_eigenvalues(
    loss: BatchLoss,
    params: Any,
    state: Any,
    data: Any,
    *,
    num_batches: int,
    batch_size: int | None = None,
    top_k: int = 1,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    seed: int = 0,
    devices: Any = None,
    loop: str = "auto",
    on_batch: Callable[[int], None] | None = None,
    on_shrink: Callable[[int, int, str], None] | None = None,
) -> MinibatchSpectra:
    """Top-``top_k`` eigenvalues of the Hessians of ``num_batches`` mini-batches of ``data``
    (:func:`minibatches`: ``batch_size``, ``seed``), each by Lanczos as
    :func:`~landscape.curvature.eigen.hessian_eigenpairs` (``tol``, ``atol``, ``stop``,
    ``max_iter``; start vector from ``seed``). ``on_batch(i)`` after batch i;
    ``on_shrink`` as :func:`~landscape.curvature.operator.smaller_on_oom` says."""
    rows = []
    for i, batch in enumerate(minibatches(data, num_batches=num_batches, batch_size=batch_size,
                                          seed=seed)):
        problem = minibatch_problem(loss, params, state, batch, devices=devices, loop=loop)
        if top_k > problem.num_params:
            raise InputError(f"`top_k` (={top_k}) must be <= the number of parameters "
                             f"({problem.num_params})", param="top_k")
        pairs, _ = smaller_on_oom(problem, lambda p: hessian_eigenpairs(
            p, top_k=top_k, tol=tol, atol=atol, stop=stop, max_iter=max(max_iter, top_k),
            seed=seed), on_shrink=on_shrink)
        rows.append((batch_count(batch), pairs.top.values, pairs.top.residuals,
                     pairs.top.converged, pairs.iterations))
        if on_batch is not None:
            on_batch(i)
    sizes, values, residuals, converged, iterations = zip(*rows)
    return MinibatchSpectra(np.asarray(sizes), np.stack(values), np.stack(residuals),
                            np.stack(converged), np.asarray(iterations))
