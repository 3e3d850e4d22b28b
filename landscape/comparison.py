"""Several optimizers on one surface, as ``landscape compare`` makes it, in one call per kind of
landscape::

    result = landscape.compare_on_function("rosenbrock", out="cmp", optimizers=["sgd", "adam"])
    result = landscape.compare_on_workload("digits", out="cmp-digits", plane="endpoints")
    print(result.table)

On a classic 2D test function (:func:`compare_on_function`) every optimizer runs from one start
and the function's two parameters are the plane; on a network (:func:`compare_on_workload`)
each optimizer trains it from one initialization (run directories ``OUT/runs/<optimizer>/``,
reused when made with the same arguments), one plane through a reference holds every path
(least-squares projection with residuals) and the loss is scanned on it. Both write into OUT,
under the lock of ``OUT/surface.h5`` from the first run to the last file: the surface file with
every path, ``summary.csv``/``summary.json``, ``compare.png``, the VTK files with their
ParaView script and ``surface.html``. The building blocks are in :mod:`landscape.compare`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from landscape import compare
from landscape.comparison_files import (SURFACE_H5, Comparison, ComparisonResult,
                                        write_comparison)
from landscape.errors import InputError
from landscape.grid import Grid

FUNCTION_GRID = 201  # points per axis by default on a function
NETWORK_OPTIMIZERS = ("sgd", "adam", "rangerlars")  # compared on a workload by default
NETWORK_STEPS, NETWORK_BATCH = 500, 128
NETWORK_GRID = 31  # points per axis by default, over the box of the projected paths
Axis = str | Sequence[float] | np.ndarray | None  # "MIN:MAX:N" or the points


def compare_on_function(name: str = "rosenbrock", *, out: str | os.PathLike,
                        optimizers: Sequence[str] | None = None,
                        rates: Mapping[str, float] | None = None,
                        start: Sequence[float] | None = None, steps: int | None = None,
                        num: int | None = None, x: Axis = None, y: Axis = None,
                        threshold: float | None = None, dpi: int = 150,
                        overwrite: bool = False,
                        on_progress: Callable[[int, int], None] | None = None
                        ) -> ComparisonResult:
    """Run ``optimizers`` (default: the whole suite) on test function ``name``
    (:mod:`landscape.data.functions`) from ``start`` (default: the function's own) and write the
    comparison into ``out``.

    ``rates``: learning rates by optimizer name (``"*"``: all others; default: the suite's tuned
    Rosenbrock table), ``steps`` per optimizer (default: the table's), ``num`` points per axis
    (default 201) over the function's box widened to hold ``start``, ``x``/``y`` axes in its
    place, ``threshold`` the loss of the steps-to-threshold column (default: minimum + 1e-4),
    ``dpi`` the figure's. ``on_progress(optimizers done, total)``.
    """
    from landscape.data.functions import get_function

    function = get_function(name)
    start = tuple(start or function.start or (0.0, 0.0))
    try:  # before anything runs or is written
        compare.check_start(function.fn, start)
    except InputError as exc:
        raise InputError(f"`start` (={start[0]:g},{start[1]:g}): {exc}", param="start") from None
    names, rates = _optimizers(optimizers, rates, default=None)
    out = _out_dir(out)
    with _lock(out):
        paths = []
        for optimizer in names:
            count = steps or compare.function_setting(optimizer).steps
            transformation, description = compare.function_optimizer(
                optimizer, steps=count, learning_rate=rates.get(optimizer, rates.get("*")))
            points = compare.run_on_function(function.fn, transformation, start, steps=count)
            loss = compare.function_values(function.fn, points)
            paths.append(compare.function_path(optimizer, description, points, loss))
            if on_progress is not None:
                on_progress(len(paths), len(names))
        grid = _grid(compare.function_grid(function.box, num or FUNCTION_GRID, include=[start]),
                     x, y)
        h5_path = _function_surface(function, start, steps, paths, grid, out, overwrite)
        result = Comparison(
            h5_path, paths, log=function.min_value >= 0, min_value=function.min_value,
            minima=function.minima, saddles=function.saddles,
            title=(f"{function.name}: f(x, y) = {function.formula}, from "
                   f"({start[0]:g}, {start[1]:g})"),
            info={"function": function.name, "formula": function.formula, "start": list(start),
                  "minima": [list(m) for m in function.minima],
                  "min_value": function.min_value})
        return write_comparison(result, out, threshold=threshold, dpi=dpi)


def compare_on_workload(workload: str, *, out: str | os.PathLike,
                        optimizers: Sequence[str] = NETWORK_OPTIMIZERS,
                        rates: Mapping[str, float] | None = None, steps: int | None = None,
                        num: int | None = None, x: Axis = None, y: Axis = None,
                        plane: str = "pca", reference: str | None = None,
                        batch_size: int | None = None, record_every: int | None = None,
                        data_dir: str | None = None, chunk: int | None = None,
                        eval_batch_size: int | None = None, seed: int = 0,
                        precision: str | None = None, threshold: float | None = None,
                        dpi: int = 150, overwrite: bool = False,
                        on_training: Callable[[str, int, int], None] | None = None,
                        on_progress: Callable[[int, int], None] | None = None,
                        on_estimate: Callable[[str], None] | None = None,
                        on_shrink: Callable[[int, int, str], None] | None = None,
                        on_warning: Callable[[str, str | None], None] | None = None
                        ) -> ComparisonResult:
    """Train ``workload`` with each of ``optimizers`` from one initialization (drawn with
    ``seed``), scan their common plane and write the comparison into ``out``, all at
    ``precision`` (None: the one ``out/surface.h5`` recorded, else ``highest``).

    ``rates`` by optimizer name (``"*"``: all others; default: each optimizer's own), ``steps``
    (default 500), ``batch_size`` (default 128, at most the training set), ``record_every``
    (default steps // 50); ``data_dir``: the folder of the data sets that are files (mnist,
    cifar10). ``plane``: ``pca`` (of every path's rows θ − θ_ref) or ``endpoints``;
    ``reference``: its origin, ``final:NAME`` or ``init`` (default: the first optimizer's
    final point). ``num`` points per axis (default 31) over the box of the projected paths,
    ``x``/``y`` axes in its place; ``chunk``, ``eval_batch_size`` as
    :func:`landscape.scan.scan_surface`; ``threshold``, ``dpi`` as
    :func:`compare_on_function`.

    Runs in ``out/runs/<optimizer>/`` made with the same arguments are reused (any other is
    refused unless ``overwrite``). Callbacks: ``on_training(optimizer, steps done, steps)``,
    ``on_progress(points done, points)`` of the scan, ``on_estimate(line)`` before a long
    scan, ``on_shrink(old, new, what)`` after running out of device memory, and
    ``on_warning(message, argument)`` (a run that diverged, a batch larger than the training
    set: ``argument`` names the one the message names in backticks, or is None).
    """
    from landscape.data import get_workload
    from landscape.data.files import ENV_VAR
    from landscape.model_scan import scan_on_plane
    from landscape.precision import computing_in
    from landscape.scan import resumed_precision
    from landscape.sources import ModelSource
    from landscape.train_loop import OptimizerSpec

    names, rates = _optimizers(optimizers, rates, default=NETWORK_OPTIMIZERS)
    if plane not in compare.PLANE_KINDS:
        raise InputError(f"`plane` (={plane!r}) must be one of {', '.join(compare.PLANE_KINDS)}",
                         param="plane")
    reference_name = reference_run(reference, names)
    for axis, name in ((x, "x"), (y, "y")):
        _axis(axis, name)  # before anything trains
    out = _out_dir(out)
    warn = on_warning or (lambda message, argument: None)
    with _lock(out):
        precision = resumed_precision(os.path.join(out, SURFACE_H5), precision,
                                      overwrite=overwrite)
        if data_dir is not None:
            os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(data_dir))
        steps = steps or NETWORK_STEPS
        record_every = record_every or max(1, steps // 50)
        # Lookahead wraps Adam here, as in the suite's Rosenbrock table.
        specs = [OptimizerSpec(name, rates.get(name, rates.get("*")),
                               {"inner": "adam"} if name == "lookahead" else {})
                 for name in names]
        for spec in specs:
            spec.build()  # a bad hyperparameter fails now, not after the first run
        loaded = get_workload(workload)
        if batch_size is not None and batch_size > len(loaded.train):
            warn(f"`batch_size` (={batch_size}) is larger than the training set of "
                 f"`{workload}` ({len(loaded.train)} samples): every step uses all "
                 f"{len(loaded.train)}", "batch_size")
        batch_size = min(batch_size or NETWORK_BATCH, len(loaded.train))
        settings = dict(seed=seed, steps=steps, batch_size=batch_size, record_every=record_every)
        with computing_in(precision):
            runs, run_dirs = _runs(loaded, workload, specs, out, settings, precision, overwrite,
                                   on_training, on_shrink, warn)
            common, paths, (origin, state, origin_loss) = compare.runs_on_plane(
                runs, kind=plane, reference=reference_name)
            label = "init" if reference_name is None else f"final:{reference_name}"
            grid = _grid(_paths_grid(paths, num or NETWORK_GRID), x, y)
            description = {"workload": workload, **settings,
                           "optimizers": [run.optimizer for run in runs.values()],
                           "plane": plane, "reference": label}
            model = ModelSource(loaded, origin, state, float(origin_loss), description)
            metrics = ("loss", "acc") if "acc" in loaded.metrics else ("loss",)
            # lock=False: this call holds OUT/surface.h5's lock, and a second flock on the
            # same file from this process would be refused.
            h5_path = os.path.join(out, SURFACE_H5)
            scan_on_plane(model, common, grid, h5_path, lock=False,
                          provenance={**description, "compare": True}, metrics=metrics,
                          splits=("train",), chunk=chunk, precision=precision,
                          overwrite=overwrite, eval_batch_size=eval_batch_size,
                          on_estimate=on_estimate, on_progress=on_progress,
                          on_shrink=on_shrink)
        if plane == "pca":
            from landscape.plot import plane_axis_labels

            labels = plane_axis_labels(
                {"explained_variance": list(common.explained_variance or ())})
        else:
            others = [name for name in names if name != reference_name]
            ends = [f"final:{name}" for name in others[:2]] + ["init"]
            labels = (f"α (1 at {ends[0]})", f"β (1 at {ends[1]})")
        info = {"workload": workload, "plane": plane, "reference": label,
                "explained_variance": None if common.explained_variance is None
                else list(common.explained_variance), **settings, "precision": precision}
        result = Comparison(h5_path, paths, log=True, min_value=None, labels=labels,
                             title=f"{loaded.name}: {plane} plane through {label}", info=info,
                             run_dirs=run_dirs)
        return write_comparison(result, out, threshold=threshold, dpi=dpi)


def reference_run(reference: str | None, names: Sequence[str]) -> str | None:
    """The optimizer whose final point is a comparison's reference: ``final:NAME``, or the
    first of ``names`` (``reference`` None); None for ``init`` (the shared initial point)."""
    if reference is None:
        return names[0]
    if reference == "init":
        return None
    kind, _, name = reference.partition(":")
    if kind != "final" or name not in names:
        raise InputError(f"`reference` (={reference}) must be init or final:NAME with NAME one "
                         f"of the compared optimizers: {', '.join(names)}", param="reference")
    return name


def _optimizers(optimizers, rates, *, default) -> tuple[tuple[str, ...], dict[str, float]]:
    """The compared names (every optimizer of the suite without ``optimizers`` or ``default``)
    and their rates; a rate for an optimizer not compared is refused."""
    import optimizers as suite

    names = tuple(optimizers or default or suite.names())
    rates = dict(rates or {})
    unknown = [name for name in rates if name != "*" and name not in names]
    if unknown:
        raise InputError(f"`lr` (={unknown[0]}=...) names an optimizer that is not compared; "
                         f"compared: {', '.join(names)}", param="lr")
    return names, rates


def _out_dir(out: str | os.PathLike) -> str:
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    return out


def _lock(out: str):
    """OUT/surface.h5's lock, held from the first run trained to the last file written, as
    ``landscape scan`` holds it over its writes: a second compare (or scan) into OUT stops at
    once ("... is in use by another compare (pid N)") instead of interleaving their files."""
    from landscape.io.lock import exclusive

    return exclusive(os.path.join(out, SURFACE_H5), what="compare")


def _axis(axis: Axis, name: str) -> np.ndarray | None:
    from landscape.grid import parse_axis

    return None if axis is None else parse_axis(axis, name=name)


def _grid(default: Grid, x: Axis, y: Axis) -> Grid:
    """``default`` with the axes ``x``/``y`` given in its place; refused if too large."""
    x, y = _axis(x, "x"), _axis(y, "y")
    return Grid(default.x if x is None else x, default.y if y is None else y).checked_size()


def _paths_grid(paths: Sequence[compare.ComparedPath], num: int) -> Grid:
    """``num`` × ``num`` points over the box of every projected point with a 25 % margin (the
    origin is on every path: no point to add; an axis that does not spread gets half-width
    0.25 · max(|value|, 1))."""
    from landscape.covering import covering_grid

    return covering_grid(np.concatenate([p.x for p in paths]),
                         np.concatenate([p.y for p in paths]), num=num, include=(), flat=0.25)


def _function_surface(function, start, steps, paths, grid: Grid, out: str,
                      overwrite: bool) -> str:
    """The function on ``grid`` as ``OUT/surface.h5`` (float64, on the host), written as every
    surface file is (:class:`~landscape.io.surface_writer.SurfaceWriter`); the caller holds the
    file's lock."""
    from landscape.version import __version__
    from landscape.io.surface_record import SurfaceRecord
    from landscape.io.surface_writer import SurfaceWriter

    spec = {"function": function.name, "start": list(start), "steps": steps,
            "optimizers": [path.optimizer for path in paths],
            "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
            "y": [float(grid.y[0]), float(grid.y[-1]), len(grid.y)]}
    record = SurfaceRecord(workload=f"function:{function.name}", direction_kind="parameters",
                           normalization="none", ignore="none", spec=spec,
                           tool_version=__version__,
                           extra={"function": function.name, "formula": function.formula})
    h5_path = os.path.join(out, SURFACE_H5)
    # lock=False: compare holds OUT/surface.h5's lock over all its outputs, and a second flock
    # on the same file from this process would be refused.
    with SurfaceWriter(h5_path, what="compare", lock=False) as writer:
        writer.open(grid, ["train_loss"], compare.function_plane(), record, overwrite=overwrite)
        values = function.on_grid(grid.x, grid.y)
        writer.write_points(np.arange(grid.num_points), {"train_loss": values.ravel()})
        writer.finish()
    return h5_path


def _runs(workload, workload_name: str, specs, out: str, settings: dict, precision: str,
          overwrite: bool, on_training, on_shrink, warn) -> tuple[dict, list[str]]:
    """One run per optimizer spec, reused from ``OUT/runs/<name>/`` or trained (and saved)."""
    import jax

    from landscape.runs import save_run
    from landscape.train_loop import train

    init = workload.init(jax.random.split(jax.random.key(settings["seed"]))[0])  # as train's
    source = None if workload_name == workload.name else workload_name  # as `landscape train`
    run_dirs = [os.path.join(out, "runs", spec.name) for spec in specs]
    runs = {}  # every existing run is checked before anything trains
    for spec, directory in zip(specs, run_dirs):
        expected = {"workload": workload.name, "workload_source": source,
                    "optimizer": spec.resolved(), "seed": settings["seed"],
                    "steps": settings["steps"], "batch_size": settings["batch_size"],
                    "record_every": settings["record_every"], "precision": precision}
        runs[spec.name] = _reuse_run(directory, expected, overwrite)
    for spec, directory in zip(specs, run_dirs):
        if runs[spec.name] is None:
            done = [0]

            def step(*_, name=spec.name, done=done) -> None:
                done[0] += 1
                if on_training is not None:
                    on_training(name, done[0], settings["steps"])

            runs[spec.name] = train(workload, spec, **settings, init=init, callback=step,
                                    on_shrink=on_shrink, precision=precision)
            save_run(runs[spec.name], directory, overwrite=True,
                     extra=None if source is None else {"workload_source": source})
        run = runs[spec.name]
        if run.divergence is not None:  # compared as far as it went, and said so
            warn(f"{spec.name} diverged at {run.divergence.describe()}; its path ends at step "
                 f"{int(run.trajectory.step[-1])}", None)
    return runs, run_dirs


def _reuse_run(directory: str, expected: dict, overwrite: bool):
    """The run in ``directory`` if it was made with ``expected`` arguments; None if there is
    none (or ``overwrite``); a run made otherwise is refused."""
    from landscape.runs import RUN_JSON, load_run

    path = os.path.join(directory, RUN_JSON)
    if overwrite or not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        document = {}
    if isinstance(document, dict):  # a run written before precision was recorded: float32
        from landscape.precision import UNRECORDED

        document.setdefault("precision", UNRECORDED)
    found = {key: document.get(key) for key in expected}
    wanted = json.loads(json.dumps(expected))  # as run.json stores it (tuples become lists)
    if found != wanted:
        differ = [key for key in expected if found[key] != wanted[key]]
        raise InputError(f"{directory} holds a run made with other arguments "
                         f"({', '.join(differ)} differ); pass --overwrite to retrain, or "
                         "choose another --out")
    return load_run(directory)
