"""``landscape scan``: train (or load) a model and evaluate its loss surface on a plane."""

from __future__ import annotations

import os

import click

from landscape.cli.options import (
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    progress,
    quiet_option,
    seed_option,
)
from landscape.cli.source import model_options, trained_model
from landscape.directions import IGNORE_RULES, NORMALIZATIONS

EXAMPLES = """
\b
Examples:
  landscape scan                                   # sine MLP, 51x51 filter-normalized plane
  landscape scan --grid 101 --range -2:2 --out runs/sine
  landscape scan --x -1:1:41 --y -0.5:0.5:21       # any nx != ny
  landscape scan --x -1:1:101 --dims 1             # a 1D line
"""


@click.command(epilog=EXAMPLES)
@model_options
@click.option("--grid", "num", type=click.IntRange(min=2), default=51, show_default=True,
              help="Points per axis (used with --range when --x/--y are not given).")
@click.option("--range", "span", default="-1:1", show_default=True,
              help="MIN:MAX of both axes (used when --x/--y are not given).")
@click.option("--x", "x_spec", default=None, help="x axis as MIN:MAX:N (overrides --grid/--range).")
@click.option("--y", "y_spec", default=None, help="y axis as MIN:MAX:N (overrides --grid/--range).")
@click.option("--dims", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Scan a 1D line or a 2D plane.")
@click.option("--norm", "normalization", type=click.Choice(NORMALIZATIONS), default="filter",
              show_default=True, help="Direction normalization (Li et al. 2018).")
@click.option("--ignore", type=click.Choice(IGNORE_RULES), default="biasbn", show_default=True,
              help="biasbn: zero the directions of 1-D parameters (biases, norm scales).")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Grid points per compiled call (default: up to 256).")
@click.option("--overwrite", is_flag=True, help="Replace an existing surface made with other arguments.")
@out_option
@seed_option
@quiet_option
@library_errors
def scan(workload, steps, lr, num, span, x_spec, y_spec, dims, normalization, ignore, chunk,
         overwrite, out, seed, quiet):
    """Train a model, then evaluate its loss over a plane of weight perturbations.

    With no arguments: trains the seed article's sine MLP (1-64-64-1) with Adam, scans a 51x51
    filter-normalized random plane over [-1, 1]^2 and writes OUT/surface.h5 and OUT/surface.png.
    Re-running the same command resumes an unfinished scan.
    """
    from landscape import __version__
    from landscape.directions import random_plane
    from landscape.grid import Grid, evaluate_surface, metric_names
    from landscape.io import surface_h5
    from landscape.plot import surface_figure

    lo_hi = span.split(":")
    if len(lo_hi) != 2:
        raise click.BadParameter(f"(={span}) must look like MIN:MAX, e.g. -1:1", param_hint="--range")
    default_axis = f"{lo_hi[0]}:{lo_hi[1]}:{num}"
    grid = Grid.from_specs(x_spec or default_axis, (y_spec or default_axis) if dims == "2" else None)
    out = make_out_dir(out)
    model = trained_model(workload, steps=steps, lr=lr, seed=seed, quiet=quiet)
    wl = model.workload
    plane = random_plane(model.params, seed=seed, normalization=normalization, ignore=ignore,
                         dims=int(dims))
    names = metric_names(wl, ["loss"], ["train"])
    spec = {
        **model.description,
        "normalization": normalization, "ignore": ignore, "dims": int(dims),
        "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
        "y": None if grid.y is None else [float(grid.y[0]), float(grid.y[-1]), len(grid.y)],
        "metrics": names,
    }
    attrs = {
        "tool": "landscape", "tool_version": __version__, "workload": workload,
        "direction_kind": plane.kind, "normalization": normalization, "ignore": ignore,
        "seed": seed, "grid": spec, "train_loss_at_origin": model.train_loss,
        "spec_hash": surface_h5.spec_hash(spec),
    }
    h5_path = os.path.join(out, "surface.h5")
    _, done = surface_h5.create(h5_path, grid, names, plane, attrs, overwrite=overwrite)

    with progress(grid.num_points, "scanning", quiet=quiet, unit="pt") as bar:
        bar.update(int(done.sum()))

        def flush(index, values):
            surface_h5.write_points(h5_path, index, values)
            bar.update(len(index))

        evaluate_surface(wl, model.state, plane, grid, chunk=chunk, done=done, on_chunk=flush)

    surface = surface_h5.read(h5_path)
    png_path = os.path.join(out, "surface.png")
    figure = surface_figure(surface.grid, surface.values["train_loss"],
                            title=f"{workload}: train loss, {plane.kind} directions", log=True)
    tmp = png_path + ".part.png"
    figure.savefig(tmp, dpi=120)
    os.replace(tmp, png_path)
    echo_outputs([h5_path, png_path])
