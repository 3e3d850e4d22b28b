"""A model's scan as ``landscape scan`` makes it: the plane (random, PCA, interpolation,
Hessian or stored directions), the default grid, the checks that refuse a bad or finished
output before any training, the resumable scan and its figures, in one call::

    model, run = landscape.open_run("runs/adam")
    result = landscape.scan_model(model, run, out="pca", kind="pca")
    result.files        # [pca/surface.h5, pca/surface.png]

A model still to be trained is a :class:`ModelToTrain` (its workload and description known,
its training deferred): the checks run first, then it is trained, then scanned — a mismatched
``out/surface.h5`` fails at once rather than after minutes of training.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from landscape.engine import Plan
from landscape.engine.memory import OnShrink
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.io.stored_directions import StoredDirections
from landscape.scan import DIRECTION_KINDS, SURFACE_FILE
from landscape.sources import ModelSource
from landscape.surfaces import Surface

ESTIMATE_FROM_S = 10.0  # scans expected to take less are not announced
RANDOM_KINDS = ("filter", "layer", "random")


@dataclasses.dataclass(frozen=True)
class ModelToTrain:
    """A model not trained yet: its ``workload`` and ``description`` (the provenance its outputs
    record) are what the checks before training need; ``train(precision)`` makes the
    :class:`~landscape.sources.ModelSource`, called only once they pass."""

    workload: Any  # landscape.Workload
    description: dict
    train: Callable[[str], ModelSource]


def adam_model(workload_name: str, *, steps: int, lr: float, seed: int = 0,
               workload: Any = None, on_step: Callable[[], None] | None = None) -> ModelToTrain:
    """``workload_name`` (``workload``: already loaded) to be trained with Adam as
    :func:`landscape.sources.trained_model` trains it (``on_step()`` after every step)."""
    from landscape.data import get_workload
    from landscape.sources import adam_description, trained_model

    workload = workload or get_workload(workload_name)

    def train(precision: str) -> ModelSource:
        return trained_model(workload_name, steps=steps, lr=lr, seed=seed, workload=workload,
                             precision=precision, on_step=on_step)

    return ModelToTrain(workload, adam_description(workload_name, lr=lr, steps=steps, seed=seed),
                        train)


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_model` made: the ``surface``, the ``files`` written (``surface.h5`` and
    its figures), whether the file was ``finished`` before the call (nothing computed), a
    ``note`` on non-finite points (None: all finite) and the lines of ``landscape check`` on
    the file (``checks``). On a process of a multi-process run that does not write: no files,
    no checks, and no surface when the file was finished."""

    surface: Surface | None
    files: list[str]
    finished: bool = False
    note: str | None = None
    checks: list[str] = dataclasses.field(default_factory=list)


