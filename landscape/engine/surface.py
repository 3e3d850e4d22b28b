"""Loss surfaces: an :class:`~landscape.objective.Objective`'s loss and metrics at every point of
a :class:`Grid` on a :class:`Plane`.

Data held in memory (and small enough to sit on every device) is placed once and scanned inside
each compiled chunk, so a batch is read once per chunk; any other data (a stream of batches, or a
data set too large) is read batch by batch from the host, one compiled call per batch and chunk,
the sums accumulated on the devices. Where the loss starts with a layer that is linear in its
kernel (found in its jaxpr: :mod:`landscape.engine.stem`), that layer's products for the plane's
origin and directions are computed once per scan (or, when they would not fit, once per batch
and chunk) and only combined per point. How the points of a chunk are evaluated — vectorized or
in sequence — is a :mod:`~landscape.engine.strategy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, MutableMapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from landscape.batches import Batches, Dataset, batch_size_of
from landscape.directions import Plane
from landscape.distributed import put_global
from landscape.engine import sizing, strategy as strategies
from landscape.engine.chunks import (
    OnChunk,
    cached_jit,
    compile_chunks,
    chunk_coordinates,
    default_mesh,
    point_params,
    run_chunks,
    todo_points,
)
from landscape.engine.memory import OnShrink, halve_on_oom, is_out_of_memory
from landscape.engine.stem import (
    StemSplit,
    first_layer_plan,
    shapes_of,
    shares_first_layer,
    split_at_stem,
)
from landscape.errors import InputError, user_code
from landscape.grid import Grid
from landscape.objective import ACC_PERCENT, Objective, mean_over_batches
from landscape.tree import leaf_path

RESIDENT_MEMORY_FRACTION = 0.25  # of the free memory, for the data (and stem products) on every device


def evaluate_surface(
    objective: Objective,
    plane: Plane,
    grid: Grid,
    *,
    metrics: Sequence[str] = ("loss",),
    splits: Sequence[str] | None = None,
    chunk: int | None = None,
    batch_size: int | None = None,
    mesh: Mesh | None = None,
    done: np.ndarray | None = None,
    on_chunk: OnChunk | None = None,
    strategy: str = "auto",
    stem: bool = True,
    choices: MutableMapping | None = None,
    on_plan: Callable[[strategies.Plan], None] | None = None,
    on_shrink: OnShrink | None = None,
    probe: bool = True,
    devices: int | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate the requested metrics at every grid point of ``plane``.

    The points are ``plane.origin + α plane.d1 + β plane.d2`` for (α, β) on the grid; the
    objective's ``state`` is the same at every point.

    Args:
      metrics: ``loss`` and any name in ``objective.metrics`` (``acc`` is returned in percent).
      splits: data splits to evaluate on, each over every sample (default: the first).
      chunk: points per compiled call (default: from the device; see :mod:`.sizing`).
      batch_size: samples per evaluated batch of in-memory data (memory only: the means are
        exact). Default: the objective's on a CPU, sized from the free device memory on an
        accelerator (:func:`~landscape.engine.sizing.eval_batch_size`). A stream of batches
        is read as it comes (its batches are cut only after running out of memory).
      mesh: devices to shard each chunk over (default: every device).
      done: boolean mask shaped like ``grid.shape``; points already done are skipped (resume).
      on_chunk: called with (flat point indices, {name: values}) after every chunk, in order.
      strategy: ``vmap``, ``map`` or ``auto`` (see :func:`landscape.engine.strategy.choose`).
      stem: share the first layer's products between points where the loss has one that pays.
      choices: where ``auto`` remembers its choices (a mapping of str → dict), or None.
      on_plan: called with the :class:`~landscape.engine.strategy.Plan` before the first chunk
        is reported (e.g. to record it in a file), and again with the smaller chunk or batch
        after running out of device memory.
      on_shrink: ``on_shrink(old, new, what)`` when a chunk (``what="chunk"``) or an evaluation
        batch (``"eval batch"``) ran out of device memory: it is retried at half the size
        (:func:`~landscape.engine.memory.halve_on_oom`; the chunk first, down to a point per
        device, then the batch, down to one sample). The values are those of any size, up to
        float rounding.
      probe: whether ``auto`` may time the candidates (not in a multi-process run, where every
        process must choose the same; it then takes the rule of thumb).
      devices: with a forced ``strategy``, how many of the mesh's devices to shard over
        (e.g. as a file being resumed recorded it); default: the rule (on a CPU, ``map`` on one
        device, whose ops use every core; ``vmap`` on all).

    Returns:
      ``{f"{split}_{metric}": array shaped grid.shape}``; points not evaluated are NaN.
    """
    splits = tuple(splits or objective.splits[:1])
    names = objective.metric_names(metrics, splits)
    if strategy != "auto" and strategy not in strategies.STRATEGIES:
        raise InputError(f"`strategy` (={strategy!r}) must be one of: auto, "
                         f"{', '.join(strategies.STRATEGIES)}", param="strategy")
    if plane.ndim != grid.ndim:
        raise InputError(f"a {plane.ndim}D plane cannot be scanned over a {grid.ndim}D grid")
    given_mesh = mesh is not None
    mesh = mesh or default_mesh()
    grid.checked_size(len(names))
    todo = todo_points(grid, done)
    if not todo.size:
        return {name: np.full(grid.shape, np.nan) for name in names}
    if batch_size is not None and batch_size < 1:
        raise InputError(f"`batch_size` (={batch_size}) must be >= 1", param="batch_size")
    single = jax.process_count() == 1  # processes must agree: no sizing from memory, no retry
    eval_batch = _eval_batch(objective, plane, splits, mesh, batch_size, auto=single)
    setups: dict[tuple[int, int | None], _Setup] = {}

    def setup_on(devices: int, batch: int | None = eval_batch) -> _Setup:
        """The data placed on the first ``devices`` devices, in batches of ``batch``."""
        if (devices, batch) not in setups:
            sub = mesh if devices == mesh.devices.size else _first_devices(mesh, devices)
            setups[devices, batch] = _Setup.build(_batched(objective, batch), plane, splits,
                                                  tuple(metrics), sub, use_stem=stem,
                                                  cut_streams=batch is not None)
        return setups[devices, batch]

    total = mesh.devices.size
    # On a CPU, one device runs each op on every core (XLA's intra-op threads) where one device
    # per core runs one op per core: which is faster depends on the model (measured: points in
    # sequence on one device are 2x faster than on two for convnets and the GPT). Not when the
    # caller chose the mesh, nor across processes.
    counts = ((total, 1) if total > 1 and not given_mesh and probe
              and mesh.devices.flat[0].platform == "cpu" else (total,))
    base = setup_on(total)
    default = strategies.rule_of_thumb(base.has_conv)

    def devices_for(name: str) -> int:
        return min(counts) if name == "map" else total

    fixed = strategy if strategy != "auto" else None
    key = strategies.fingerprint(base.jaxpr_text, base.shapes_text, tuple(metrics), chunk,
                                 counts)
    cached = None if fixed or not probe else strategies.remembered(choices, key)
    first = None
    if fixed or cached:
        name = fixed or cached["strategy"]
        devices = (devices or devices_for(name)) if fixed else cached.get("devices", total)
        if devices not in counts:
            devices = total
        size_wanted = cached["chunk"] if cached and chunk is None else chunk
        dispatch, size = setup_on(devices).program(name, size_wanted, todo.size)
        plan = strategies.Plan(name, size, "forced" if fixed else "cache",
                               {} if fixed else dict(cached.get("rates", {})), base.stem_name,
                               devices, eval_batch)
    else:
        _, default_size = setup_on(devices_for(default)).program(default, chunk, todo.size)
        if not probe or todo.size < strategies.PROBE_MIN_CHUNKS * default_size:
            devices = devices_for(default)
            dispatch, size = setup_on(devices).program(default, chunk, todo.size)
            plan = strategies.Plan(default, size, "rule", {}, base.stem_name, devices,
                                   eval_batch)
        else:
            def candidate(label):
                name, devices = strategies.parse_label(label)
                run, size = setup_on(devices).program(name, chunk, todo.size)
                coords = chunk_coordinates(grid, todo[:size], size)
                return (lambda: run(coords)), size

            labels = [strategies.label(name, n) for name in strategies.STRATEGIES for n in counts]
            default_label = strategies.label(default, devices_for(default))
            try:
                winner, rates, first = strategies.probe(candidate, labels, default_label,
                                                        todo=todo.size)
            except Exception as exc:  # a candidate ran out of memory: the rule, shrunk below
                if not is_out_of_memory(exc):
                    raise
                winner, rates, first = default_label, {}, None
            name, devices = strategies.parse_label(winner)
            dispatch, size = setup_on(devices).program(name, chunk, todo.size)
            source = "probe" if len(rates) > 1 else "rule"
            plan = strategies.Plan(name, size, source, rates, base.stem_name, devices,
                                   eval_batch)
            if choices is not None and source == "probe":
                choices[key] = {"strategy": name, "chunk": size, "devices": devices,
                                "rates": rates}
    if on_plan is not None:
        on_plan(plan)
    return _run_shrinking(plan, dispatch, first, setup_on, tuple(sorted(names)), grid, todo,
                          on_chunk=on_chunk, on_plan=on_plan, on_shrink=on_shrink, retry=single)


