"""``landscape compare``: several optimizers on one surface — a classic 2D test function, or a
network trained from one initialization — with one figure, one surface file, VTK files and a
summary table.

The command parses and checks its options; :mod:`landscape.comparison` does the rest."""

from __future__ import annotations

import math

import click

from landscape.cli.options import (Bars, FiniteFloat, MAX_DPI, MAX_FUNCTION_GRID, USER_CODE_NOTE,
                                   as_option, echo_outputs, eval_batch_option, library_errors,
                                   optimizer_names, out_option, precision_option, printable,
                                   quiet_option, seed_option)
from landscape.cli.plot_function import parse_point
from landscape.io.folders import make_output_folder
from landscape.comparison import (FUNCTION_GRID, NETWORK_BATCH, NETWORK_GRID,
                                  NETWORK_OPTIMIZERS, NETWORK_STEPS)

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

def _function_name(ctx, param, value: str | None) -> str | None:
    from landscape.data.functions import names

    if value is not None and value not in names():
        raise click.BadParameter(f"(={value!r}) is not a known test function; choose one of "
                                 f"{', '.join(names())}")
    return value


def _learning_rates(ctx, param, values: tuple[str, ...]) -> dict[str, float]:
    rates = {}
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = math.nan
        if not rate > 0 or not math.isfinite(rate):
            raise click.BadParameter(f"(={printable(value)}) must look like NAME=VALUE (one "
                                     "optimizer) or VALUE (all), with VALUE a number > 0, e.g. "
                                     "adam=0.05")
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
@click.option("--optimizer", "optimizer_names", multiple=True,
              callback=optimizer_names(allow_all=True),
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
                   "function; on a workload the highest final loss among the runs that did not "
                   "diverge and end below their initial loss, so each of them gets a number].")
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
@eval_batch_option
@click.option("--dpi", type=click.IntRange(50, MAX_DPI), default=150, show_default=True,
              help="Resolution of the figure.")
@precision_option
@click.option("--overwrite", is_flag=True,
              help="Replace existing runs and a surface file made with other arguments.")
@out_option
@seed_option
@quiet_option
@library_errors
def compare(function_name, workload, optimizer_names, rates, start, steps, threshold, num, x_spec,
            y_spec, plane_kind, reference, batch_size, record_every, data_dir, chunk,
            eval_batch_size, dpi, precision, overwrite, out, seed, quiet):
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
      surface_paraview.py  opens them in ParaView, a colour and a legend entry per optimizer
      surface.html        interactive 3D surface and contours with every path (offline)
      summary.csv, summary.json   final loss/accuracy, steps to the threshold, path length,
                          plane residual; the table is also printed
    """
    from landscape.comparison import compare_on_function, compare_on_workload
    from landscape.engine.memory import shrink_message
    from landscape.errors import InputError
    from landscape.grid import parse_axis

    if function_name is not None and workload is not None:
        raise click.UsageError("`--function` and `--workload` exclude each other: compare on a "
                               "test function or on a network")
    for flag, spec in (("--x", x_spec), ("--y", y_spec)):  # checked before anything trains
        if spec is not None:
            parse_axis(spec, name=flag)
    if workload is None:
        for flag, value in (("--reference", reference), ("--batch-size", batch_size),
                            ("--record-every", record_every), ("--data-dir", data_dir),
                            ("--chunk", chunk), ("--eval-batch-size", eval_batch_size),
                            ("--precision", precision)):
            if value is not None:
                raise click.UsageError(f"`{flag}` applies to --workload only")
        if plane_kind != "pca":
            raise click.UsageError("`--plane` applies to --workload only: a function's "
                                   "parameters are the plane")
    elif start is not None:
        raise click.UsageError("`--start` applies to --function only (a network starts from "
                               "its initialization, drawn with --seed)")
    out = make_output_folder(out)
    common = dict(out=out, rates=rates, steps=steps, num=num, x=x_spec, y=y_spec,
                  threshold=threshold, dpi=dpi, overwrite=overwrite)
    with Bars(quiet) as bars:
        try:
            if workload is None:
                result = compare_on_function(function_name or "rosenbrock", start=start,
                                             optimizers=optimizer_names or None,
                                             on_progress=bars.advance("optimizers", "opt"),
                                             **common)
            else:
                result = compare_on_workload(
                    workload, optimizers=optimizer_names or NETWORK_OPTIMIZERS,
                    plane=plane_kind, reference=reference, batch_size=batch_size,
                    record_every=record_every, data_dir=data_dir, chunk=chunk,
                    eval_batch_size=eval_batch_size, seed=seed, precision=precision,
                    on_training=lambda name, *done: bars.advance(name, "step")(*done),
                    on_progress=bars.advance("scanning", "pt"),
                    on_estimate=None if quiet else bars.write,
                    on_shrink=lambda *sizes: bars.write(shrink_message(*sizes)),
                    on_warning=lambda text, param: bars.write(
                        "warning: " + as_option(InputError(text, param=param))), **common)
        except InputError as exc:
            if exc.param in ("lr", "reference"):  # click's form, as the options' own checks
                raise click.BadParameter(printable(str(exc).removeprefix(f"`{exc.param}` ")),
                                         param_hint=f"'--{exc.param}'") from exc
            raise
    click.echo(result.table, err=True)
    echo_outputs(result.files)
