"""``landscape scan``: train (or load) a model and evaluate its loss surface on a plane."""

from __future__ import annotations

import os
import sys

import click
import numpy as np
from click.core import ParameterSource

from landscape.cli.options import (
    ExistingPath,
    comma_list,
    compute_in,
    distributed_options,
    echo_outputs,
    eval_batch_option,
    library_errors,
    make_out_dir,
    out_option,
    precision_option,
    progress,
    quiet_option,
    seed_option,
)
from landscape.io.atomic import save_figure
from landscape.cli.source import model_options, trained_model
from landscape.sources import open_run
from landscape.workload import init_shapes
from landscape.directions import IGNORE_RULES, NORMALIZATIONS
from landscape.engine.strategy import STRATEGIES
from landscape.scan import DIRECTION_KINDS

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



@click.command(epilog=EXAMPLES)
@click.argument("source", required=False, type=ExistingPath(folder=True))
@model_options
@click.option("--directions", "kind", type=click.Choice(DIRECTION_KINDS), default="filter",
              show_default=True,
              help="filter/layer: random Gaussian directions normalized per filter/per layer "
                   "(Li et al. 2018); random: Gaussian, normalized by --norm (default none); "
                   "pca: top principal components of SOURCE's trajectory; interp: the line "
                   "(or plane) from SOURCE to the --to run(s); hessian: top Hessian eigenvectors.")
@click.option("--to", "to_runs", multiple=True, type=ExistingPath(folder=True),
              help="With --directions interp: the run at α = 1 (a second --to spans β).")
@click.option("--directions-from", "directions_file", default=None,
              type=ExistingPath(),
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
              help="MIN:MAX of both axes (used when --x/--y are not given); pca and interp "
                   "scans default to the run's projected path (and the end points) with a "
                   "25 % margin.")
@click.option("--x", "x_spec", default=None, help="x axis as MIN:MAX:N (overrides --grid/--range).")
@click.option("--y", "y_spec", default=None,
              help="y axis as MIN:MAX:N (overrides --grid/--range)  [default: --x when given, "
                   "as the Python API's `y`]")
@click.option("--dims", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Scan a 1D line or a 2D plane.")
@click.option("--metrics", default="loss", show_default=True,
              callback=comma_list(("loss", "acc")), help="Comma-separated: loss,acc.")
@click.option("--split", "splits", default="train", show_default=True,
              callback=comma_list(("train", "test")), help="Comma-separated: train,test.")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Grid points per compiled call [default: from the device; on a CPU as many "
                   "as keep a chunk in cache, at most 256].")
@eval_batch_option
@click.option("--strategy", type=click.Choice(["auto", *STRATEGIES]), default="auto",
              show_default=True,
              help="How the points of a chunk are evaluated: vmap (vectorized; dense layers), "
                   "map (one after another, the data batch vectorized; convolutions), auto "
                   "(times a chunk of each on a long scan and keeps the faster, remembered for "
                   "the next scan; a resumed file keeps its recorded strategy).")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Evaluate on a fixed subset of this many training (and test) samples, "
                   "stratified by class for classifiers (drawn with --seed, recorded in the "
                   "file): a cheap first look.")
@precision_option
@click.option("--overwrite", is_flag=True,
              help="Replace an existing surface made with other arguments, or from another "
                   "model, directions, data or environment (a resume must match the "
                   "fingerprints the file recorded).")
