"""The data a curvature product is summed over, and the sum: batches held on the device
(:class:`Stacked`, :class:`Placed`) or read from the host (:class:`Streamed`), the exact mean
of a per-batch function over them — in a compiled loop (:func:`device_mean`) or one compiled
call per batch from the host (:func:`host_mean`) — their placement on the devices, and the
batch size that fits (:func:`fitted_batch_size`).

Each batch's value is weighted by its size, summed, and divided by the total: the exact mean
whatever the batch size, in the memory of one batch (see :mod:`landscape.curvature.operator`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from landscape.batches import Dataset
from landscape.errors import InputError
from landscape.objective import Params, State

BatchLoss = Callable[[Params, State, Any], Any]
"""``loss(params, state, batch)``: the batch's mean loss, or ``(mean loss, metrics)``."""


class Stacked(NamedTuple):
    """Batches held in device memory: ``full`` stacks the whole batches on a leading axis
    (num_full, batch, ...), ``rest`` is the short last batch (or the only one); either may be
    None."""

    full: Any
    rest: Any


class Placed(NamedTuple):
    """Batches held in device memory one by one, for sums driven from the host."""

    batches: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class Streamed:
    """Batches read from the host at every pass (a re-iterable) and placed one at a time;
    with ``piece``, each cut into pieces of at most that many samples (memory)."""

    source: Iterable
    devices: tuple
    piece: int | None = None

    def __iter__(self) -> Iterator[Any]:
        for batch in self.source:
            n = batch_count(batch)
            step = n if self.piece is None else self.piece
            for start in range(0, n, step):
                part = batch if step >= n else jax.tree.map(
                    lambda a, s=start: a[s:s + step], batch)
                yield put_batch(part, list(self.devices))


Data = Stacked | Placed | Streamed


def batch_count(batch: Any) -> int:
    """Samples in a batch: the leading axis of its first leaf (1 for a batch of scalars or
    none: a loss over one fixed expression)."""
    leaves = jax.tree.leaves(batch)
    return int(np.shape(leaves[0])[0]) if leaves and np.ndim(leaves[0]) else 1


def device_mean(fn: Callable, args: tuple, data: Stacked) -> Any:
    """Σ_b n_b fn(*args, batch_b) / Σ_b n_b over batches held on the device (jit-able,
    vmap-able): whole batches in a ``fori_loop``, so the memory is one batch's."""
    full, rest = data
    total, sums = 0, None

    def weighted(batch):
        n = batch_count(batch)
        return jax.tree.map(lambda value: value * n, fn(*args, batch))

    if full is not None:
        num_full = int(jax.tree.leaves(full)[0].shape[0])
        one = lambda i: jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, False),  # noqa: E731
                                     full)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                             jax.eval_shape(weighted, one(0)))
        # The trip count hidden from XLA (an optimization barrier) so that one batch compiles
        # to the same loop as many: otherwise the loop is inlined and scheduled anew, and the
        # program's memory differs (a small convnet's HVP: 168 KB for one batch, 194 KB for 4).
        trips = jax.lax.optimization_barrier(jnp.asarray(num_full, jnp.int32))
        sums = jax.lax.fori_loop(
            0, trips, lambda i, acc: jax.tree.map(jnp.add, acc, weighted(one(i))), zeros)
        total += num_full * batch_count(one(0))
    if rest is not None:
        out = weighted(rest)
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
        total += batch_count(rest)
    if sums is None:
        raise InputError("a dataset mean needs at least one batch")
    return jax.tree.map(lambda value: value / total, sums)


@functools.partial(jax.jit, static_argnames=("fn",))
def _zeros(args, batch, *, fn):
    """Zeros shaped as ``fn``'s value, where :func:`_add` keeps its sums: the running sum's
    start. Not the first batch's product: that would be a second program around ``fn`` to
    compile (a second of compilation per product for a small model, doubled on a loaded
    machine), where this one holds no product."""
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *args, batch))


def _placed_like(tree: Any, args: tuple) -> Any:
    """``tree`` replicated where the first argument is (as :func:`_add` returns its sums), so
    that its first call compiles the program its later calls run; as it is otherwise."""
    first = jax.tree.leaves(args)[0] if jax.tree.leaves(args) else None
    sharding = getattr(first, "sharding", None)
    if sharding is None or not sharding.is_fully_replicated:
        return tree
    return jax.device_put(tree, sharding)


@functools.partial(jax.jit, static_argnames=("fn",), donate_argnums=(0,))
def _add(sums, args, batch, *, fn):
    n = batch_count(batch)
    return jax.tree.map(lambda acc, value: acc + value * n, sums, fn(*args, batch))


@jax.jit
def _divide(sums, total):
    return jax.tree.map(lambda value: value / total, sums)


def host_mean(fn: Callable, args: tuple, batches: Iterable) -> Any:
    """:func:`device_mean` with the loop on the host: one compiled call per batch adds its
    weighted value into a running sum kept (and donated) on the device. Nothing waits: the
    calls are dispatched as fast as the batches come."""
    sums, total = None, 0
    for batch in batches:
        if sums is None:
            sums = _placed_like(_zeros(args, batch, fn=fn), args)
        sums = _add(sums, args, batch, fn=fn)
        total += batch_count(batch)
    if sums is None:
        raise InputError("a dataset mean needs at least one batch; the data yielded none")
    return _divide(sums, total)


