"""``landscape scan``: train (or load) a model and evaluate its loss surface on a plane."""

from __future__ import annotations

import os

import click
import numpy as np
from click.core import ParameterSource

from landscape.cli.options import (
    comma_list,
    distributed_options,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    progress,
    quiet_option,
    seed_option,
)
from landscape.cli.source import loaded_run, model_options, param_shapes, trained_model
from landscape.directions import IGNORE_RULES, NORMALIZATIONS

EXAMPLES = """
\b
Examples:
  landscape scan                                   # sine MLP, 51x51 filter-normalized plane
  landscape scan --grid 101 --range -2:2 --out runs/sine
  landscape scan --x -1:1:41 --y -0.5:0.5:21       # any nx != ny
  landscape scan --x -1:1:101 --dims 1             # a 1D line
  landscape scan --directions layer --orthogonal
  landscape scan runs/adam --directions pca            # a run of `landscape train`
  landscape scan runs/sgd --directions interp --to runs/adam --x -0.5:1.5:41
  landscape scan --directions hessian --range -0.1:0.1
\b
Multi-host (run the same command on every host, process 0 writes):
  landscape scan --coordinator host0:1234 --num-processes 2 --process-id 0
"""

DIRECTION_KINDS = ("filter", "layer", "random", "pca", "interp", "hessian")


@click.command(epilog=EXAMPLES)
@click.argument("source", required=False, type=click.Path(exists=True, file_okay=False))
@model_options
@click.option("--directions", "kind", type=click.Choice(DIRECTION_KINDS), default="filter",
              show_default=True,
              help="filter/layer: random Gaussian directions normalized per filter/per layer "
                   "(Li et al. 2018); random: Gaussian, normalized by --norm (default none); "
                   "pca: top principal components of SOURCE's trajectory; interp: the line "
                   "(or plane) from SOURCE to the --to run(s); hessian: top Hessian eigenvectors.")