@distributed_options
@out_option
@seed_option
@quiet_option
@library_errors
def scan(source, workload, steps, lr, kind, to_runs, directions_file, normalization, ignore,
         orthogonal, same_direction, num, span, x_spec, y_spec, dims, metrics, splits, chunk,
         eval_batch_size, strategy, samples, precision, overwrite, coordinator, num_processes,
         process_id, out, seed, quiet):
    """Evaluate the loss over a plane of weight perturbations around a model.

    SOURCE is a run directory of `landscape train`; without it the model is trained on the spot
    (--workload, --steps, --lr). With no arguments at all: trains the seed article's sine MLP
    (1-64-64-1) with Adam, scans a 51x51 filter-normalized random plane over [-1, 1]^2 and
    writes OUT/surface.h5 and OUT/surface.png (with --split train,test also
    OUT/surface_test_loss.png). Every chunk of points is flushed to the file as it finishes;
    re-running the same command resumes an unfinished scan (and returns at once from a finished
    one). It ends with the lines of `landscape check` on the file (on stderr; not with --quiet).
    """
    from landscape import distributed
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

    def given(name: str) -> bool:  # on the command line, not a default
        return click.get_current_context().get_parameter_source(name) == ParameterSource.COMMANDLINE

    _check_sources(source, kind, to_runs, given)
    # The directions file, the axes (and a grid too large for memory) are checked before any
    # training or loading: a bad file or option should not cost minutes of training first.
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
    # y follows x, as in landscape.surface(x=..., y=None): one rule for the CLI and the API
    y_axis = y_spec or x_spec or default_axis
    grid = Grid.from_specs(x_spec or default_axis, y_axis if dims == "2" else None,
                           names=(("--x" if x_spec else "--range/--grid"),
                                  ("--y" if y_spec else "--x" if x_spec else "--range/--grid")))
    out = make_out_dir(out)
    h5_path = os.path.join(out, "surface.h5")
    if distributed.is_writer():  # a scan already writing OUT/surface.h5: fail before training
        from landscape.io.lock import check_free

        check_free(h5_path)
    # Everything from here (training on the spot too) at the precision given, or the one
    # OUT/surface.h5 recorded: a resume keeps it.
    from landscape.scan import resumed_precision

    precision = compute_in(resumed_precision(h5_path, precision, overwrite=overwrite))
    run, loaded = None, None
    given_workload = workload if given("workload") else None
    if source is None:
        from landscape.data import get_workload

        loaded = get_workload(workload)
        loaded.objective({}, splits).metric_names(metrics, splits)  # fail before training
        if stored is not None:  # directions of another model: likewise
            stored.check_fit(init_shapes(loaded)[0])
        description = {"workload": workload, "optimizer": "adam", "lr": lr, "steps": steps,
                       "seed": seed}
    else:
        model, run = open_run(source, workload=given_workload)
        if given_workload is not None and given_workload != model.description["workload"]:
            raise click.UsageError(f"`--workload {given_workload}` differs from the run's "
                                   f"workload `{model.description['workload']}`: SOURCE's model "
                                   "is scanned on its own workload (drop the option)")
        model.workload.objective({}, splits).metric_names(metrics, splits)
        description = model.description
    kind_name = "file" if stored is not None else kind
    plane_normalization = ("none" if stored is not None or kind in ("pca", "interp", "hessian")
                           else normalization or {"random": "none"}.get(kind, kind))
    # The ignore rule as applied: random directions default to biasbn, PCA to none (Li et al.'s
    # defaults); interpolation, Hessian and stored directions have none to apply.
    applied_ignore = (ignore if kind_name in ("filter", "layer", "random") else
                      ignore if kind_name == "pca" and given("ignore") else "none")
    provenance = {
        **description, "directions": kind_name,
        "directions_from": directions_file, "to": list(to_runs),
        "normalization": plane_normalization, "ignore": applied_ignore,
        "orthogonal": orthogonal, "same_direction": same_direction, "dims": int(dims),
        "direction_seed": seed,  # a run's own `seed` above is its training seed
        **_layout_spec(kind_name, applied_ignore, loaded or model.workload),
    }
    sample_record = None
    if samples is not None:
        workload_of = loaded or model.workload
        available = len(workload_of.train)
        if samples > available:
            raise click.BadParameter(f"(={samples}) must be at most the {available} training "
                                     "samples", param_hint="'--samples'")
        labels = np.ndim(workload_of.train.targets) == 1  # a class per sample: stratified
        sample_record = {"num": samples, "seed": seed,
                         "stratified": workload_of.task == "classification" and labels}
    plane = None
    if source is not None:  # nothing to train: the plane first, for the default range
        plane = _plane(kind, model, run, stored, to_runs, given_workload,
                       normalization=normalization, ignore=applied_ignore, dims=int(dims),
                       same=same_direction, orthogonal=orthogonal, seed=seed)
        range_given = x_spec or y_spec or given("span")
        if kind in ("pca", "interp") and not range_given:
            grid = _covering(run, plane, kind, num)
    names = [f"{split}_{metric}" for split in splits for metric in metrics]
    if distributed.is_writer():  # a finished scan returns at once; a mismatch fails now
        prints = _known_fingerprints(model if source is not None else None, plane,
                                     loaded or model.workload, splits, sample_record)
        finished = _finished_scan(h5_path, grid, provenance, metrics, splits, sample_record,
                                  names, overwrite, precision, prints)
        if finished is not None:
            echo_checks(h5_path, quiet=quiet)
            echo_outputs(finished)
            return
    if source is None:
        model = trained_model(workload, steps=steps, lr=lr, seed=seed, quiet=quiet,
                              workload=loaded, precision=precision)
        plane = _plane(kind, model, run, stored, to_runs, given_workload,
                       normalization=normalization, ignore=applied_ignore, dims=int(dims),
                       same=same_direction, orthogonal=orthogonal, seed=seed)
    paths = scan_model(model, plane, grid, out, provenance=provenance, metrics=metrics,
                       splits=splits, chunk=chunk, strategy=strategy, samples=sample_record,
                       precision=precision, overwrite=overwrite, quiet=quiet,
                       trajectory_run=run, eval_batch_size=eval_batch_size)
    if distributed.is_writer():
        echo_checks(h5_path, quiet=quiet)
        echo_outputs(paths)