def _run_shrinking(plan: strategies.Plan, dispatch, first, setup_on, names, grid: Grid,
                   todo: np.ndarray, *, on_chunk, on_plan, on_shrink, retry: bool
                   ) -> dict[str, np.ndarray]:
    """Run ``plan`` over the points ``todo``; a chunk that runs out of device memory is
    retried (with the points not yet finished) at half the chunk, down to a point per device,
    then at half the evaluation batch, down to one sample."""
    results = {name: np.full(grid.num_points, np.nan) for name in names}
    finished = np.zeros(grid.num_points, bool)
    current = {"plan": plan, "dispatch": dispatch, "first": first}

    def keep(index: np.ndarray, values: dict[str, np.ndarray]) -> None:
        for name in names:
            results[name][index] = values[name]
        finished[index] = True
        if on_chunk is not None:
            on_chunk(index, values)

    def at_batch(batch: int | None) -> None:
        def at_chunk(size: int) -> None:
            left = todo[~finished[todo]]
            if not left.size:
                return
            known = current["plan"]
            if (size, batch) != (known.chunk, known.eval_batch):
                setup = setup_on(known.devices, batch)
                current["dispatch"], size = setup.program(known.strategy, size, left.size)
                current["plan"] = dataclasses.replace(known, chunk=size, eval_batch=batch)
                if on_plan is not None:
                    on_plan(current["plan"])
            first, current["first"] = current["first"], None  # a probe's chunk, used once
            run_chunks(current["dispatch"], size, names, grid, left, on_chunk=keep, first=first)

        devices = current["plan"].devices
        return halve_on_oom(at_chunk, current["plan"].chunk, what="chunk", on_shrink=on_shrink,
                            minimum=current["plan"].chunk if not retry else devices,
                            multiple=devices)

    # A stream is read in its own batches until they are cut (at half the first one's size).
    start = plan.eval_batch or setup_on(plan.devices).stream_batch
    if start is None or not retry:
        at_batch(plan.eval_batch)
    else:
        halve_on_oom(lambda batch: at_batch(plan.eval_batch if batch == start else batch), start,
                     what="eval batch", on_shrink=on_shrink)
    return {name: value.reshape(grid.shape) for name, value in results.items()}


