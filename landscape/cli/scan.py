"""``landscape scan``: train (or load) a model and evaluate its loss surface on a plane."""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from landscape.cli.options import (Bars, ExistingPath, comma_list, distributed_options,
                                   echo_outputs, eval_batch_option, library_errors, out_option,
                                   model_options, precision_option, quiet_option, seed_option)
from landscape.io.folders import make_output_folder
from landscape.sources import open_run
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
    from landscape.engine.memory import shrink_message
    from landscape.grid import Grid
    from landscape.io.stored_directions import read_stored_directions
    from landscape.model_scan import adam_model, scan_model

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
    # The directions file and the axes are checked before any training or loading (the
    # library checks the rest before training): a bad option should not cost minutes first.
    if directions_file:  # options that shape new directions would silently do nothing
        for name, flag in (("normalization", "--norm"), ("ignore", "--ignore"),
                           ("orthogonal", "--orthogonal"), ("same_direction", "--same-direction")):
            if given(name):
                raise click.UsageError(f"`{flag}` has no effect with `--directions-from`: the "
                                       "stored directions are used as they are")
    stored = read_stored_directions(directions_file) if directions_file else None
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
    if kind in ("pca", "interp") and not (x_spec or y_spec or given("span")):
        grid = None  # the library's default: covering the run's path
    out = make_output_folder(out)
    bars = Bars(quiet)
    if source is None:
        model, run = adam_model(workload, steps=steps, lr=lr, seed=seed,
                                on_step=bars.step("training", steps, "step")), None
    else:
        model, run = open_run(source, workload=workload if given("workload") else None)
        if given("workload") and workload != model.description["workload"]:
            raise click.UsageError(f"`--workload {workload}` differs from the run's "
                                   f"workload `{model.description['workload']}`: SOURCE's model "
                                   "is scanned on its own workload (drop the option)")
    with bars:
        result = scan_model(
            model, run, out=out, kind=kind, to=to_runs, directions_from=stored,
            normalization=normalization, ignore=ignore if given("ignore") else None,
            orthogonal=orthogonal, same_direction=same_direction, dims=int(dims), grid=grid,
            num=num, metrics=metrics, splits=splits, samples=samples, seed=seed, chunk=chunk,
            eval_batch_size=eval_batch_size, strategy=strategy, precision=precision,
            overwrite=overwrite, on_estimate=None if quiet else bars.write,
            on_progress=bars.advance("scanning", "pt"),
            on_shrink=lambda *sizes: bars.write(shrink_message(*sizes)))
    if result.note and not result.finished:
        click.echo(f"warning: {result.note}", err=True)
    for line in [] if quiet else result.checks:
        click.echo(f"check: {line}", err=True)
    echo_outputs(result.files)


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