def echo_checks(h5_path: str, *, quiet: bool) -> None:
    """The lines of ``landscape check`` on the scanned file, on stderr (none with --quiet)."""
    if quiet:
        return
    from landscape.check import check_surface
    from landscape.io import surface_h5

    for finding in check_surface(surface_h5.read(h5_path)):
        click.echo(f"check: {finding.line()}", err=True)


def figure_paths(out: str, splits, metric: str) -> dict[str, str]:
    """``{dataset: figure path}``: ``OUT/surface.png`` for the first split's ``metric``, and
    ``OUT/surface_<split>_<metric>.png`` for each further split's."""
    names = [f"{split}_{metric}" for split in splits]
    return {name: os.path.join(out, "surface.png" if k == 0 else f"surface_{name}.png")
            for k, name in enumerate(names)}


def _check_sources(source, kind, to_runs, given) -> None:
    """Refuse options that the model's source would silently ignore."""
    if kind in ("pca", "interp") and source is None:
        raise click.UsageError(f"`--directions {kind}` needs a run directory as SOURCE")
    if (kind == "interp") != bool(to_runs) or len(to_runs) > 2:
        raise click.UsageError("`--to RUN` (once or twice) goes with `--directions interp`")
    if source is not None:
        for name, flag in (("steps", "--steps"), ("lr", "--lr")):
            if given(name):
                raise click.UsageError(f"`{flag}` trains a model on the spot; with SOURCE the "
                                       "run's model is scanned as it is (drop the option)")
    same = lambda a, b: os.path.realpath(a) == os.path.realpath(b)  # noqa: E731
    for to in to_runs:
        if source is not None and same(to, source):
            raise click.UsageError(f"`--to {to}` is SOURCE itself: the direction to it is zero")
    if len(to_runs) == 2 and same(*to_runs):
        raise click.UsageError("the two `--to` runs are the same run: they span a line, not a "
                               "plane (give one `--to` for a line)")


def _covering(run, plane, kind: str, num: int):
    """The default grid of a PCA or interpolation scan: the run's projected path, the origin
    and (interpolation) the end points, with a margin."""
    from landscape.covering import covering_grid
    from landscape.projection import project_run

    path = project_run(run, plane)
    include = [(0.0, 0.0)]
    if kind == "interp":
        include += [(1.0, 0.0)] + ([(0.0, 1.0)] if plane.d2 is not None else [])
    return covering_grid(path["x"], path["y"], num=num, include=include)


def _known_fingerprints(model, plane, workload, splits, samples) -> dict:
    """The fingerprints known before any training: the data and the environment, and the model
    and directions of a run's model (``model`` None: a model still to be trained)."""
    from landscape import fingerprint

    objective = workload.objective(model.state if model is not None else {}, splits)
    if samples is not None:
        objective, _ = objective.with_samples(samples["num"], seed=samples["seed"],
                                              stratify=samples["stratified"])
    if model is None:
        return {"data": fingerprint.data_fingerprint(objective.data),
                "environment": fingerprint.environment()}
    return fingerprint.of_surface(plane.origin, objective.state, plane, objective.data)


def _finished_scan(h5_path, grid, provenance, metrics, splits, samples, names, overwrite,
                   precision, fingerprints):
    """The outputs of a finished scan of the same arguments and ``fingerprints`` (None when
    there is work to do); a file made with other arguments or from another computation, or
    lacking one of the metrics, is refused now, before any training."""
    from landscape.errors import ReadError
    from landscape.io import surface_h5
    from landscape.io.lock import exclusive
    from landscape.scan import existing_surface, scan_spec

    spec = scan_spec(provenance, grid, metrics=metrics, splits=splits, samples=samples,
                     precision=precision)
    existing = existing_surface(h5_path, spec, overwrite=overwrite, fingerprints=fingerprints)
    if existing is None:
        return None
    missing = [name for name in names if name not in existing.values]
    if missing:
        raise ReadError(f"{h5_path} lacks the dataset `{missing[0]}` its arguments need; pass "
                        "--overwrite to scan it again")
    if not existing.done.all():
        return None
    if os.path.exists(surface_h5.journal_path(h5_path)):  # a killed scan's last fold: finish it
        with exclusive(h5_path):
            surface_h5.compact(h5_path)
    figures = figure_paths(os.path.dirname(h5_path), splits, metrics[0])
    if not all(os.path.exists(path) for path in figures.values()):  # drawn again from the file
        from landscape.surfaces import load_surface

        surface = load_surface(h5_path)
        for name, path in figures.items():
            if not os.path.exists(path):
                save_figure(surface.plot(metric=name), path)
    return [h5_path, *figures.values()]