def _first_devices(mesh: Mesh, count: int) -> Mesh:
    return jax.make_mesh((count,), mesh.axis_names, axis_types=(jax.sharding.AxisType.Auto,),
                         devices=list(mesh.devices.flat)[:count])


@dataclasses.dataclass(eq=False)
class _Setup:
    """Everything a scan's programs share: placed data, the stem, the loss's description."""

    objective: Objective
    splits: tuple[str, ...]
    metrics: tuple[str, ...]
    mesh: Mesh
    resident: bool
    stem: _Stem | None
    has_conv: bool
    jaxpr_text: str
    shapes_text: str
    cut_streams: bool = False  # streamed batches are cut to the objective's batch size
    constants: tuple = ()
    _programs: dict = dataclasses.field(default_factory=dict)

    @property
    def stem_name(self) -> str | None:
        return None if self.stem is None else self.stem.name

    @property
    def stream_batch(self) -> int | None:
        """Samples in the first streamed batch (None when the data are placed on the devices)."""
        if self.resident:
            return None
        return batch_size_of(_first_batch(self.streams[self.splits[0]], self.objective.batch_size))

    @classmethod
    def build(cls, objective: Objective, plane: Plane, splits, metrics, mesh: Mesh, *,
              use_stem: bool, cut_streams: bool = False) -> _Setup:
        datasets = {split: objective.dataset(split) for split in splits}
        resident = all(isinstance(d, Dataset) for d in datasets.values()) and (
            sum(d.nbytes for d in datasets.values()) * mesh.devices.size
            <= _memory_budget(mesh))
        first = _first_batch(datasets[splits[0]], objective.batch_size)
        params = shapes_of(plane.origin)
        # The first trace of the loss: a user's loss that fails says so in one line.
        with jax.disable_jit(), user_code(f"the loss of `{objective.name}`"):
            closed = jax.make_jaxpr(objective.loss)(params, objective.state, shapes_of(first))
        has_conv = any(eqn.primitive.name == "conv_general_dilated" for eqn in closed.jaxpr.eqns)
        numbers = sizing.device_numbers(mesh.devices.flat[0])
        stem = (_Stem.find(objective.loss, plane, objective.state, first, numbers) if use_stem
                else None)
        shapes = [(split, _data_shapes(d, objective.batch_size)) for split, d in datasets.items()]
        setup = cls(objective, tuple(splits), metrics, mesh, resident, stem, has_conv,
                    str(closed), str(shapes + [cut_streams]), cut_streams)
        setup._place(plane, datasets)
        return setup

    def _place(self, plane: Plane, datasets: dict) -> None:
        replicated = NamedSharding(self.mesh, PartitionSpec())
        placed_plane = put_global(plane.bare(), replicated)
        state = put_global(self.objective.state, replicated)
        if not self.resident:
            self.constants = (placed_plane, state)
            self.streams = datasets
            return
        batches = {split: d.split_batches(self.objective.batch_size) for split, d in datasets.items()}
        batches = put_global(batches, replicated)
        products = {}
        if self.stem is not None:
            products = self.stem.shared_products(placed_plane, state, batches, replicated,
                                                 _memory_budget(self.mesh), self._key())
            if products is None:  # too large to keep: computed once per batch and chunk instead
                products = {}
        self.constants = (placed_plane, {"state": state, "batches": batches, "products": products})

    def program(self, name: str, chunk: int | None, todo: int
                ) -> tuple[Callable[[np.ndarray], dict[str, jax.Array]], int]:
        """``(dispatch(coords) -> pending outputs, chunk size)`` for strategy ``name``."""
        cap = strategies.MAP_MAX_POINTS_PER_DEVICE if name == "map" else None
        if self.resident:
            fn = _resident_chunk_fn(self.objective.loss, self.metrics, self.splits, name, self.stem)
            program = compile_chunks(fn, self.constants, self.mesh, todo=todo, chunk=chunk,
                                     max_per_device=cap, key=self._key(name, "resident"))
            constants = self.constants
            return (lambda coords: program.dispatch(coords, constants)), program.chunk
        return self._streamed(name, chunk, todo, cap)

    def _key(self, *parts: Hashable) -> Hashable:
        return (self.objective.identity, self.metrics, self.splits, self.stem_name,
                self.shapes_text, *parts)

    def _streamed(self, name: str, chunk: int | None, todo: int, cap: int | None):
        replicated = NamedSharding(self.mesh, PartitionSpec())
        placed_plane, state = self.constants
        fns = {split: _batch_fn(self.objective.loss, self.metrics, name, self.stem, split)
               for split in self.splits}
        size = {"chunk": chunk}

        def program_for(split: str, batch: Any):
            data = {"state": state, "batch": put_global(batch, replicated)}
            program = compile_chunks(fns[split], (placed_plane, data), self.mesh, todo=todo,
                                     chunk=size["chunk"], max_per_device=cap,
                                     key=self._key(name, "streamed", split))
            size["chunk"] = program.chunk  # every batch shape runs at the first one's size
            return program, data

        batch_size = self.objective.batch_size
        cut = batch_size if self.cut_streams else None
        program_for(self.splits[0], _first_batch(self.streams[self.splits[0]], batch_size, cut))

        def dispatch(coords: np.ndarray) -> dict[str, jax.Array]:
            out = {}
            for split in self.splits:
                sums, count = None, 0
                for batch in _iterate(self.streams[split], batch_size, cut):
                    program, data = program_for(split, batch)
                    part = program.dispatch(coords, (placed_plane, data))
                    sums = part if sums is None else jax.tree.map(jnp.add, sums, part)
                    count += batch_size_of(batch)
                if sums is None:
                    raise InputError(f"the `{split}` data yielded no batch")
                out.update({name: value / count for name, value in sums.items()})
            return out

        return dispatch, size["chunk"]