@functools.partial(jax.jit, static_argnames=("fn",))
def device_mean_compiled(args, data, *, fn):
    return device_mean(fn, args, data)


def unstack(data: Stacked) -> Iterator[Any]:
    full, rest = data
    if full is not None:
        for i in range(int(jax.tree.leaves(full)[0].shape[0])):
            yield jax.tree.map(lambda a, i=i: a[i], full)
    if rest is not None:
        yield rest



DEVICE_DATA_FRACTION = 0.25  # of an accelerator's free memory, for a data set kept on it
CPU_BATCH_BYTES = 512 * 2**20  # one batch's curvature products on a CPU (peak RSS, cache)
ACCELERATOR_BATCH_FRACTION = 0.25  # of an accelerator's free memory, for one batch's products
MAX_BATCH = 8192


def fitted_batch_size(loss: BatchLoss, params: Params, state: State, sample: Any,
                      batch_size: int, devices: Sequence[jax.Device],
                      num_samples: int | None = None) -> int:
    """The most samples per batch whose curvature products fit: ``batch_size`` at most on a
    CPU (where one batch's products stay within :data:`CPU_BATCH_BYTES`); on an accelerator
    as many as fit :data:`ACCELERATOR_BATCH_FRACTION` of its free memory, up to the data set's
    ``num_samples`` (larger batches keep it busy; a stream's batches: ``batch_size`` at most).
    ``sample``: a batch of the data (its leaves' shapes past the sample axis and dtypes).

    A batch's products hold about as much as its forward pass's intermediate values: their
    bytes per sample are read off the loss's traced program (the values of a two-sample batch
    less a one-sample one's; no compilation). Measured on ResNet-20: 5.6 MiB per image traced,
    4.0 MiB in XLA's compiled estimate of the HVP."""
    per_sample = _traced_bytes_per_sample(loss, params, state, sample)
    if not per_sample:
        return batch_size
    if devices[0].platform == "cpu":
        return max(1, min(batch_size, int(CPU_BATCH_BYTES // per_sample)))
    from landscape.engine.sizing import device_memory_budget

    free = min(device_memory_budget(d) for d in devices)
    fits = int(free * ACCELERATOR_BATCH_FRACTION * len(devices) // per_sample)
    return max(1, min(num_samples or batch_size, MAX_BATCH, fits))


def _traced_bytes_per_sample(loss: BatchLoss, params: Params, state: State,
                             sample: Any) -> float:
    def traced_bytes(n: int) -> int:
        batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((n, *np.shape(a)[1:]),
                                                            np.asarray(a).dtype), sample)
        try:
            jaxpr = jax.make_jaxpr(lambda p, s, b: loss(p, s, b))(params, state, batch)
        except Exception:  # the loss's own errors surface where it runs
            return 0
        return _values_bytes(jaxpr.jaxpr)

    return max(traced_bytes(2) - traced_bytes(1), 0)


def _values_bytes(jaxpr: Any) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            aval = getattr(var, "aval", None)
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                total += int(np.prod(aval.shape)) * np.dtype(aval.dtype).itemsize
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    total += _values_bytes(sub)
    return total


def fits_on_devices(data: Dataset, devices: list[jax.Device]) -> bool:
    """Whether an in-memory data set is kept on the devices: always on the CPU (it is in that
    memory already); on an accelerator where it takes at most :data:`DEVICE_DATA_FRACTION`
    of the free memory (:func:`landscape.engine.sizing.device_memory_budget`)."""
    if devices[0].platform == "cpu":
        return True
    from landscape.engine.sizing import device_memory_budget

    return data.nbytes <= DEVICE_DATA_FRACTION * min(map(device_memory_budget, devices))


@dataclasses.dataclass(frozen=True)
class DatasetBatches:
    """An in-memory data set as a re-iterable of batches, read from the host."""

    dataset: Dataset
    batch_size: int

    def __iter__(self) -> Iterator[Any]:
        return self.dataset.batches(self.batch_size)



# ---- placement -----------------------------------------------------------------------------


def replicated_sharding(devices: list[jax.Device]):
    if len(devices) == 1:
        return SingleDeviceSharding(devices[0])
    return NamedSharding(Mesh(np.array(devices), ("samples",)), PartitionSpec())


def split_sharding(devices: list[jax.Device], axis: int, size: int):
    """Samples (``axis``) split across ``devices`` where ``size`` divides evenly, else
    replicated."""
    if len(devices) == 1 or size % len(devices):
        return replicated_sharding(devices)
    mesh = Mesh(np.array(devices), ("samples",))
    return NamedSharding(mesh, PartitionSpec(*[None] * axis, "samples"))


def put_batch(batch: Any, devices: list[jax.Device]) -> Any:
    batch = jax.tree.map(np.asarray, batch) if not _on_devices(batch) else batch
    return jax.device_put(batch, split_sharding(devices, 0, batch_count(batch)))


def _on_devices(tree: Any) -> bool:
    return all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(tree))


def place_stacked(data: Stacked, devices: list[jax.Device]) -> Stacked:
    full, rest = data
    if full is not None:
        size = int(jax.tree.leaves(full)[0].shape[1])
        full = jax.device_put(full, split_sharding(devices, 1, size))
    if rest is not None:
        rest = jax.device_put(rest, split_sharding(devices, 0, batch_count(rest)))
    return Stacked(full, rest)