def _plane(kind, model, run, stored, to_runs, given_workload, *, normalization, ignore, dims,
           same, orthogonal, seed):
    import dataclasses

    from landscape.directions import plane_from_directions
    from landscape.scan import make_plane

    if stored is not None:  # a PCA file's variance ratios label the axes of this scan too
        plane = plane_from_directions(model.params, *stored.fit(model.params))
        return dataclasses.replace(plane, explained_variance=stored.explained_variance)
    trajectory = ends = None
    if kind == "pca":
        trajectory = [run.trajectory.params_at(int(step)) for step in run.trajectory.step]
    if kind == "interp":
        ends = [open_run(path, workload=given_workload)[0].params for path in to_runs]
    return make_plane(kind, model.params, objective=model.workload.objective(model.state),
                      seed=seed, normalization=normalization, ignore=ignore, dims=dims,
                      same=same, orthogonal=orthogonal, trajectory=trajectory, ends=ends or (),
                      output_axis=model.workload.output_axis)


def _layout_spec(kind: str, ignore: str, workload) -> dict:
    """The spec's entry for the workload's layout (``Workload.output_axis``) where the plane
    uses it — random directions, and PCA zeroing biases — as :func:`landscape.surface` records
    it: nothing for Flax's (every built-in workload's)."""
    from landscape.directions import layout_of, layout_spec

    if workload.output_axis == "last" or not (
            kind in ("filter", "layer", "random") or (kind == "pca" and ignore == "biasbn")):
        return {}
    return layout_spec(layout_of(init_shapes(workload)[0], workload.output_axis))


def scan_model(model, plane, grid, out: str, *, provenance: dict, metrics, splits, chunk=None,
               strategy="auto", samples=None, precision=None, overwrite=False, quiet=False,
               trajectory_run=None, lock: bool = True, figure: bool = True,
               eval_batch_size=None) -> list[str]:
    """Scan ``plane`` around ``model`` (a :class:`ModelSource`) into ``OUT/surface.h5`` with a
    progress bar (and the run's path when given), draw ``OUT/surface.png`` (unless not
    ``figure``); returns the paths. ``lock=False``: the caller holds the file's lock
    (``compare``). Running out of device memory prints one line per halving."""
    from landscape import distributed
    from landscape.surfaces import nonfinite_note
    from landscape.engine.memory import shrink_message
    from landscape.io.choices import default_choices
    from landscape.projection import project_run
    from landscape.scan import scan_surface

    objective = model.workload.objective(model.state, splits)
    if samples is not None:
        objective, _ = objective.with_samples(samples["num"], seed=samples["seed"],
                                              stratify=samples["stratified"])
    trajectories = None
    if trajectory_run is not None:
        name = str(trajectory_run.optimizer.get("name", "run"))
        trajectories = {name: project_run(trajectory_run, plane)}
    h5_path = os.path.join(out, "surface.h5")
    with progress(grid.num_points, "scanning", quiet=quiet, unit="pt") as bar:
        def advance(done: int, total: int) -> None:
            bar.update(done - bar.n)

        plans = []

        def announce(plan) -> None:  # the estimate, before a scan long enough to need one
            left = grid.num_points - bar.n
            if not plans and not quiet and plan.rate and left / plan.rate >= ESTIMATE_FROM_S:
                bar.write(estimate_line(left, plan), file=sys.stderr)
            plans.append(plan)  # later plans: after running out of memory, said by `shrunk`

        def shrunk(old: int, new: int, what: str) -> None:  # said even with --quiet
            bar.write(shrink_message(old, new, what), file=sys.stderr)

        surface = scan_surface(objective, plane, grid, out=h5_path, metrics=metrics,
                               splits=splits, provenance=provenance, train_loss=model.train_loss,
                               overwrite=overwrite, chunk=chunk, strategy=strategy,
                               samples=samples, precision=precision,
                               trajectories=trajectories, lock=lock,
                               choices=default_choices(), on_plan=announce, on_progress=advance,
                               eval_batch_size=eval_batch_size, on_shrink=shrunk)
    if not distributed.is_writer():
        return []
    note = nonfinite_note(surface)
    if note:
        click.echo(f"warning: {note}", err=True)
    if not figure:
        return [h5_path]
    figures = figure_paths(out, splits, metrics[0])  # one per split (train, test ...)
    for name, path in figures.items():
        save_figure(surface.plot(metric=name), path, unique=False)  # under the scan's lock
    return [h5_path, *figures.values()]


ESTIMATE_FROM_S = 10.0  # scans expected to take less are not announced


def estimate_line(points: int, plan) -> str:
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