def _resident_chunk_fn(loss, metrics, splits, strategy: str, stem: _Stem | None):
    def chunk_fn(coords, plane, data):
        state, out = data["state"], {}
        for split in splits:
            full, rest = data["batches"][split]
            shared = data["products"].get(split, (None, None))
            items = [None if batch is None else (batch, prods)
                     for batch, prods in zip((full, rest), shared)]
            means = mean_over_batches(
                lambda item: _batch_means(loss, stem, strategy, coords, plane, state, *item),
                *items)
            for metric in metrics:
                out[f"{split}_{metric}"] = means[metric] * (ACC_PERCENT if metric == "acc" else 1.0)
        return out

    return chunk_fn


def _batch_fn(loss, metrics, strategy: str, stem: _Stem | None, split: str):
    """One batch's weighted sums for a chunk of points (data streamed from the host)."""

    def batch_fn(coords, plane, data):
        batch, n = data["batch"], batch_size_of(data["batch"])
        means = _batch_means(loss, stem, strategy, coords, plane, data["state"], batch, None)
        return {f"{split}_{metric}": means[metric] * n * (ACC_PERCENT if metric == "acc" else 1.0)
                for metric in metrics}

    return batch_fn


def _batch_means(loss, stem: _Stem | None, strategy: str, coords, plane: Plane, state, batch,
                 products) -> dict[str, jax.Array]:
    """``{"loss": (chunk,), **metrics}``: the batch's means at every point of the chunk."""
    if stem is not None and products is None:
        products = stem.products(plane, state, batch)

    def at_point(ab):
        theta = point_params(plane, ab[0], ab[1])
        if stem is None:
            value, metrics = loss(theta, state, batch)
        else:  # [1, α, β] · (origin, d1, d2) products: one small dot
            weights = jnp.stack([jnp.ones_like(ab[0]), ab[0], ab[1]])[: products.shape[0]]
            pre = jnp.tensordot(weights, products, axes=1)
            value, metrics = stem.split_for(batch).finish(theta, state, batch, pre)
        return {"loss": value, **metrics}

    if strategy == "vmap":
        return jax.vmap(at_point)(coords)
    return jax.lax.map(at_point, coords)


