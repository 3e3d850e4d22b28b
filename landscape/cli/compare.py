"""``landscape compare``: several optimizers on one surface — a classic 2D test function, or a
network trained from one initialization — with one figure, one surface file, VTK files and a
summary table."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os

import click
import numpy as np

from landscape.cli.options import (
    MAX_DPI,
    MAX_FUNCTION_GRID,
    USER_CODE_NOTE,
    FiniteFloat,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    progress,
    quiet_option,
    seed_option,
)
from landscape.cli.plot_function import parse_point

EXAMPLES = """
\b
Examples:
  landscape compare                                  # every optimizer on Rosenbrock from (-1.5, 2)
  landscape compare --function rosenbrock --optimizer all --start -1.5,2 --steps 3000
  landscape compare --function himmelblau --optimizer sgd --optimizer adam --lr adam=0.05
  landscape compare --workload digits --optimizer sgd --optimizer adam --optimizer rangerlars
  landscape compare --workload digits --optimizer sgd --optimizer adam --optimizer ranger \\
      --plane endpoints --reference final:adam --out cmp-digits
"""

NETWORK_OPTIMIZERS = ("sgd", "adam", "rangerlars")
NETWORK_STEPS, NETWORK_BATCH = 500, 128
FUNCTION_GRID, NETWORK_GRID = 201, 31
SUMMARY_CSV, SUMMARY_JSON, FIGURE = "summary.csv", "summary.json", "compare.png"


def _function_name(ctx, param, value: str | None) -> str | None:
    from landscape.data.functions import names

    if value is not None and value not in names():
        raise click.BadParameter(f"(={value!r}) is not a known test function; choose one of "
                                 f"{', '.join(names())}")
    return value


def _optimizer_names(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    import optimizers

    valid = optimizers.names()
    if "all" in values:
        if len(values) > 1:
            raise click.BadParameter("(=all) already names every optimizer; give it alone")
        return valid
    for name in values:
        if name not in valid:
            raise click.BadParameter(f"(={name!r}) is not a known optimizer; choose one of "
                                     f"{', '.join(valid)} (or all)")
    repeated = sorted({name for name in values if values.count(name) > 1})
    if repeated:
        raise click.BadParameter(f"(={repeated[0]!r}) is given twice")
    return values


def _learning_rates(ctx, param, values: tuple[str, ...]) -> dict[str, float]:
    rates = {}
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = math.nan
        if not rate > 0 or not math.isfinite(rate):
            raise click.BadParameter(f"(={value}) must look like NAME=VALUE (one optimizer) or "
                                     "VALUE (all), with VALUE a number > 0, e.g. adam=0.05")
        rates[name.strip() or "*"] = rate
    return rates


@click.command(epilog=EXAMPLES)
@click.option("--function", "function_name", default=None, callback=_function_name,
              metavar="NAME",
              help="A classic 2D test function: beale, himmelblau, noisy_quadratic, rastrigin, "
                   "rosenbrock, saddle [default: rosenbrock, unless --workload is given].")
@click.option("--workload", default=None,
              help="A network workload instead (digits, spirals, sine ... or "
                   "`package.module:function`): each optimizer trains it from the same "
                   "initialization. " + USER_CODE_NOTE)
@click.option("--optimizer", "optimizer_names", multiple=True, callback=_optimizer_names,
              help="Optimizer from the suite; repeat for several, or `all` [default: all on a "
                   f"function, {', '.join(NETWORK_OPTIMIZERS)} on a workload].")
@click.option("--lr", "rates", multiple=True, callback=_learning_rates, metavar="NAME=VALUE",
              help="Learning rate of one optimizer (repeatable), or VALUE for all [default: a "
                   "function uses the suite's tuned Rosenbrock table (docs/optimizers.md), a "
                   "workload each optimizer's default rate].")
@click.option("--start", callback=parse_point, default=None, metavar="X,Y",
              help="Start point on a function [default: the function's own; Rosenbrock -1.5,2].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps per optimizer [default: on a function each optimizer's tuned number "
                   f"from the Rosenbrock table; on a workload {NETWORK_STEPS}].")
@click.option("--threshold", type=FiniteFloat(), default=None,
              help="Loss for the `steps_to_threshold` column [default: minimum + 1e-4 on a "
                   "function; on a workload the highest final loss, so every optimizer gets a "
                   "number].")
@click.option("--grid", "num", type=click.IntRange(3, MAX_FUNCTION_GRID), default=None,
              help=f"Points per axis [default: {FUNCTION_GRID} on a function over its usual box, "
                   f"{NETWORK_GRID} on a workload over the box of the projected paths].")
@click.option("--x", "x_spec", default=None, help="x axis as MIN:MAX:N (overrides --grid).")
@click.option("--y", "y_spec", default=None, help="y axis as MIN:MAX:N (overrides --grid).")
@click.option("--plane", "plane_kind", type=click.Choice(["pca", "endpoints"]), default="pca",
              show_default=True,
              help="Workload only. pca: top two principal components of the union of every "
                   "path's rows θ − θ_ref; endpoints: the plane through the reference and two "
                   "other optimizers' final points.")
@click.option("--reference", default=None, metavar="final:NAME|init",
              help="Workload only: the plane's origin, an optimizer's final point or the shared "
                   "initial point [default: final:<first optimizer>].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help=f"Workload only: minibatch size [default: {NETWORK_BATCH}].")
@click.option("--record-every", type=click.IntRange(min=1), default=None,
              help="Workload only: record params every this many steps [default: steps // 50].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Workload only: folder holding <workload>/ data folders (mnist, cifar10).")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Workload only: grid points per compiled call.")
@click.option("--dpi", type=click.IntRange(50, MAX_DPI), default=150, show_default=True,
              help="Resolution of the figure.")
@click.option("--overwrite", is_flag=True,
              help="Replace existing runs and a surface file made with other arguments.")
@out_option
@seed_option
@quiet_option
@library_errors
def compare(function_name, workload, optimizer_names, rates, start, steps, threshold, num, x_spec,
            y_spec, plane_kind, reference, batch_size, record_every, data_dir, chunk, dpi,
            overwrite, out, seed, quiet):
    """Run several optimizers on one landscape and draw their paths on it, side by side.

    On a 2D test function (the default: Rosenbrock) the two parameters are the plane: every
    optimizer starts at --start, the surface is the function on its box, and the paths need no
    projection. On a --workload every optimizer trains the network from the same initial
    parameters (run directories in OUT/runs/<optimizer>/, reused when run again with the same
    arguments); one plane through the reference holds all paths (least-squares projection; the
    residual says how far a path leaves it) and the loss is scanned on it.

    \b
    Writes into OUT:
      surface.h5          the surface, every path in trajectories/<optimizer>/ (x, y, true
                          loss, step, residual, projected_loss = the surface at the projection)
      compare.png         contours and 3D surface with every path, and loss against step
      surface.vts, surface_<optimizer>.vtp, surface.pvd   for ParaView (paraview surface.pvd)
      summary.csv, summary.json   final loss/accuracy, steps to the threshold, path length,
                          plane residual; the table is also printed
    """
    if function_name is not None and workload is not None:
        raise click.UsageError("`--function` and `--workload` exclude each other: compare on a "
                               "test function or on a network")
    from landscape.grid import parse_axis

    for flag, spec in (("--x", x_spec), ("--y", y_spec)):  # checked before anything trains
        if spec is not None:
            parse_axis(spec, name=flag)
    if workload is None:
        for flag, value in (("--reference", reference), ("--batch-size", batch_size),
                            ("--record-every", record_every), ("--data-dir", data_dir),
                            ("--chunk", chunk)):
            if value is not None:
                raise click.UsageError(f"`{flag}` applies to --workload only")
        if plane_kind != "pca":
            raise click.UsageError("`--plane` applies to --workload only: a function's "
                                   "parameters are the plane")
        make = _compare_function
        kwargs = dict(name=function_name or "rosenbrock", start=start)
    else:
        if start is not None:
            raise click.UsageError("`--start` applies to --function only (a network starts from "
                                   "its initialization, drawn with --seed)")
        make = _compare_workload
        kwargs = dict(workload_name=workload, plane_kind=plane_kind, reference=reference,
                      batch_size=batch_size, record_every=record_every, data_dir=data_dir,
                      chunk=chunk, seed=seed)
    names = optimizer_names or (None if workload is None else NETWORK_OPTIMIZERS)
    if names is None:
        import optimizers

        names = optimizers.names()
    unknown = [name for name in rates if name != "*" and name not in names]
    if unknown:
        raise click.BadParameter(f"(={unknown[0]}=...) names an optimizer that is not compared; "
                                 f"compared: {', '.join(names)}", param_hint="'--lr'")
    out = make_out_dir(out)
    result = make(names=names, rates=rates, steps=steps, num=num, x_spec=x_spec, y_spec=y_spec,
                  overwrite=overwrite, out=out, quiet=quiet, **kwargs)
    written, table = _finish(result, out, threshold=threshold, dpi=dpi)
    click.echo(table, err=True)
    echo_outputs(result.run_dirs + written)


@dataclasses.dataclass(frozen=True)
class _Comparison:
    """What both kinds of comparison hand to the common outputs."""

    h5_path: str
    paths: list  # [landscape.compare.ComparedPath], in the order compared
    log: bool  # log scale for contours, 3D and VTK heights
    min_value: float | None  # the function's minimum (None on a network)
    minima: tuple = ()
    saddles: tuple = ()
    labels: tuple[str, str] = ("x", "y")
    title: str = ""
    info: dict = dataclasses.field(default_factory=dict)  # for summary.json
    run_dirs: list = dataclasses.field(default_factory=list)
    pre_written: list = dataclasses.field(default_factory=list)  # outputs made on the way


def _axes(default, x_spec: str | None, y_spec: str | None):
    from landscape.grid import Grid, parse_axis

    return Grid(parse_axis(x_spec, name="--x") if x_spec else default.x,
                parse_axis(y_spec, name="--y") if y_spec else default.y).checked_size()


def _compare_function(*, name, start, names, rates, steps, num, x_spec, y_spec, overwrite, out,
                      quiet) -> _Comparison:
    from landscape import __version__, compare
    from landscape.data.functions import get_function
    from landscape.io import surface_h5

    function = get_function(name)
    start = start or function.start or (0.0, 0.0)
    paths = []
    with progress(len(names), "optimizers", quiet=quiet, unit="opt") as bar:
        for optimizer in names:
            count = steps or compare.function_setting(optimizer).steps
            transformation, description = compare.function_optimizer(
                optimizer, steps=count, learning_rate=rates.get(optimizer, rates.get("*")))
            points = compare.run_on_function(function.fn, transformation, start, steps=count)
            loss = compare.function_values(function.fn, points)
            paths.append(compare.function_path(optimizer, description, points, loss))
            bar.update(1)
    grid = _axes(compare.function_grid(function.box, num or FUNCTION_GRID, include=[start]),
                 x_spec, y_spec)
    spec = {"function": function.name, "start": list(start), "steps": steps,
            "optimizers": [path.optimizer for path in paths],
            "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
            "y": [float(grid.y[0]), float(grid.y[-1]), len(grid.y)]}
    attrs = {"tool": "landscape", "tool_version": __version__, "workload": f"function:{name}",
             "function": function.name, "formula": function.formula,
             "direction_kind": "parameters", "normalization": "none", "ignore": "none",
             "seed": -1, "grid": spec, "spec_hash": surface_h5.spec_hash(spec)}
    h5_path = os.path.join(out, "surface.h5")
    surface_h5.create(h5_path, grid, ["train_loss"], compare.function_plane(), attrs,
                      overwrite=overwrite)
    values = function.on_grid(grid.x, grid.y)
    surface_h5.write_points(h5_path, np.arange(grid.num_points), {"train_loss": values.ravel()})
    return _Comparison(
        h5_path, paths, log=function.min_value >= 0, min_value=function.min_value,
        minima=function.minima, saddles=function.saddles,
        title=f"{function.name}: f(x, y) = {function.formula}, from ({start[0]:g}, {start[1]:g})",
        info={"function": function.name, "formula": function.formula, "start": list(start),
              "minima": [list(m) for m in function.minima], "min_value": function.min_value})


def _parse_reference(reference: str | None, names) -> str | None:
    """The optimizer whose final point is the reference (None: the shared initial point)."""
    if reference is None:
        return names[0]
    if reference == "init":
        return None
    kind, _, name = reference.partition(":")
    if kind != "final" or name not in names:
        raise click.BadParameter(f"(={reference}) must be init or final:NAME with NAME one of "
                                 f"the compared optimizers: {', '.join(names)}",
                                 param_hint="'--reference'")
    return name


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
    found = {key: document.get(key) for key in expected}
    if found != json.loads(json.dumps(expected)):
        differ = [key for key in expected if found[key] != json.loads(json.dumps(expected[key]))]
        raise click.UsageError(f"{directory} holds a run made with other arguments "
                               f"({', '.join(differ)} differ); pass --overwrite to retrain, or "
                               "choose another --out")
    return load_run(directory)


def _compare_workload(*, workload_name, names, rates, steps, num, x_spec, y_spec, plane_kind,
                      reference, batch_size, record_every, data_dir, chunk, seed, overwrite, out,
                      quiet) -> _Comparison:
    import jax

    from landscape import compare
    from landscape.cli.scan import scan_to_file
    from landscape.cli.source import ModelSource
    from landscape.data import get_workload
    from landscape.data.files import ENV_VAR
    from landscape.plot import plane_axis_labels
    from landscape.runs import save_run
    from landscape.train import OptimizerSpec, train

    reference_name = _parse_reference(reference, names)
    if data_dir is not None:
        os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(data_dir))
    steps = steps or NETWORK_STEPS
    record_every = record_every or max(1, steps // 50)
    # Lookahead wraps Adam here, as in the suite's Rosenbrock table.
    specs = [OptimizerSpec(name, rates.get(name, rates.get("*")),
                           {"inner": "adam"} if name == "lookahead" else {}) for name in names]
    for spec in specs:
        spec.build()  # a bad hyperparameter fails now, not after the first run
    workload = get_workload(workload_name)
    batch_size = min(batch_size or NETWORK_BATCH, len(workload.train))
    init = workload.init(jax.random.split(jax.random.key(seed))[0])  # as train(seed=...) draws
    source = None if workload_name == workload.name else workload_name  # as `landscape train`
    run_dirs = [os.path.join(out, "runs", spec.name) for spec in specs]
    runs = {}  # every existing run is checked before anything trains
    for spec, directory in zip(specs, run_dirs):
        expected = {"workload": workload.name, "workload_source": source,
                    "optimizer": spec.resolved(), "seed": seed, "steps": steps,
                    "batch_size": batch_size, "record_every": record_every}
        runs[spec.name] = _reuse_run(directory, expected, overwrite)
    for spec, directory in zip(specs, run_dirs):
        if runs[spec.name] is None:
            with progress(steps, spec.name, quiet=quiet, unit="step") as bar:
                runs[spec.name] = train(workload, spec, steps=steps, batch_size=batch_size,
                                        seed=seed, record_every=record_every, init=init,
                                        callback=lambda step, loss, bar=bar: bar.update(1))
            save_run(runs[spec.name], directory, overwrite=True,
                     extra=None if source is None else {"workload_source": source})
        run = runs[spec.name]
        if run.divergence is not None:  # compared as far as it went, and said so
            click.echo(f"warning: {spec.name} diverged at {run.divergence.describe()}; its path "
                       f"ends at step {int(run.trajectory.step[-1])}", err=True)

    plane, paths, (origin, state, origin_loss) = compare.runs_on_plane(
        runs, kind=plane_kind, reference=reference_name)
    label = "init" if reference_name is None else f"final:{reference_name}"
    grid = _axes(compare.covering_grid(paths, num or NETWORK_GRID), x_spec, y_spec)
    description = {"workload": workload_name, "seed": seed, "steps": steps,
                   "batch_size": batch_size, "record_every": record_every,
                   "optimizers": [run.optimizer for run in runs.values()],
                   "plane": plane_kind, "reference": label}
    model = ModelSource(workload, origin, state, float(origin_loss), description)
    metrics = ("loss", "acc") if "acc" in workload.metrics else ("loss",)
    scanned = scan_to_file(model, plane, grid, out, spec={**description, "compare": True},
                           metrics=metrics, splits=("train",), chunk=chunk, overwrite=overwrite,
                           quiet=quiet)
    if plane_kind == "pca":
        attrs = {"explained_variance": list(plane.explained_variance or ())}
        labels = plane_axis_labels(attrs)
    else:
        others = [name for name in names if name != reference_name]
        ends = [f"final:{name}" for name in others[:2]] + ["init"]
        labels = (f"α (1 at {ends[0]})", f"β (1 at {ends[1]})")
    info = {"workload": workload_name, "plane": plane_kind, "reference": label,
            "explained_variance": None if plane.explained_variance is None
            else list(plane.explained_variance), "seed": seed, "steps": steps,
            "batch_size": batch_size, "record_every": record_every}
    return _Comparison(scanned[0], paths, log=True, min_value=None, labels=labels,
                       title=f"{workload.name}: {plane_kind} plane through {label}",
                       info=info, run_dirs=run_dirs, pre_written=scanned[1:])


def _finish(result: _Comparison, out: str, *, threshold: float | None, dpi: int
            ) -> tuple[list[str], str]:
    """Trajectories into the surface file, the summary files, the figure and the VTK files.
    Returns the paths written and the summary as a text table."""
    from landscape import compare
    from landscape.cli.plot import save_figure
    from landscape.plot.compare import comparison_figure
    from landscape.io import surface_h5
    from landscape.io import vtk as vtk_io

    surface = surface_h5.read(result.h5_path)
    z = surface.values["train_loss"]
    paths = [dataclasses.replace(path, projected_loss=vtk_io.interpolate(surface.grid, z, path.x,
                                                                         path.y))
             for path in result.paths]
    for path in paths:
        surface_h5.write_trajectory(
            result.h5_path, path.name, x=path.x, y=path.y, loss=path.loss, step=path.step,
            residual=path.residual, relative_residual=path.relative_residual,
            projected_loss=path.projected_loss)
    if threshold is None:
        threshold = compare.default_threshold(paths, result.min_value)
    rows = compare.summarize(paths, threshold)
    summary = {**result.info, "threshold": threshold, "summary": rows,
               "optimizers": {path.name: path.optimizer for path in paths}}
    written = [result.h5_path, *result.pre_written]
    written += _write_summary(rows, summary, out)
    function = result.min_value is not None
    figure = comparison_figure(
        surface.grid, z, paths, function=function, log=result.log, threshold=threshold,
        minima=result.minima, saddles=result.saddles, labels=result.labels, title=result.title,
        residuals=None if function else {r["optimizer"]: r["relative_residual"] for r in rows})
    written.append(save_figure(figure, os.path.join(out, FIGURE), dpi=dpi))
    written += _write_vtk(surface_h5.read(result.h5_path), out, [p.name for p in paths],
                          log=result.log and result.min_value is None)
    return written, compare.format_summary(rows, threshold)


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _write_summary(rows: list[dict], summary: dict, out: str) -> list[str]:
    """summary.csv (one row per optimizer) and summary.json, each via a temporary name."""
    from landscape.compare import SUMMARY_COLUMNS

    from landscape.io.atomic import write_text

    csv_path, json_path = os.path.join(out, SUMMARY_CSV), os.path.join(out, SUMMARY_JSON)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(csv_path, table.getvalue())  # each whole or not at all (temporary name, rename)
    write_text(json_path, json.dumps(_json_ready(summary), indent=2, allow_nan=False) + "\n")
    return [csv_path, json_path]


def _write_vtk(surface, out: str, names: list[str], *, log: bool) -> list[str]:
    """surface.vts, one surface_<optimizer>.vtp polyline each, and surface.pvd opening them."""
    from landscape.io import vtk as vtk_io

    parts = ["surface.vts"]
    vtk_io.write_vts(os.path.join(out, parts[0]),
                     vtk_io.structured_grid(surface, "train_loss", log=log))
    for name in names:
        single = dataclasses.replace(surface, trajectories={name: surface.trajectories[name]})
        parts.append(f"surface_{name}.vtp")
        vtk_io.write_vtp(os.path.join(out, parts[-1]),
                         vtk_io.trajectory_polydata(single, "train_loss", log=log))
    pvd = os.path.join(out, "surface.pvd")
    vtk_io.write_pvd(pvd, parts)
    return [os.path.join(out, part) for part in parts] + [pvd]
