"""The resumable scan: a plane, the engine, and a surface file that survives being killed.

:func:`scan_surface` evaluates an :class:`~landscape.objective.Objective` over a grid on a plane
into a surface file (or in memory): it creates the file, or resumes it when it was made with the
same arguments (the same strategy as recorded, so a resumed file is bit-identical to an
uninterrupted one, and the precision it recorded), journals every finished chunk, records the
engine's plan, and folds everything (trajectories included) into the file at the end. ``landscape scan`` and ``compare``
are thin shells over it; :func:`landscape.surface` is its one-call form for any JAX model.

Only process 0 of a multi-process run writes; the others evaluate their share.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import jax
import numpy as np

from landscape import distributed, fingerprint
from landscape.directions import Plane
from landscape.engine import STRATEGIES, Plan, evaluate_surface
from landscape.engine.memory import OnShrink
from landscape.errors import InputError, ReadError
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.io.surface_record import SurfaceRecord
from landscape.io.surface_writer import SurfaceWriter
from landscape.objective import Objective
from landscape.precision import PRECISIONS, UNRECORDED, check_precision, computing_in
from landscape.precision import DEFAULT as DEFAULT_PRECISION
from landscape.surfaces import Surface

SURFACE_FILE = "surface.h5"
STRATEGY_CODES = {name: i + 1 for i, name in enumerate(STRATEGIES)}  # for broadcasting


DIRECTION_KINDS = ("filter", "layer", "random", "pca", "interp", "hessian")


def make_plane(kind: str, params: Any, *, objective: Objective | None = None, seed: int = 0,
               normalization: str | None = None, ignore: str | None = None, dims: int = 2,
               same: bool = False, orthogonal: bool = False,
               trajectory: Sequence[Any] | None = None, ends: Sequence[Any] = (),
               output_axis: Any = "last") -> Plane:
    """The plane through ``params`` of a direction kind:

    - ``filter``, ``layer``: Gaussian directions normalized per filter / per layer (Li et al.
      2018), ``random``: Gaussian, normalized by ``normalization`` (default none);
    - ``pca``: the top principal components of ``trajectory`` (parameter pytrees in order; the
      plane passes through its last point);
    - ``interp``: the line to ``ends[0]`` (α = 1), or the plane through ``params`` and two ends;
    - ``hessian``: the top Hessian eigenvectors of ``objective`` at ``params``.

    ``ignore`` (``biasbn`` or ``none``) applies to random and PCA directions; its default is
    ``biasbn`` for random ones and ``none`` for PCA (Li et al.'s defaults). ``output_axis``:
    the params' layout for both (``"last"``, Flax's; ``"first"``, PyTorch's and Equinox's; or
    per leaf: :mod:`landscape.directions`).
    """
    from landscape import directions

    if kind not in DIRECTION_KINDS:
        raise InputError(f"`directions` (={kind!r}) must be one of: {', '.join(DIRECTION_KINDS)}",
                         param="directions")
    if kind == "pca":
        if not trajectory:
            raise InputError("`directions` pca needs the recorded trajectory", param="trajectory")
        return directions.pca_plane(list(trajectory), dims=dims, ignore=ignore or "none",
                                    output_axis=output_axis)
    if kind == "interp":
        if len(ends) != dims:
            raise InputError(f"`directions` interp on a {'line' if dims == 1 else 'plane'} needs "
                             f"{dims} end point{'s' * (dims > 1)}, got {len(ends)}", param="to")
        return directions.interpolation_plane(params, *ends)
    if kind == "hessian":
        from landscape.curvature import hessian_plane

        if objective is None:
            raise InputError("`directions` hessian needs the objective", param="directions")
        return hessian_plane(objective, params, objective.state, dims=dims, seed=seed)
    normalization = normalization or {"random": "none"}.get(kind, kind)
    return directions.random_plane(params, seed=seed, normalization=normalization,
                                   ignore=ignore or "biasbn", output_axis=output_axis,
                                   dims=dims, same=same, orthogonal=orthogonal)


def scan_spec(provenance: Mapping[str, Any], grid: Grid, *, metrics: Sequence[str],
              splits: Sequence[str], samples: Mapping[str, Any] | None = None,
              precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """The arguments that define a scan: ``provenance`` (how the model and plane were made),
    the metrics and splits, the data subset (``samples``), the precision and the grid's axes.
    A file is resumed only under the same spec."""
    def axis(a):  # MIN, MAX, N where the axis is their linspace (as specs make), else its points
        if a is None:
            return None
        if np.array_equal(a, np.linspace(a[0], a[-1], len(a))):
            return [float(a[0]), float(a[-1]), len(a)]
        return {"points": [float(v) for v in a]}

    spec = {**provenance, "metrics": list(metrics), "splits": list(splits),
            "precision": precision}
    if samples:
        spec["samples"] = dict(samples)
    return {**spec, "x": axis(grid.x), "y": axis(grid.y)}


def existing_surface(path: str | os.PathLike, spec: Mapping[str, Any], *,
                     overwrite: bool = False, fingerprints: Mapping[str, Any] | None = None,
                     names: Sequence[str] = ()) -> surface_h5.Surface | None:
    """The surface file at ``path`` when it can be resumed under ``spec`` (None when there is
    none, or ``overwrite``); one made with other arguments, or (of ``fingerprints``, the kinds
    known so far) from another model, directions, data or environment, raises
    :class:`~landscape.errors.ResumeMismatch`, and one lacking a dataset of ``names`` raises
    :class:`~landscape.errors.ReadError`. The one decision between creating, resuming and
    refusing a file: :func:`scan_surface` makes it, and :func:`finished_surface` before any
    training."""
    if overwrite or not os.path.exists(path):
        return None
    record = SurfaceRecord(spec=dict(spec), fingerprints=None if fingerprints is None
                           else dict(fingerprints))
    existing = surface_h5.read(path)
    surface_h5.check_resumable(path, existing, record.to_attrs())
    missing = [name for name in names if name not in existing.values]
    if missing:
        raise ReadError(f"{os.fspath(path)} lacks the dataset `{missing[0]}` its arguments "
                        "need; pass --overwrite to scan it again")
    return existing


def finished_surface(path: str | os.PathLike, spec: Mapping[str, Any], names: Sequence[str], *,
                     overwrite: bool = False, fingerprints: Mapping[str, Any] | None = None,
                     lock: bool = True) -> Surface | None:
    """The surface file at ``path`` when a scan under ``spec`` would have nothing left to do
    (every point done; the journal of a scan killed after its last chunk folded in, under the
    file's lock unless ``lock=False``), else None; a file that cannot be resumed is refused as
    :func:`existing_surface` refuses it. For checking before training a model: a finished scan
    returns without it, a mismatched one fails before minutes of training."""
    existing = existing_surface(path, spec, overwrite=overwrite, fingerprints=fingerprints,
                                names=names)
    if existing is None or not existing.done.all():
        return None
    if os.path.exists(surface_h5.journal_path(path)):
        with SurfaceWriter(path, lock=lock) as file:
            file.finish()
    return Surface.of(surface_h5.read(path), os.fspath(path))


PRECISION_CODES = {name: i + 1 for i, name in enumerate(PRECISIONS)}  # for broadcasting


def resumed_precision(path: str | os.PathLike | None, precision: str | None = None, *,
                      overwrite: bool = False) -> str:
    """The precision a scan into ``path`` computes in: ``precision`` if given, else the one an
    existing file there recorded (as a resume keeps its strategy), else ``highest``. A file
    recorded at another precision than the one given is refused
    (:class:`~landscape.errors.ResumeMismatch`) unless ``overwrite``; a file written before
    precision was recorded counts as ``highest`` (it was computed in float32). On every process
    of a multi-process run (the writer reads the file)."""
    if precision is not None:
        check_precision(precision)
    recorded = None
    if path is not None and not overwrite and distributed.is_writer() and os.path.exists(path):
        try:
            spec = SurfaceRecord.from_attrs(surface_h5.read_attrs(path)).spec
        except ReadError:  # said by the resume itself, with what to do about it
            spec = None
        if spec is not None:  # a scan of ours: Li et al.'s files record nothing
            recorded = spec.get("precision", UNRECORDED)
        if recorded is not None and recorded not in PRECISIONS:
            raise ReadError(f"{os.fspath(path)} records the precision {recorded!r}, none of "
                            f"{', '.join(PRECISIONS)}; use --overwrite to start the scan again")
        if recorded is not None and precision not in (None, recorded):
            from landscape.errors import ResumeMismatch

            raise ResumeMismatch(
                f"{os.fspath(path)} was made with other arguments (`precision` is {recorded!r} "
                f"in the file, {precision!r} now; give none to resume at the recorded one)")
    chosen = precision or recorded or DEFAULT_PRECISION
    if path is not None and jax.process_count() > 1:
        code = distributed.broadcast_from_writer(np.array(PRECISION_CODES.get(chosen, 0)))
        chosen = {v: k for k, v in PRECISION_CODES.items()}.get(int(code), chosen)
    return check_precision(chosen)


def scan_surface(
    objective: Objective,
    plane: Plane,
    grid: Grid,
    *,
    out: str | os.PathLike | None = None,
    metrics: Sequence[str] = ("loss",),
    splits: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    train_loss: float | None = None,
    overwrite: bool = False,
    chunk: int | None = None,
    eval_batch_size: int | None = None,
    strategy: str = "auto",
    samples: Mapping[str, Any] | None = None,
    precision: str | None = None,
    trajectories: Mapping[str, Mapping[str, np.ndarray | None]] | None = None,
    lock: bool = True,
    choices: MutableMapping | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_shrink: OnShrink | None = None,
) -> Surface:
    """Evaluate ``objective`` over ``grid`` on ``plane``; with ``out`` (a surface file's path),
    into that file, resuming it.

    Args:
      metrics, splits: what to evaluate (``loss``, ``acc`` ...; ``train``, ``test`` ...).
      provenance: how the model and plane were made (stored in the file's spec; a file is
        resumed only with an equal spec).
      train_loss: the model's full-train-set loss, stored beside the provenance.
      overwrite: replace a file made with other arguments instead of refusing.
      chunk, strategy: as :func:`landscape.engine.evaluate_surface`; a resumed file keeps the
        strategy and chunk it recorded (another ``strategy`` forced on it is refused).
      eval_batch_size: samples per evaluated batch (memory only: the means are exact; default:
        the objective's on a CPU, from the free device memory on an accelerator); a resumed
        file keeps the one it recorded unless another is given.
      samples: how the objective's data were subset (``{"num", "seed", "stratified"}``), stored.
      precision: of the float32 products and convolutions (:mod:`landscape.precision`):
        ``highest`` (default for a new file), ``default``, ``bfloat16``; stored in the file and
        its spec. A resumed file keeps the one it recorded (another one given is refused).
      trajectories: ``{name: {"x", "y", "loss", "step", ...}}`` paths on the plane, stored.
      lock: hold the file's lock (``False``: the caller holds it).
      choices: where the engine remembers its strategy choices.
      on_plan: called with the engine's plan before the first chunk.
      on_progress: ``on_progress(points done, total)``, at the start and after every chunk.
      on_shrink: ``on_shrink(old, new, what)`` when a chunk or an evaluation batch ran out of
        device memory and is retried at half the size (the file records the final sizes).

    Returns:
      The :class:`~landscape.surfaces.Surface` (read back from the file when there is one).
    """
    splits = tuple(splits or objective.splits[:1])
    names = objective.metric_names(metrics, splits)
    precision = resumed_precision(out, precision, overwrite=overwrite)
    spec = scan_spec(provenance or {}, grid, metrics=metrics, splits=splits, samples=samples,
                     precision=precision)
    writer = distributed.is_writer()
    # What the points are computed from, so that a resume proves it continues this computation.
    prints = None if out is None or not writer else fingerprint.of_surface(
        plane.origin, objective.state, plane, {split: objective.data[split] for split in splits})
    record = SurfaceRecord.of_plane(plane, workload=objective.name, spec=spec,
                                    train_loss_at_origin=train_loss,
                                    samples=None if not samples else dict(samples),
                                    precision=precision, fingerprints=prints)
    if eval_batch_size is not None and eval_batch_size < 1:
        raise InputError(f"`eval_batch_size` (={eval_batch_size}) must be >= 1",
                         param="eval_batch_size")
    options = dict(metrics=metrics, splits=splits, chunk=chunk, strategy=strategy,
                   choices=choices, on_plan=on_plan, batch_size=eval_batch_size,
                   on_shrink=on_shrink)
    if out is None:
        with computing_in(precision):
            return _in_memory(objective, plane, grid, record, trajectories, on_progress,
                              **options)
    path = os.fspath(out)
    with SurfaceWriter(path, lock=lock and writer) as file:
        done, recorded = None, {}
        if writer:
            existing = existing_surface(path, spec, overwrite=overwrite, fingerprints=prints,
                                        names=names)
            if existing is not None:
                recorded = _recorded(existing, strategy, chunk, eval_batch_size)
                options.update(recorded)
            _, done = file.open(grid, names, plane, record, overwrite=overwrite)
        done = distributed.broadcast_from_writer(done if writer else np.zeros(grid.shape, bool))
        if jax.process_count() > 1:  # every process must run the same programs: no timing probe
            options.update(_shared_plan(recorded), probe=False)
        total = grid.num_points
        count = [int(done.sum())]
        if on_progress is not None:
            on_progress(count[0], total)

        reported: list[Plan] = []

        def plan_chosen(plan: Plan) -> None:
            if recorded:  # the file's own plan, already stored
                plan = dataclasses.replace(plan, source="recorded")
            if writer and (not recorded or reported):  # a new file's plan, or a shrunk one
                file.set_attrs({"strategy": plan.record()})
            reported.append(plan)
            if on_plan is not None:
                on_plan(plan)

        def flush(index: np.ndarray, values: dict[str, np.ndarray]) -> None:
            if writer:
                file.write_points(index, values)
            count[0] += len(index)
            if on_progress is not None:
                on_progress(count[0], total)

        finished = bool(done.all())
        if not finished:
            with computing_in(precision):
                evaluate_surface(objective, plane, grid, done=done, on_chunk=flush,
                                 **{**options, "on_plan": plan_chosen})
        if not writer:
            return Surface.of(_empty(grid, names, record), None)
        # A file finished before this call is left as it is, unless a path is new to it (its
        # pending journal was folded in when it was opened).
        if not finished or set(trajectories or ()) - set(surface_h5.read(path).trajectories):
            file.finish(trajectories)
    return Surface.of(surface_h5.read(path), path)


def _shared_plan(recorded: dict) -> dict:
    """The writer's recorded strategy, chunk and evaluation batch, on every process."""
    code = np.array([STRATEGY_CODES.get(recorded.get("strategy"), 0), recorded.get("chunk") or 0,
                     recorded.get("batch_size") or 0])
    code = distributed.broadcast_from_writer(code)
    if not code[0]:
        return {}
    return {"strategy": STRATEGIES[int(code[0]) - 1], "chunk": int(code[1]),
            **({"batch_size": int(code[2])} if code[2] else {})}


def _recorded(existing: surface_h5.Surface, strategy: str, chunk: int | None,
              eval_batch: int | None = None) -> dict:
    """The engine options a resumed file recorded: its strategy, chunk, devices and evaluation
    batch (``chunk`` and ``eval_batch`` when given replace theirs)."""
    plan = SurfaceRecord.from_attrs(existing.attrs).strategy
    if not plan or plan.get("strategy") not in ("vmap", "map") or not isinstance(
            plan.get("chunk"), int):
        return {}
    if strategy not in ("auto", plan["strategy"]):
        raise InputError(f"`strategy` (={strategy}) differs from the {plan['strategy']!r} this "
                         "file was scanned with: resuming keeps it (or overwrite the file)",
                         param="strategy")
    devices, batch = plan.get("devices"), eval_batch or plan.get("eval_batch")
    return {"strategy": plan["strategy"], "chunk": chunk or plan["chunk"],
            **({"devices": devices} if isinstance(devices, int) and devices > 0 else {}),
            **({"batch_size": batch} if isinstance(batch, int) and batch > 0 else {})}


def _in_memory(objective, plane, grid, record: SurfaceRecord, trajectories, on_progress,
               **options) -> Surface:
    plans: list[Plan] = []
    user_plan = options.pop("on_plan")
    count = [0]

    def plan_chosen(plan: Plan) -> None:
        plans.append(plan)
        if user_plan is not None:
            user_plan(plan)

    def progress(index, values) -> None:
        count[0] += len(index)
        if on_progress is not None:
            on_progress(count[0], grid.num_points)

    values = evaluate_surface(objective, plane, grid, on_chunk=progress, on_plan=plan_chosen,
                              **options)
    if plans:  # the last: smaller after running out of memory
        record = dataclasses.replace(record, strategy=plans[-1].record())
    directions = {key: getattr(plane, key) for key in ("origin", "d1", "d2")
                  if getattr(plane, key) is not None}
    done = np.ones(grid.shape, bool)  # every point evaluated (non-finite values are data)
    attrs = {key: surface_h5.attr_value(v) for key, v in record.to_attrs().items()}
    return Surface(grid, values, done, attrs, directions,
                   {name: dict(columns) for name, columns in (trajectories or {}).items()})


def _empty(grid: Grid, names: list[str], record: SurfaceRecord) -> surface_h5.Surface:
    return surface_h5.Surface(grid, {n: np.full(grid.shape, np.nan) for n in names},
                              np.zeros(grid.shape, bool), record.to_attrs(), {}, {})