class _Stem:
    """The loss's first layer (see :mod:`landscape.engine.stem`), for every batch shape."""

    def __init__(self, loss, params, state, split: StemSplit, name: str, batch_shapes: Hashable,
                 numbers: sizing.DeviceNumbers, num_products: int):
        self.loss, self.params, self.state = loss, params, state
        self.leaf, self.name = split.leaf, name
        self.numbers, self.num_products = numbers, num_products
        self._splits = {batch_shapes: split}

    @classmethod
    def find(cls, loss, plane: Plane, state, batch, numbers: sizing.DeviceNumbers
             ) -> _Stem | None:
        """The loss's first layer where sharing its products pays on a device of these
        ``numbers`` (:func:`~landscape.engine.stem.shares_first_layer`), else None."""
        params = shapes_of(plane.origin)
        split = split_at_stem(loss, params, state, shapes_of(batch))
        products = 2 if plane.d2 is None else 3
        if split is None or not shares_first_layer(split, numbers, products=products):
            return None
        paths = jax.tree_util.tree_flatten_with_path(plane.origin)[0]
        return cls(loss, params, shapes_of(state), split, leaf_path(paths[split.leaf][0]),
                   _avals(batch), numbers, products)

    def split_for(self, batch) -> StemSplit:
        key = _avals(batch)
        if key not in self._splits:
            split = split_at_stem(self.loss, self.params, self.state, shapes_of(batch))
            if split is None or split.leaf != self.leaf:
                raise InputError("the loss's first layer differs between batch shapes")
            self._splits[key] = split
        return self._splits[key]

    def products(self, plane: Plane, state, batch) -> jax.Array:
        """(2 or 3, *layer output): the layer applied to the origin's and directions' kernels."""
        split = self.split_for(batch)
        kernels = [jax.tree.leaves(tree)[self.leaf] for tree in (plane.origin, plane.d1, plane.d2)
                   if tree is not None]
        return jnp.stack([split.products(kernel, state, batch) for kernel in kernels])

    def shared_products(self, plane: Plane, state, batches, sharding, budget: int, key: Hashable):
        """``{split: (full products (num_batches, k, ...), rest products)}`` computed once on
        the devices, or None when they would take more than ``budget`` bytes."""
        def of(plane, state, full, rest):
            pf = None if full is None else jax.lax.map(lambda b: self.products(plane, state, b), full)
            pr = None if rest is None else self.products(plane, state, rest)
            return pf, pr

        def compute(plane, state, batches):
            return {split: of(plane, state, *pair) for split, pair in batches.items()}

        shapes = jax.eval_shape(compute, plane, state, batches)
        nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
        split = next(iter(self._splits.values()))
        if first_layer_plan(split, self.numbers, products=self.num_products, budget=budget,
                            nbytes=nbytes * sharding.mesh.devices.size) != "kept":
            return None
        return cached_jit(("products", key, sharding), compute, out_shardings=sharding)(
            plane, state, batches)


