"""The surface evaluator: a metric, or any point function, at every point of a :class:`Grid`
on a :class:`~landscape.directions.Plane`.

The grid specs themselves (``MIN:MAX:N`` axes, :class:`Grid`, the memory check) live in
:mod:`landscape.gridspec` and are re-exported here, so ``from landscape.grid import Grid`` works.

Points are flattened in C order over (y, x), so a metric stored as ``Z[iy, ix]`` has shape
(ny, nx): the layout Li et al.'s plotting scripts read. The evaluator vmaps the loss over a chunk
of points (the data batches are scanned *inside*, so a batch is read once per chunk), shards the
chunk over the devices of a mesh, and compiles once per scan (the last chunk is padded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from landscape.directions import Plane
from landscape.distributed import put_global, to_host
from landscape.errors import InputError
from landscape.gridspec import (  # re-exported: the grid spec's public names
    MAX_AXIS_POINTS,
    Grid,
    available_memory_bytes,
    parse_axis,
)
from landscape.workload import (
    LinearStem,
    Params,
    State,
    Workload,
    get_leaf,
    mean_over_batches,
)

__all__ = [
    "ACC_PERCENT", "MAX_AXIS_POINTS", "MAX_CHUNK", "ChunkFn", "Grid", "PointFn",
    "available_memory_bytes", "default_mesh", "evaluate_chunks", "evaluate_points",
    "evaluate_surface", "metric_names", "parse_axis", "point_params",
]

ACC_PERCENT = 100.0  # accuracies are fractions inside the library, percent in surface files


def metric_names(workload: Workload, metrics: Sequence[str], splits: Sequence[str]) -> list[str]:
    """File names of the requested metrics, e.g. ``train_loss``, ``test_acc``; validated."""
    available = ("loss", *workload.metrics)
    names = []
    for split in splits:
        workload.dataset(split)  # raises for a missing split
        for metric in metrics:
            if metric not in available:
                raise InputError(
                    f"`--metrics` (={metric!r}) is not computed by workload `{workload.name}`; "
                    f"available: {', '.join(available)}"
                )
            names.append(f"{split}_{metric}")
    return names


def point_params(plane: Plane, alpha: jax.Array, beta: jax.Array) -> Params:
    """θ = origin + α d1 + β d2 (β ignored on a 1D line). ``plane`` may be any object with
    ``origin``, ``d1``, ``d2`` (under jit: the arrays of a Plane)."""
    if plane.d2 is None:
        return jax.tree.map(lambda o, a: o + alpha * a, plane.origin, plane.d1)
    return jax.tree.map(lambda o, a, b: o + alpha * a + beta * b, plane.origin, plane.d1, plane.d2)


def default_mesh() -> Mesh:
    """A 1-D mesh named ``points`` over every device of the runtime."""
    return jax.make_mesh(
        (jax.device_count(),), ("points",), axis_types=(jax.sharding.AxisType.Auto,)
    )


PointFn = Callable[[Params, Any], dict[str, jax.Array]]
"""``point_fn(theta, data) -> {name: scalar}``: what to compute at one point θ of a plane."""

ChunkFn = Callable[..., dict[str, jax.Array]]
"""``chunk_fn(coords (chunk, 2), plane, data) -> {name: (chunk,)}``: a whole chunk at once."""


def evaluate_surface(
    workload: Workload,
    state: State,
    plane: Plane,
    grid: Grid,
    *,
    metrics: Sequence[str] = ("loss",),
    splits: Sequence[str] = ("train",),
    chunk: int | None = None,
    mesh: Mesh | None = None,
    done: np.ndarray | None = None,
    on_chunk: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
    use_stem: bool = True,
) -> dict[str, np.ndarray]:
    """Evaluate the requested metrics at every grid point of ``plane``.

    The points are ``plane.origin + α plane.d1 + β plane.d2`` for (α, β) on the grid; ``state``
    is the model's untrained state (BatchNorm statistics), the same at every point. Each data
    batch is read once per chunk of points; when the workload declares a
    :class:`~landscape.workload.LinearStem` (and ``use_stem``), its first layer is computed once
    per scan for the origin and the directions and combined per point (exact: the layer is
    linear in its weights).

    Args:
      metrics: ``loss`` and any name in ``workload.metrics`` (``acc`` is returned in percent).
      splits: datasets to evaluate on (``train``, ``test``), each over every sample.
      chunk, mesh, done, on_chunk: as in :func:`evaluate_points`.

    Returns:
      ``{f"{split}_{metric}": array shaped grid.shape}``; points not evaluated are NaN.
    """
    metric_names(workload, metrics, splits)  # validates
    stem = workload.stem if use_stem and _stem_pays(workload.stem, plane.origin) else None
    batches = {s: workload.dataset(s).split_batches(workload.batch_size) for s in splits}
    if stem is not None:
        # The stem's outputs for the origin and each direction do not depend on the grid point:
        # computed once per scan and read beside each batch, (..., 2 or 3, batch, width).
        stems = jax.jit(lambda x, dirs: jnp.stack([stem.pre_activation(d, x) for d in dirs], -3))
        dirs = [d for d in (plane.origin, plane.d1, plane.d2) if d is not None]
        batches = {
            s: tuple(None if b is None else (b, np.asarray(stems(b.inputs, dirs))) for b in pair)
            for s, pair in batches.items()
        }
    data = {"state": state, "batches": batches}

    def chunk_fn(coords, plane, data):
        alpha, beta = coords[:, 0], coords[:, 1]
        at = jax.vmap(lambda a, b: point_params(plane, a, b))

        def batch_means(item):  # {metric: (chunk,)} over one data batch
            if stem is None:
                loss = lambda theta: workload.loss(theta, data["state"], item)  # noqa: E731
                values, extra = jax.vmap(loss)(at(alpha, beta))
            else:
                batch, pre = item

                def finish(theta, a, b):
                    # [1, α, β] · (origin, d1, d2) products: under vmap, one small dot.
                    weights = jnp.stack([jnp.ones_like(a), a, b])[: pre.shape[0]]
                    point_pre = jnp.tensordot(weights, pre, axes=1)
                    return stem.finish(theta, data["state"], point_pre, batch)

                values, extra = jax.vmap(finish)(at(alpha, beta), alpha, beta)
            return {"loss": values, **extra}

        out = {}
        for split, (full, rest) in data["batches"].items():
            means = mean_over_batches(batch_means, full, rest)
            for metric in metrics:
                scale = ACC_PERCENT if metric == "acc" else 1.0
                out[f"{split}_{metric}"] = means[metric] * scale
        return out

    return evaluate_chunks(
        chunk_fn, data, plane, grid, chunk=chunk, mesh=mesh, done=done, on_chunk=on_chunk
    )


STEM_MIN_FAN_IN = 4  # inputs per unit below which the stem's combine costs more than its product


def _stem_pays(stem: LinearStem | None, origin: Params) -> bool:
    """Whether a stem saves work: per sample and unit it trades the layer's fan-in
    multiply-adds for a combine of three precomputed products (measured: a 1-input stem, as
    the sine MLP's, is 5-15 % slower than the plain product)."""
    if stem is None:
        return False
    kernel = np.shape(get_leaf(origin, stem.kernel))
    return math.prod(kernel[:-1]) >= STEM_MIN_FAN_IN


def evaluate_points(
    point_fn: PointFn,
    data: Any,
    plane: Plane,
    grid: Grid,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Evaluate ``point_fn(θ, data)`` at every grid point θ of ``plane`` (vmapped over each
    chunk); ``options`` as in :func:`evaluate_chunks`. Used e.g. for Hessian eigen maps."""

    def chunk_fn(coords, plane, data):
        at_point = lambda ab: point_fn(point_params(plane, ab[0], ab[1]), data)  # noqa: E731
        return jax.vmap(at_point)(coords)

    return evaluate_chunks(chunk_fn, data, plane, grid, **options)


def evaluate_chunks(
    chunk_fn: ChunkFn,
    data: Any,
    plane: Plane,
    grid: Grid,
    *,
    chunk: int | None = None,
    mesh: Mesh | None = None,
    done: np.ndarray | None = None,
    on_chunk: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
) -> dict[str, np.ndarray]:
    """The engine: run ``chunk_fn`` over the grid's points, chunk by chunk.

    ``data`` (arrays: state, data batches ...) and the plane are placed on every device once and
    passed to ``chunk_fn`` rather than closed over, so they are not baked into the program.

    Args:
      chunk: points per compiled call (rounded up to a multiple of the device count); the last
        chunk is padded, so the scan compiles once. Default: as many points per device as keep
        a chunk's temporaries within ``WORKING_SET_BYTES`` by XLA's estimate (see
        :func:`_compile`), at most ``MAX_CHUNK``.
      mesh: devices to shard each chunk over (default: every device, one mesh axis).
      done: boolean mask shaped like ``grid.shape``; points already done are skipped (resume).
      on_chunk: called with (flat point indices, {name: values}) after every chunk, in order,
        e.g. to flush results to a file; it runs while the next chunk computes.

    Returns:
      ``{name: array shaped grid.shape}`` (float64); points not evaluated are NaN.
    """
    if plane.ndim != grid.ndim:
        raise InputError(f"a {plane.ndim}D plane cannot be scanned over a {grid.ndim}D grid")
    mesh = mesh or default_mesh()
    num_devices = mesh.devices.size
    arrays = _PlaneArrays(plane.origin, plane.d1, plane.d2)
    grid.checked_size()
    todo = np.arange(grid.num_points)
    if done is not None:
        if done.shape != grid.shape:
            raise InputError(f"`done` mask shape {done.shape} differs from the grid's {grid.shape}")
        todo = todo[~done.ravel()]
    if not todo.size:
        probe = jax.ShapeDtypeStruct((num_devices, 2), np.float32)
        names = sorted(jax.eval_shape(chunk_fn, probe, arrays, data))
        return {name: np.full(grid.shape, np.nan) for name in names}
    replicated = NamedSharding(mesh, PartitionSpec())
    constants = put_global((arrays, data), replicated)
    coords_sharding = NamedSharding(mesh, PartitionSpec("points"))
    evaluate_chunk, chunk = _compile(
        jax.jit(chunk_fn), constants, coords_sharding, num_devices, chunk, todo.size
    )
    names = sorted(evaluate_chunk.out_info)
    grid.checked_size(len(names))
    results = {name: np.full(grid.num_points, np.nan) for name in names}
    coords_all = grid.coordinates()

    def finish(index, out):  # fetch a chunk's values (waits for it), store and report them
        values = {name: to_host(out[name]).astype(np.float64)[: index.size] for name in names}
        for name in names:
            results[name][index] = values[name]
        if on_chunk is not None:
            on_chunk(index, values)

    pending = None  # the chunk in flight: the next is dispatched before it is fetched
    for start in range(0, todo.size, chunk):
        index = todo[start : start + chunk]
        coords = np.zeros((chunk, 2), np.float32)
        coords[: index.size] = coords_all[index]
        coords[index.size :] = coords_all[index[-1]]  # pad by repeating the last point
        out = evaluate_chunk(put_global(coords, coords_sharding), *constants)
        if pending is not None:
            finish(*pending)
        pending = index, out
    finish(*pending)
    return {name: value.reshape(grid.shape) for name, value in results.items()}


MAX_CHUNK = 256  # points per call; beyond this, larger chunks stop paying off
GUESS_POINTS_PER_DEVICE = 4  # the first compile's chunk, whose temporaries size the real one
WORKING_SET_BYTES = 16 * 2**20  # per device: a chunk's temporaries beyond this leave the cache
MEMORY_FRACTION = 0.25  # of the memory available now, for one chunk's temporaries


def _compile(jitted, constants, coords_sharding, num_devices: int, chunk: int | None, todo: int):
    """Compile ``jitted`` for one chunk size and return (compiled, chunk).

    ``chunk`` if given; else, from XLA's estimate of a chunk's temporaries (made on a first
    compile of ``GUESS_POINTS_PER_DEVICE`` per device): as many points per device as keep them
    within ``WORKING_SET_BYTES`` — beyond that they spill out of cache and each point costs
    more — at least one, at most ``MAX_CHUNK`` in all and within ``MEMORY_FRACTION`` of the
    available memory. Sizes are multiples of the device count; a second compile only when the
    size changes.
    """

    def compiled(size):
        coords = jax.ShapeDtypeStruct((size, 2), np.float32, sharding=coords_sharding)
        return jitted.trace(coords, *constants).lower().compile()

    def fitted(size):  # a multiple of the device count, no larger than needed
        size = -(-max(1, size) // num_devices) * num_devices
        return min(size, -(-todo // num_devices) * num_devices)

    if chunk is not None:
        size = fitted(min(chunk, todo))
        return compiled(size), size
    size = fitted(GUESS_POINTS_PER_DEVICE * num_devices)
    program = compiled(size)
    try:  # bytes per point on one device
        per_point = max(program.memory_analysis().temp_size_in_bytes * num_devices / size, 1.0)
    except Exception:  # no estimate on this backend: keep the first guess
        return program, size
    in_cache = int(WORKING_SET_BYTES / per_point) * num_devices
    in_memory = int(available_memory_bytes() * MEMORY_FRACTION / per_point)
    best = fitted(min(MAX_CHUNK, in_cache, in_memory))
    return (program, size) if best == size else (compiled(best), best)


class _PlaneArrays(NamedTuple):
    """The arrays of a :class:`Plane` (a pytree; ``point_params`` accepts it like a Plane)."""

    origin: Params
    d1: Params
    d2: Params | None