def scan_model(model: ModelSource | ModelToTrain, run: Any = None, *, out: str | os.PathLike,
               kind: str = "filter", to: Sequence[str] = (),
               directions_from: str | os.PathLike | StoredDirections | None = None,
               normalization: str | None = None, ignore: str | None = None,
               orthogonal: bool = False, same_direction: bool = False, dims: int | None = None,
               grid: Grid | None = None, num: int = 51, metrics: Sequence[str] = ("loss",),
               splits: Sequence[str] = ("train",), samples: int | None = None, seed: int = 0,
               chunk: int | None = None, eval_batch_size: int | None = None,
               strategy: str = "auto", precision: str | None = None, overwrite: bool = False,
               figures: bool = True,
               on_plan: Callable[[Plan], None] | None = None,
               on_estimate: Callable[[str], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None,
               on_shrink: OnShrink | None = None) -> ScanResult:
    """Scan the loss of ``model`` over a plane into ``out/surface.h5`` and draw its figures,
    as ``landscape scan`` does.

    Args:
      model: the model (:func:`landscape.open_run`'s first item, or
        :func:`~landscape.sources.trained_model`'s), or a :class:`ModelToTrain`, trained only
        after the checks below pass.
      run: ``model``'s run (:class:`landscape.Run`): its path is projected onto the plane and
        stored; ``kind`` ``pca`` and ``interp`` need it.
      out: the output folder (created if missing).
      kind: the directions (:data:`landscape.scan.DIRECTION_KINDS`, as
        :func:`landscape.make_plane`); ``to``: the run directories at α = 1 (and β = 1) of
        ``interp``; ``directions_from``: a surface file (or its read
        :class:`~landscape.io.stored_directions.StoredDirections`) whose directions are reused
        instead (``normalization``, ``ignore``, ``orthogonal``, ``same_direction`` unused).
      ignore: None: ``biasbn`` for random directions, ``none`` for PCA (Li et al.'s defaults).
      dims: 1 (a line) or 2 (None: 2); stored directions and ``interp`` (its number of ``to``
        runs) bring their own.
      grid: the points [default: ``pca`` and ``interp``: ``num`` per axis covering the run's
        projected path, the origin and the end points with a 25 % margin
        (:func:`landscape.covering.covering_grid`); else ``num`` per axis over [-1, 1]].
      metrics, splits: as :func:`landscape.scan.scan_surface`.
      samples: evaluate on a fixed subset of this many samples, drawn with ``seed`` (stratified
        by class on a classifier) and recorded.
      seed: of the random (and Hessian) directions and of ``samples``.
      chunk, eval_batch_size, strategy, precision, overwrite: as
        :func:`~landscape.scan.scan_surface` (``precision`` also trains a
        :class:`ModelToTrain`; None: the one ``out/surface.h5`` recorded, else ``highest``).
      figures: draw ``out/surface.png`` (the first split's first metric) and
        ``out/surface_<split>_<metric>.png`` for each further split.
      on_plan, on_progress, on_shrink: as :func:`~landscape.scan.scan_surface`.
      on_estimate: called with one line ("2,601 points × 0.31 s ≈ 13 min on 2 devices ...")
        before a scan expected to take ``ESTIMATE_FROM_S`` or more.

    Before ``model`` is trained or anything is computed, the output's lock is checked, the
    options against the workload (metrics, ``samples``, stored directions' shapes), and an
    existing ``out/surface.h5`` against these arguments (and the fingerprints known so far):
    a file of other arguments or another computation is refused
    (:class:`~landscape.errors.ResumeMismatch`, :class:`~landscape.errors.ReadError`), a
    finished one is returned as it is (``finished``; missing figures drawn again), an
    unfinished one resumed.
    """
    from landscape import distributed
    from landscape.check import check_surface
    from landscape.io.lock import check_free
    from landscape.io.stored_directions import read_stored_directions
    from landscape.precision import computing_in
    from landscape.scan import finished_surface, resumed_precision, scan_spec
    from landscape.description import nonfinite_note

    if kind not in DIRECTION_KINDS:
        raise InputError(f"`kind` (={kind!r}) must be one of: {', '.join(DIRECTION_KINDS)}",
                         param="kind")
    if kind in ("pca", "interp") and (run is None or not isinstance(model, ModelSource)):
        raise InputError(f"`kind` {kind} needs a trained model and its run (`run`)",
                         param="run")
    stored = (read_stored_directions(directions_from)
              if isinstance(directions_from, (str, os.PathLike)) else directions_from)
    dims = stored.ndim if stored is not None else len(to) if kind == "interp" else dims or 2
    if grid is None:
        grid = None if kind in ("pca", "interp") else Grid.from_specs(
            f"-1:1:{num}", f"-1:1:{num}" if dims == 2 else None, names=("num", "num"))
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    h5_path = os.path.join(out, SURFACE_FILE)
    writer = distributed.is_writer()
    if writer:  # a scan already writing out/surface.h5: fail before training
        check_free(h5_path)
    precision = resumed_precision(h5_path, precision, overwrite=overwrite)
    workload = model.workload
    workload.objective({}, splits).metric_names(metrics, splits)  # fail before training
    trained = isinstance(model, ModelSource)
    if stored is not None and not trained:  # directions of another model: likewise
        from landscape.workload import init_shapes

        stored.check_fit(init_shapes(workload)[0])
    kind_name = "file" if stored is not None else kind
    applied_ignore = (ignore or "biasbn" if kind_name in RANDOM_KINDS else
                      ignore or "none" if kind_name == "pca" else "none")
    provenance = {
        **model.description, "directions": kind_name,
        "directions_from": None if stored is None else stored.path, "to": list(to),
        "normalization": ("none" if stored is not None or kind in ("pca", "interp", "hessian")
                          else normalization or {"random": "none"}.get(kind, kind)),
        "ignore": applied_ignore, "orthogonal": orthogonal, "same_direction": same_direction,
        "dims": int(dims), "direction_seed": seed,  # a run's own `seed` is its training seed
        **_layout_spec(kind_name, applied_ignore, workload),
    }
    sample_record = _sample_record(workload, samples, seed)
    plane_options = dict(stored=stored, to=to, normalization=normalization,
                         ignore=applied_ignore, dims=int(dims), same=same_direction,
                         orthogonal=orthogonal, seed=seed)
    with computing_in(precision):
        plane = None
        if trained:  # nothing to train: the plane first, for the default grid
            plane = _plane(kind, model, run, **plane_options)
            if grid is None:
                grid = _covering(run, plane, kind, num)
        names = [f"{split}_{metric}" for split in splits for metric in metrics]
        surface = None
        if writer:  # a finished scan returns at once; a mismatch fails now
            spec = scan_spec(provenance, grid, metrics=metrics, splits=splits,
                             samples=sample_record, precision=precision)
            prints = _known_fingerprints(model if trained else None, plane, workload, splits,
                                         sample_record)
            surface = finished_surface(h5_path, spec, names, overwrite=overwrite,
                                       fingerprints=prints)
        # every process returns with the writer (the others would wait for it in the scan)
        if distributed.broadcast_from_writer(np.array(surface is not None)):
            if surface is None:
                return ScanResult(None, [], True)
            files = _draw(surface, out, splits, metrics, figures, only_missing=True)
            return ScanResult(surface, files, True, nonfinite_note(surface),
                              [f.line() for f in check_surface(surface)])
        if not trained:
            model = model.train(precision)
            plane = _plane(kind, model, run, **plane_options)
        surface = scan_on_plane(
            model, plane, grid, h5_path, provenance=provenance, metrics=metrics, splits=splits,
            chunk=chunk, strategy=strategy, samples=sample_record, precision=precision,
            overwrite=overwrite, run=run, eval_batch_size=eval_batch_size, on_plan=on_plan,
            on_estimate=on_estimate, on_progress=on_progress, on_shrink=on_shrink)
    if not writer:
        return ScanResult(surface, [])
    files = _draw(surface, out, splits, metrics, figures, only_missing=False)
    return ScanResult(surface, files, False, nonfinite_note(surface),
                      [f.line() for f in check_surface(surface)])


def figure_paths(out: str, splits: Sequence[str], metric: str) -> dict[str, str]:
    """``{dataset: figure path}``: ``OUT/surface.png`` for the first split's ``metric``, and
    ``OUT/surface_<split>_<metric>.png`` for each further split's."""
    names = [f"{split}_{metric}" for split in splits]
    return {name: os.path.join(out, "surface.png" if k == 0 else f"surface_{name}.png")
            for k, name in enumerate(names)}


def estimate_line(points: int, plan: Plan) -> str:
    """``"2,601 points × 0.31 s ≈ 13 min on 2 devices (map, chunk 16, probe)"``."""
    devices = plan.devices
    seconds = points / plan.rate
    if seconds < 90:
        eta = f"{seconds:.0f} s"
    elif seconds < 5400:
        eta = f"{seconds / 60:.0f} min"
    else:
        eta = f"{seconds / 3600:.1f} h"
    return (f"{points:,} points × {1 / plan.rate:.3g} s ≈ {eta} on {devices} "
            f"device{'s' * (devices > 1)} ({plan.strategy}, chunk {plan.chunk}, {plan.source})")


def _draw(surface: Surface, out: str, splits, metrics, figures: bool, *,
          only_missing: bool) -> list[str]:
    """The surface's figures (those missing only, when ``only_missing``); the files."""
    from landscape.io.atomic import save_figure

    paths = figure_paths(out, splits, metrics[0]) if figures else {}
    for name, path in paths.items():  # one per split (train, test ...)
        if not (only_missing and os.path.exists(path)):
            save_figure(surface.plot(metric=name), path, unique=only_missing)
    return [surface.path, *paths.values()]


def _sample_record(workload: Any, samples: int | None, seed: int) -> dict | None:
    """How a subset of ``samples`` is drawn (``{"num", "seed", "stratified"}``), recorded."""
    if samples is None:
        return None
    available = len(workload.train)
    if not 1 <= samples <= available:
        raise InputError(f"`samples` (={samples}) must be at most the {available} training "
                         "samples (and at least 1)", param="samples")
    labels = np.ndim(workload.train.targets) == 1  # a class per sample: stratified
    return {"num": samples, "seed": seed,
            "stratified": workload.task == "classification" and labels}


def _objective(workload: Any, state: Any, splits, samples: dict | None):
    objective = workload.objective(state, splits)
    if samples is not None:
        objective, _ = objective.with_samples(samples["num"], seed=samples["seed"],
                                              stratify=samples["stratified"])
    return objective


def _covering(run: Any, plane: Any, kind: str, num: int) -> Grid:
    """The default grid of a PCA or interpolation scan: the run's projected path, the origin
    and (interpolation) the end points, with a margin."""
    from landscape.covering import covering_grid
    from landscape.projection import project_run

    path = project_run(run, plane)
    include = [(0.0, 0.0)]
    if kind == "interp":
        include += [(1.0, 0.0)] + ([(0.0, 1.0)] if plane.d2 is not None else [])
    return covering_grid(path["x"], path["y"], num=num, include=include)


def _known_fingerprints(model: ModelSource | None, plane, workload, splits, samples) -> dict:
    """The fingerprints known before any training: the data and the environment, and the model
    and directions of a trained model (``model`` None: one still to be trained)."""
    from landscape import fingerprint

    objective = _objective(workload, model.state if model is not None else {}, splits, samples)
    if model is None:
        return {"data": fingerprint.data_fingerprint(objective.data),
                "environment": fingerprint.environment()}
    return fingerprint.of_surface(plane.origin, objective.state, plane, objective.data)


def _plane(kind: str, model: ModelSource, run: Any, *, stored, to, normalization, ignore, dims,
           same, orthogonal, seed):
    from landscape.directions import plane_from_directions
    from landscape.scan import make_plane
    from landscape.sources import open_run

    if stored is not None:  # a PCA file's variance ratios label the axes of this scan too
        plane = plane_from_directions(model.params, *stored.fit(model.params))
        return dataclasses.replace(plane, explained_variance=stored.explained_variance)
    trajectory = ends = None
    if kind == "pca":
        trajectory = [run.trajectory.params_at(int(step)) for step in run.trajectory.step]
    if kind == "interp":  # runs of the same (user) workload as the model's own
        name = model.description.get("workload")
        ends = [open_run(path, workload=name)[0].params for path in to]
    return make_plane(kind, model.params, objective=model.workload.objective(model.state),
                      seed=seed, normalization=normalization, ignore=ignore, dims=dims,
                      same=same, orthogonal=orthogonal, trajectory=trajectory, ends=ends or (),
                      output_axis=model.workload.output_axis)


def _layout_spec(kind: str, ignore: str, workload) -> dict:
    """The spec's entry for the workload's layout (``Workload.output_axis``) where the plane
    uses it — random directions, and PCA zeroing biases — as :func:`landscape.surface` records
    it: nothing for Flax's (every built-in workload's)."""
    from landscape.directions import layout_of, layout_spec
    from landscape.workload import init_shapes

    if workload.output_axis == "last" or not (
            kind in RANDOM_KINDS or (kind == "pca" and ignore == "biasbn")):
        return {}
    return layout_spec(layout_of(init_shapes(workload)[0], workload.output_axis))


def scan_on_plane(model: ModelSource, plane, grid: Grid, h5_path: str, *,
                  provenance: dict, metrics: Sequence[str], splits: Sequence[str],
                  chunk: int | None = None, strategy: str = "auto", samples: dict | None = None,
                  precision: str | None = None, overwrite: bool = False, run: Any = None,
                  eval_batch_size: int | None = None, lock: bool = True,
                  on_plan: Callable[[Plan], None] | None = None,
                  on_estimate: Callable[[str], None] | None = None,
                  on_progress: Callable[[int, int], None] | None = None,
                  on_shrink: OnShrink | None = None) -> Surface:
    """:func:`~landscape.scan.scan_surface` of ``model``'s objective (on ``samples``, a
    :func:`scan_model` record) into ``h5_path``, with ``run``'s path when given, calling
    ``on_estimate`` once before a long scan (later plans, after running out of memory, are
    said by ``on_shrink``). ``lock=False``: the caller holds the file's lock (``compare``)."""
    from landscape.io.choices import default_choices
    from landscape.projection import project_run
    from landscape.scan import scan_surface

    objective = _objective(model.workload, model.state, splits, samples)
    trajectories = None
    if run is not None:
        trajectories = {str(run.optimizer.get("name", "run")): project_run(run, plane)}
    done, plans = [0], []

    def progress(count: int, total: int) -> None:
        done[0] = count
        if on_progress is not None:
            on_progress(count, total)

    def announce(plan: Plan) -> None:
        left = grid.num_points - done[0]
        if not plans and on_estimate is not None and plan.rate and (
                left / plan.rate >= ESTIMATE_FROM_S):
            on_estimate(estimate_line(left, plan))
        plans.append(plan)
        if on_plan is not None:
            on_plan(plan)

    return scan_surface(objective, plane, grid, out=h5_path, metrics=metrics, splits=splits,
                        provenance=provenance, train_loss=model.train_loss,
                        overwrite=overwrite, chunk=chunk, strategy=strategy, samples=samples,
                        precision=precision, trajectories=trajectories, lock=lock,
                        choices=default_choices(), on_plan=announce, on_progress=progress,
                        eval_batch_size=eval_batch_size, on_shrink=on_shrink)