def _avals(batch) -> Hashable:
    leaves, treedef = jax.tree.flatten(batch)
    return treedef, tuple((np.shape(x), np.dtype(x.dtype)) for x in leaves)


def _memory_budget(mesh: Mesh) -> int:
    devices = list(mesh.devices.flat)
    if devices[0].platform == "cpu":  # one host memory shared by every CPU device
        return int(sizing.device_memory_budget(devices[0]) * RESIDENT_MEMORY_FRACTION)
    return int(min(sizing.device_memory_budget(d) for d in devices) * RESIDENT_MEMORY_FRACTION
               * len(devices))


def _eval_batch(objective: Objective, plane: Plane, splits, mesh: Mesh, batch_size: int | None,
                *, auto: bool) -> int | None:
    """Samples per evaluated batch of in-memory data: ``batch_size`` if given, else (``auto``)
    from the device (:func:`~landscape.engine.sizing.eval_batch_size`), else the objective's.
    None for streamed data, read in the batches it comes in."""
    datasets = [objective.dataset(split) for split in splits]
    if not all(isinstance(d, Dataset) for d in datasets):
        return None
    if batch_size is not None:
        return batch_size
    device = mesh.devices.flat[0]
    if not auto or device.platform == "cpu":
        return objective.batch_size
    probe = next(datasets[0].batches(sizing.PROBE_SAMPLES))
    per_sample = sizing.bytes_per_sample(objective.loss, (shapes_of(plane.origin),
                                                          shapes_of(objective.state)),
                                         shapes_of(probe))
    return sizing.eval_batch_size(per_sample, device, default=objective.batch_size,
                                  num_samples=max(len(d) for d in datasets))


def _batched(objective: Objective, batch: int | None) -> Objective:
    return objective if batch is None else objective.replace(batch_size=batch)


def _iterate(data, batch_size: int, cut: int | None = None):
    """``data``'s batches: a stream's as they come (cut into pieces of at most ``cut``
    samples when given), a dataset's of ``batch_size``."""
    if not isinstance(data, Batches):
        return data.batches(batch_size)
    if cut is None:
        return iter(data)
    return (jax.tree.map(lambda a, start=start: a[start:start + cut], batch)
            for batch in data for start in range(0, batch_size_of(batch), cut))


def _first_batch(data, batch_size: int, cut: int | None = None):
    for batch in _iterate(data, batch_size, cut):
        return batch
    raise InputError("the data yielded no batch")


def _data_shapes(data, batch_size: int) -> Any:
    if isinstance(data, Dataset):
        return (len(data), batch_size, np.shape(data.inputs)[1:], str(np.asarray(data.inputs).dtype))
    return ("stream", str(_avals(_first_batch(data, batch_size))))
