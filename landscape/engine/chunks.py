"""The chunk loop: any function of a chunk of grid points, over every point of a :class:`Grid`.

Points are flattened in C order over (y, x), so a result stored as ``Z[iy, ix]`` has shape
(ny, nx): the layout Li et al.'s plotting scripts read. Each chunk is one compiled call, its
points sharded over the devices of a mesh; the last chunk is padded (by repeating its last
point) so a scan compiles once. Compiled programs are kept per configuration
(:func:`compile_chunks`): a second scan of the same shapes compiles nothing. The next chunk is
dispatched before the previous one is fetched, so a device never waits on the host.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from landscape.directions import Plane
from landscape.distributed import put_global, to_host
from landscape.engine import sizing
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.objective import Params
from landscape.precision import current_setting

ChunkFn = Callable[..., dict[str, jax.Array]]
"""``chunk_fn(coords (chunk, 2), plane, data) -> {name: (chunk,)}``: a whole chunk at once."""

OnChunk = Callable[[np.ndarray, dict[str, np.ndarray]], None]
"""``on_chunk(flat point indices, {name: values})``, called after every chunk, in order."""

PROGRAM_CACHE_SIZE = 32


def point_params(plane: Plane, alpha: jax.Array, beta: jax.Array) -> Params:
    """θ = origin + α d1 + β d2 (β ignored on a 1D line)."""
    if plane.d2 is None:
        return jax.tree.map(lambda o, a: o + alpha * a, plane.origin, plane.d1)
    return jax.tree.map(lambda o, a, b: o + alpha * a + beta * b, plane.origin, plane.d1, plane.d2)


def default_mesh() -> Mesh:
    """A 1-D mesh named ``points`` over every device of the runtime."""
    return jax.make_mesh(
        (jax.device_count(),), ("points",), axis_types=(jax.sharding.AxisType.Auto,)
    )


class Program:
    """A chunk function compiled for one chunk size, with the shardings it was compiled for."""

    def __init__(self, compiled: Any, chunk: int, coords_sharding: NamedSharding):
        self.compiled = compiled
        self.chunk = chunk
        self.coords_sharding = coords_sharding
        self.names = tuple(sorted(compiled.out_info))

    def dispatch(self, coords: np.ndarray, constants: tuple) -> dict[str, jax.Array]:
        """Start the call on ``coords`` (chunk, 2) float32; returns device arrays at once."""
        return self.compiled(put_global(coords, self.coords_sharding), *constants)


_programs: collections.OrderedDict[Hashable, Program] = collections.OrderedDict()
_jitted: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()


def cached_jit(key: Hashable, fn: Callable, **options: Any) -> Any:
    """``jax.jit(fn, **options)``, made once per ``key`` (which must identify what ``fn``
    computes), so that jit's own cache serves later calls: they compile nothing."""
    if key not in _jitted:
        _jitted[key] = jax.jit(fn, **options)
        while len(_jitted) > PROGRAM_CACHE_SIZE:
            _jitted.popitem(last=False)
    _jitted.move_to_end(key)
    return _jitted[key]


def place_constants(plane: Plane, data: Any, mesh: Mesh) -> tuple:
    """The plane's arrays and ``data``, replicated on every device of ``mesh``, as the
    arguments after the coordinates of a compiled chunk function."""
    return put_global((plane.bare(), data), NamedSharding(mesh, PartitionSpec()))


def compile_chunks(chunk_fn: ChunkFn, constants: tuple, mesh: Mesh, *, todo: int,
                   chunk: int | None = None, max_per_device: int | None = None,
                   key: Hashable | None = None) -> Program:
    """``chunk_fn`` compiled for the chunk size it will run at.

    ``chunk`` if given (rounded up to a multiple of the device count); else from XLA's estimate
    of a chunk's temporaries, made on a first compile of a few points per device
    (:mod:`landscape.engine.sizing`). ``key`` (hashable, e.g. the loss and the strategy)
    identifies what ``chunk_fn`` computes: with it, the program is kept and a later call with
    the same key, argument shapes, shardings and matmul precision returns it without compiling.
    """
    devices = list(mesh.devices.flat)
    coords_sharding = NamedSharding(mesh, PartitionSpec("points"))
    cache_key = None
    if key is not None:
        leaves, treedef = jax.tree.flatten(constants)
        # The matmul precision is part of jit's key, not of ours: without it a program compiled
        # at one precision would be served to a scan at another.
        cache_key = (key, treedef, tuple((x.shape, x.dtype, x.sharding) for x in leaves),
                     coords_sharding, chunk, max_per_device,
                     min(todo, sizing.MAX_CHUNK_ACCELERATOR), current_setting())
        if cache_key in _programs:
            _programs.move_to_end(cache_key)
            return _programs[cache_key]
    jitted = jax.jit(chunk_fn)

    def compiled(size: int) -> Program:
        coords = jax.ShapeDtypeStruct((size, 2), np.float32, sharding=coords_sharding)
        return Program(jitted.trace(coords, *constants).lower().compile(), size, coords_sharding)

    num_devices = len(devices)
    if chunk is not None:
        program = compiled(sizing.round_to_devices(min(chunk, todo), num_devices, todo))
    else:
        program = compiled(sizing.guess_chunk(num_devices, todo))
        try:  # bytes per point on one device
            temp = program.compiled.memory_analysis().temp_size_in_bytes
        except Exception:  # no estimate on this backend: keep the first guess
            temp = None
        if temp is not None:
            best = sizing.best_chunk(temp * num_devices / program.chunk, devices, todo,
                                     max_per_device)
            if best != program.chunk:
                program = compiled(best)
    if cache_key is not None:
        _programs[cache_key] = program
        while len(_programs) > PROGRAM_CACHE_SIZE:
            _programs.popitem(last=False)
    return program