@click.option("--to", "to_runs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="With --directions interp: the run at α = 1 (a second --to spans β).")
@click.option("--directions-from", "directions_file", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Reuse the directions stored in a surface file of the same model "
                   "(overrides --directions; a line or a plane as stored; --norm, --ignore, "
                   "--orthogonal and --same-direction do not apply). The file is checked "
                   "before any training.")
@click.option("--norm", "normalization", type=click.Choice(NORMALIZATIONS), default=None,
              help="Override the normalization of random directions.")
@click.option("--ignore", type=click.Choice(IGNORE_RULES), default="biasbn", show_default=True,
              help="biasbn: zero the directions of 1-D parameters (biases, norm scales); "
                   "none: they copy the weights (Li et al.).")
@click.option("--orthogonal", is_flag=True, help="Make the second direction orthogonal to the first.")
@click.option("--same-direction", is_flag=True, help="Use the first direction for both axes.")
@click.option("--grid", "num", type=click.IntRange(min=2), default=51, show_default=True,
              help="Points per axis (used with --range when --x/--y are not given).")
@click.option("--range", "span", default="-1:1", show_default=True,
              help="MIN:MAX of both axes (used when --x/--y are not given).")
@click.option("--x", "x_spec", default=None, help="x axis as MIN:MAX:N (overrides --grid/--range).")
@click.option("--y", "y_spec", default=None, help="y axis as MIN:MAX:N (overrides --grid/--range).")
@click.option("--dims", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Scan a 1D line or a 2D plane.")
@click.option("--metrics", default="loss", show_default=True,
              callback=comma_list(("loss", "acc")), help="Comma-separated: loss,acc.")
@click.option("--split", "splits", default="train", show_default=True,
              callback=comma_list(("train", "test")), help="Comma-separated: train,test.")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Grid points per compiled call [default: as many as keep a chunk in cache, "
                   "at most 256].")
@click.option("--overwrite", is_flag=True, help="Replace an existing surface made with other arguments.")
@distributed_options
@out_option
@seed_option
@quiet_option
@library_errors
def scan(source, workload, steps, lr, kind, to_runs, directions_file, normalization, ignore, orthogonal, same_direction, num, span,
         x_spec, y_spec, dims, metrics, splits, chunk, overwrite, coordinator, num_processes,
         process_id, out, seed, quiet):
    """Evaluate the loss over a plane of weight perturbations around a model.

    SOURCE is a run directory of `landscape train`; without it the model is trained on the spot
    (--workload, --steps, --lr). With no arguments at all: trains the seed article's sine MLP (1-64-64-1) with Adam, scans a 51x51
    filter-normalized random plane over [-1, 1]^2 and writes OUT/surface.h5 and OUT/surface.png.
    Every chunk of points is flushed to the file as it finishes; re-running the same command
    resumes an unfinished scan.
    """
    from landscape import distributed
    from landscape.directions import (
        interpolation_plane,
        pca_plane,
        plane_from_directions,
        random_plane,
    )
    from landscape.grid import Grid
    from landscape.io import stored_directions

    if orthogonal and same_direction:
        raise click.UsageError("`--orthogonal` and `--same-direction` exclude each other")
    multi = distributed.initialize(coordinator, num_processes, process_id)
    quiet = quiet or (multi and not distributed.is_writer())
    lo_hi = span.split(":")
    if len(lo_hi) != 2:
        raise click.BadParameter(f"(={span}) must look like MIN:MAX, e.g. -1:1", param_hint="--range")
    default_axis = f"{lo_hi[0]}:{lo_hi[1]}:{num}"
    if kind in ("pca", "interp") and source is None:
        raise click.UsageError(f"`--directions {kind}` needs a run directory as SOURCE")
    if (kind == "interp") != bool(to_runs) or len(to_runs) > 2:
        raise click.UsageError("`--to RUN` (once or twice) goes with `--directions interp`")
    # The directions file, the axes (and a grid too large for memory) are checked before any
    # training or loading: a bad file or option should not cost minutes of training first.
    def given(name: str) -> bool:  # on the command line, not a default
        return click.get_current_context().get_parameter_source(name) == ParameterSource.COMMANDLINE

    if directions_file:  # options that shape new directions would silently do nothing
        for name, flag in (("normalization", "--norm"), ("ignore", "--ignore"),
                           ("orthogonal", "--orthogonal"), ("same_direction", "--same-direction")):
            if given(name):
                raise click.UsageError(f"`{flag}` has no effect with `--directions-from`: the "
                                       "stored directions are used as they are")
    stored = stored_directions.read_stored_directions(directions_file) if directions_file else None
    if stored is not None and dims != str(stored.ndim) and given("dims"):
        raise click.UsageError(f"`--dims {dims}` differs from the {stored.ndim}D directions stored "
                               f"in {directions_file}")
    dims = (str(stored.ndim) if stored is not None else
            str(len(to_runs)) if kind == "interp" else dims)
    if dims == "1" and y_spec:
        raise click.UsageError("`--y` was given for a 1D line (--dims 1 or 1D --directions-from)")
    Grid.from_specs(x_spec or default_axis, (y_spec or default_axis) if dims == "2" else None,
                    names=(("--x" if x_spec else "--range/--grid"),
                           ("--y" if y_spec else "--range/--grid")))
    out = make_out_dir(out)
    if distributed.is_writer():  # a scan already writing OUT/surface.h5: fail before training
        from landscape.io.lock import check_free

        check_free(os.path.join(out, "surface.h5"))
    run = None
    given_workload = workload if given("workload") else None
    if source is None:
        from landscape.data import get_workload
        from landscape.grid import metric_names

        loaded = get_workload(workload)
        metric_names(loaded, metrics, splits)  # a metric or split it lacks: fail before training
        if stored is not None:  # directions of another model: likewise
            stored.check_fit(param_shapes(loaded))
        model = trained_model(workload, steps=steps, lr=lr, seed=seed, quiet=quiet,
                              workload=loaded)
    else:
        model, run = loaded_run(source, user_workload=given_workload)
    if stored is not None:
        plane = plane_from_directions(model.params, *stored.fit(model.params))
        kind, normalization = "file", "none"
    elif kind == "pca":
        trajectory = [run.trajectory.params_at(int(step)) for step in run.trajectory.step]
        plane = pca_plane(trajectory, dims=int(dims))
        normalization = "none"
    elif kind == "interp":
        ends = [loaded_run(path, user_workload=given_workload)[0].params for path in to_runs]
        plane = interpolation_plane(model.params, *ends)
        normalization = "none"
    elif kind == "hessian":
        from landscape.hessian import hessian_plane

        plane = hessian_plane(model.workload, model.params, model.state, dims=int(dims), seed=seed)
        normalization = "none"
    else:
        normalization = normalization or {"random": "none"}.get(kind, kind)
        plane = random_plane(model.params, seed=seed, normalization=normalization, ignore=ignore,
                             dims=int(dims), same=same_direction, orthogonal=orthogonal)
    grid = Grid.from_specs(x_spec or default_axis, (y_spec or default_axis) if dims == "2" else None)
    spec = {
        **model.description, "directions": kind, "directions_from": directions_file,
        "to": list(to_runs),
        "normalization": normalization,
        "ignore": ignore, "orthogonal": orthogonal, "same_direction": same_direction,
        "dims": int(dims), "metrics": list(metrics), "splits": list(splits),
    }
    paths = scan_to_file(model, plane, grid, out, spec=spec, metrics=metrics, splits=splits,
                         chunk=chunk, overwrite=overwrite, quiet=quiet,
                         trajectory_run=run)
    if distributed.is_writer():
        echo_outputs(paths)


def scan_to_file(model, plane, grid, out: str, *, lock: bool = True, **kwargs) -> list[str]:
    """Evaluate ``plane`` over ``grid`` into ``OUT/surface.h5`` (resumable, flushed per chunk,
    written by process 0 only) and draw ``OUT/surface.png``. With ``trajectory_run``, its
    recorded path is projected onto the plane and stored in ``trajectories/<optimizer>/``.
    The writer holds ``OUT/surface.h5.lock`` throughout: a second scan into the same file
    stops with "... is in use by another scan (pid N)". ``lock=False``: the caller already
    holds that lock (as ``compare`` does over all its writes). Returns the output paths."""
    import contextlib

    from landscape import distributed
    from landscape.io.lock import exclusive

    h5_path = os.path.join(out, "surface.h5")
    take = lock and distributed.is_writer()
    with exclusive(h5_path) if take else contextlib.nullcontext():
        return _scan_locked(model, plane, grid, out, **kwargs)


def _scan_locked(model, plane, grid, out: str, *, spec: dict, metrics, splits, chunk, overwrite,
                 quiet, trajectory_run=None) -> list[str]:
    from landscape import __version__, distributed
    from landscape.cli.info import nonfinite_note
    from landscape.grid import evaluate_surface, metric_names
    from landscape.io import surface_h5

    names = metric_names(model.workload, metrics, splits)
    spec = {**spec, "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
            "y": None if grid.y is None else [float(grid.y[0]), float(grid.y[-1]), len(grid.y)]}
    attrs = {
        "tool": "landscape", "tool_version": __version__, "workload": model.workload.name,
        "direction_kind": plane.kind, "normalization": plane.normalization, "ignore": plane.ignore,
        "seed": -1 if plane.seed is None else plane.seed, "grid": spec,
        "train_loss_at_origin": model.train_loss, "spec_hash": surface_h5.spec_hash(spec),
    }
    if plane.explained_variance is not None:
        attrs["explained_variance"] = list(plane.explained_variance)
    h5_path = os.path.join(out, "surface.h5")
    writer = distributed.is_writer()
    done = None
    if writer:
        _, done = surface_h5.create(h5_path, grid, names, plane, attrs, overwrite=overwrite)
    done = distributed.broadcast_from_writer(done if writer else np.zeros(grid.shape, bool))

    with progress(grid.num_points, "scanning", quiet=quiet, unit="pt") as bar:
        bar.update(int(done.sum()))

        def flush(index, values):
            if writer:
                surface_h5.write_points(h5_path, index, values)
            bar.update(len(index))

        evaluate_surface(model.workload, model.state, plane, grid, metrics=metrics, splits=splits,
                         chunk=chunk, done=done, on_chunk=flush)
    if not writer:
        return []
    # The journal of finished chunks is folded into the file: by the trajectory's rewrite of
    # the file when there is one, else by a compaction.
    if trajectory_run is not None:
        _store_trajectory(h5_path, trajectory_run, plane)
    else:
        surface_h5.compact(h5_path)
    png_path = os.path.join(out, "surface.png")
    surface = surface_h5.read(h5_path)
    note = nonfinite_note(surface)
    if note:
        click.echo(f"warning: {note}", err=True)
    _save_figure(surface, names[0], plane.kind, png_path)
    return [h5_path, png_path]


def _store_trajectory(h5_path: str, run, plane) -> None:
    """Project the run's recorded parameters onto the plane (least squares, with residuals)."""
    from landscape.io import surface_h5
    from landscape.trajectory import project_onto_plane

    trajectory = run.trajectory
    points = [trajectory.params_at(int(step)) for step in trajectory.step]
    projection = project_onto_plane(points, plane)
    surface_h5.write_trajectory(
        h5_path, str(run.optimizer.get("name", "run")), x=projection.x, y=projection.y,
        loss=trajectory.train_loss, step=trajectory.step, residual=projection.residual,
        relative_residual=projection.relative_residual,
    )


def _save_figure(surface, name: str, kind: str, path: str) -> None:
    from landscape.cli.plot import save_figure
    from landscape.plot import surface_figure
    from landscape.plot.figures import kind_figure

    log = name.endswith("loss")
    title = f"{surface.attrs.get('workload', '')}: {name}, {kind} directions"
    if surface.trajectories and surface.grid.ndim == 2:
        figure = kind_figure("filled", surface.grid, surface.values[name], metric=name,
                             attrs=surface.attrs, trajectories=surface.trajectories, log=log,
                             title=title)
    else:
        figure = surface_figure(surface.grid, surface.values[name], log=log, title=title)
    save_figure(figure, path, unique=False)  # under the scan's lock