def todo_points(grid: Grid, done: np.ndarray | None) -> np.ndarray:
    """Flat indices of the points still to evaluate."""
    todo = np.arange(grid.num_points)
    if done is None:
        return todo
    if done.shape != grid.shape:
        raise InputError(f"`done` mask shape {done.shape} differs from the grid's {grid.shape}")
    return todo[~done.ravel()]


def chunk_coordinates(grid: Grid, index: np.ndarray, size: int) -> np.ndarray:
    """(size, 2) float32 coordinates of the points ``index``, padded by repeating the last."""
    all_coords = grid.coordinates()
    coords = np.zeros((size, 2), np.float32)
    coords[: index.size] = all_coords[index]
    coords[index.size :] = all_coords[index[-1]]
    return coords


Dispatch = Callable[[np.ndarray], dict[str, jax.Array]]
"""Start evaluating a chunk (padded coordinates) and return its pending device arrays."""


def run_chunks(dispatch: Dispatch, chunk: int, names: tuple[str, ...], grid: Grid,
               todo: np.ndarray, *, on_chunk: OnChunk | None = None,
               first: dict[str, jax.Array] | None = None) -> dict[str, np.ndarray]:
    """Evaluate the points ``todo`` chunk by chunk; returns ``{name: grid.shape}`` float64 (NaN
    where not evaluated). ``first``: the first chunk's outputs, already computed (by a probe).
    Each chunk is fetched after the next one is dispatched, then stored and reported."""
    results = {name: np.full(grid.num_points, np.nan) for name in names}

    def finish(index: np.ndarray, out: dict[str, jax.Array]) -> None:
        values = {name: to_host(out[name]).astype(np.float64)[: index.size] for name in names}
        for name in names:
            results[name][index] = values[name]
        if on_chunk is not None:
            on_chunk(index, values)

    pending = None
    for start in range(0, todo.size, chunk):
        index = todo[start : start + chunk]
        if start == 0 and first is not None:
            out = first
        else:
            out = dispatch(chunk_coordinates(grid, index, chunk))
        if pending is not None:
            finish(*pending)
        pending = index, out
    if pending is not None:
        finish(*pending)
    return {name: value.reshape(grid.shape) for name, value in results.items()}


def evaluate_chunks(
    chunk_fn: ChunkFn,
    data: Any,
    plane: Plane,
    grid: Grid,
    *,
    chunk: int | None = None,
    mesh: Mesh | None = None,
    done: np.ndarray | None = None,
    on_chunk: OnChunk | None = None,
    key: Hashable | None = None,
) -> dict[str, np.ndarray]:
    """Run ``chunk_fn`` over the grid's points, chunk by chunk.

    ``data`` (arrays: state, data batches ...) and the plane are placed on every device once and
    passed to ``chunk_fn`` rather than closed over, so they are not baked into the program.

    Args:
      chunk: points per compiled call (see :func:`compile_chunks`); the last chunk is padded.
      mesh: devices to shard each chunk over (default: every device, one mesh axis).
      done: boolean mask shaped like ``grid.shape``; points already done are skipped (resume).
      on_chunk: called with (flat point indices, {name: values}) after every chunk, in order,
        e.g. to flush results to a file; it runs while the next chunk computes.
      key: identifies what ``chunk_fn`` computes, to reuse its compiled program.

    Returns:
      ``{name: array shaped grid.shape}`` (float64); points not evaluated are NaN.
    """
    if plane.ndim != grid.ndim:
        raise InputError(f"a {plane.ndim}D plane cannot be scanned over a {grid.ndim}D grid")
    mesh = mesh or default_mesh()
    grid.checked_size()
    todo = todo_points(grid, done)
    constants = place_constants(plane, data, mesh)
    if not todo.size:
        probe = jax.ShapeDtypeStruct((mesh.devices.size, 2), np.float32)
        names = sorted(jax.eval_shape(chunk_fn, probe, *constants))
        return {name: np.full(grid.shape, np.nan) for name in names}
    program = compile_chunks(chunk_fn, constants, mesh, todo=todo.size, chunk=chunk, key=key)
    grid.checked_size(len(program.names))
    return run_chunks(lambda coords: program.dispatch(coords, constants), program.chunk,
                      program.names, grid, todo, on_chunk=on_chunk)


def evaluate_points(
    point_fn: Callable[[Params, Any], dict[str, jax.Array]],
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
