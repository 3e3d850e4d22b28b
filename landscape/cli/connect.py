"""``landscape connect``: the loss between two trained models, along the straight line and a
trained quadratic Bezier curve, with the barrier on each."""

from __future__ import annotations

import json
import os
import time

import click

from landscape.cli.options import (
    ExistingPath,
    USER_CODE_NOTE,
    FiniteFloat,
    compute_in,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    precision_option,
    progress,
    quiet_option,
    seed_option,
)

EXAMPLES = """
\b
Examples:
  landscape train --optimizer adam --out runs/a --seed 0
  landscape train --optimizer adam --out runs/b --seed 1
  landscape connect runs/a/adam runs/b/adam --out connect
  landscape connect runs/a/adam runs/b/adam --curve-steps 0     # the straight line only
"""


@click.command(epilog=EXAMPLES)
@click.argument("run_a", type=ExistingPath(folder=True))
@click.argument("run_b", type=ExistingPath(folder=True))
@click.option("--points", type=click.IntRange(min=3), default=21, show_default=True,
              help="Evaluated points along each path, t evenly spaced in [0, 1].")
@click.option("--curve-steps", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Minibatch steps training the Bezier curve's control point (0: no curve).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate for the curve.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Minibatch size for the curve (at most the training set size).")
@click.option("--split", "splits", default="train,test", show_default=True,
              help="Comma-separated splits to evaluate along the paths: train,test (test is "
                   "skipped when the workload has none).")
@click.option("--workload", "user_workload", default=None,
              help="Confirms the `package.module:function` of runs of a user workload. "
                   + USER_CODE_NOTE)
@precision_option
@out_option
@seed_option
@quiet_option
@library_errors
def connect(run_a, run_b, points, curve_steps, lr, batch_size, splits, user_workload, precision,
            out, seed, quiet):
    """Mode connectivity between the final models of two runs of one workload.

    Evaluates the exact mean loss (and accuracy) along the line θ(t) = (1−t)θ_A + tθ_B and along
    a quadratic Bezier curve θ(t) = (1−t)²θ_A + 2t(1−t)θ_b + t²θ_B whose control point θ_b is
    trained from the midpoint to minimize E_t L(θ(t)) (Garipov et al. 2018), and reports each
    path's barrier: its maximum minus the mean of the endpoints (Frankle et al. 2020), for the
    loss and the error. With BatchNorm, every evaluated point gets running statistics
    re-estimated over the training set. Writes OUT/connect.json (barriers, settings, timings),
    OUT/connect.csv (t and every metric along both paths), OUT/curve.h5 (the curve, its
    endpoints and its coordinates on the plane through A, B and the curve's midpoint) and
    OUT/connect.png. The curve is trained and the paths evaluated at --precision (recorded in
    connect.json and curve.h5). While it runs it holds OUT/curve.h5.lock: a second connect
    into the same --out stops at once, naming the first one's pid.
    """
    from landscape.sources import open_runs
    from landscape.io.lock import exclusive

    wanted = [s.strip() for s in splits.split(",") if s.strip()]
    if not wanted or any(s not in ("train", "test") for s in wanted):
        raise click.BadParameter(f"(={splits}) must be a comma-separated list of: train, test",
                                 param_hint="--split")
    if os.path.realpath(run_a) == os.path.realpath(run_b):
        raise click.UsageError(f"RUN_A and RUN_B are the same run ({run_a}): there is no path "
                               "between a model and itself")
    names = [_workload_name(path) for path in (run_a, run_b)]
    if None not in names and names[0] != names[1]:  # before loading either model
        raise click.UsageError(f"the runs are of different workloads ({names[0]!r} in {run_a}, "
                               f"{names[1]!r} in {run_b}): connect two runs of one")
    precision = compute_in(precision)
    (model_a, _), (model_b, _) = open_runs([run_a, run_b], workload=user_workload)
    workload = model_a.workload
    wanted = tuple(dict.fromkeys(s for s in wanted if s == "train" or workload.test is not None))
    out = make_out_dir(out)
    # OUT/curve.h5.lock guards every output, as scan/compare lock OUT/surface.h5: a second
    # connect into this --out stops at once instead of both writing, the last one winning.
    with exclusive(os.path.join(out, "curve.h5"), what="connect"):
        paths = _connect(run_a, run_b, model_a, model_b, workload, wanted, out, points=points,
                         curve_steps=curve_steps, lr=lr, batch_size=batch_size, seed=seed,
                         precision=precision, quiet=quiet)
    echo_outputs(paths)


def _connect(run_a, run_b, model_a, model_b, workload, wanted, out, *, points, curve_steps, lr,
             batch_size, seed, precision, quiet) -> list[str]:
    """Connect the two models and write the outputs (the caller holds OUT/curve.h5's lock);
    returns their paths."""
    from landscape.io.atomic import save_figure
    from landscape.geometry.connect import connect_models, curve_coordinates
    from landscape.io import curve_h5
    from landscape.io.atomic import write_csv, write_json
    from landscape.plot.geometry import connect_figure

    timings = {}
    started = time.perf_counter()
    bars = {}

    def on_progress(stage, count):
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            total = curve_steps if stage == "curve" else points
            bars[stage] = progress(total, {"curve": "curve", "linear": "linear path",
                                           "bezier": "Bezier curve"}[stage], quiet=quiet,
                                   unit="step" if stage == "curve" else "pt")
        bars[stage].update(1)

    try:
        result = connect_models(workload, model_a.params, model_b.params, model_a.state,
                                points=points, curve_steps=curve_steps, learning_rate=lr,
                                batch_size=batch_size, splits=wanted, seed=seed,
                                on_progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
    timings["connect_s"] = time.perf_counter() - started

    ts = result["t"]
    bezier_x, bezier_y = curve_coordinates(ts)
    plane = {"linear_x": ts, "linear_y": 0 * ts}
    if result["bezier"] is not None:
        plane.update(bezier_x=bezier_x, bezier_y=bezier_y)
    settings = {"points": points, "curve_steps": curve_steps, "lr": lr,
                "batch_size": min(batch_size, len(workload.train)), "splits": list(wanted),
                "seed": seed, "curve_optimizer": "adam", "precision": precision,
                "batch_stats": "re-estimated at every point" if workload.train_loss is not None
                else "none (the model has no BatchNorm)"}
    provenance = {"tool": "landscape", "workload": model_a.description["workload"],
                  "run_a": model_a.description, "run_b": model_b.description,
                  "settings": settings, "barriers": result["barriers"]}
    paths = [os.path.join(out, name) for name in ("connect.json", "connect.csv", "curve.h5",
                                                  "connect.png")]
    curve_h5.write(paths[2], curve_h5.CurveFile(
        ts, result["linear"], result["bezier"], model_a.params, model_b.params,
        result["control"], plane, result["curve_loss"], provenance))
    columns, rows = _table(ts, result)
    write_csv(paths[1], columns, rows)
    figure = connect_figure(ts, result["linear"], result["bezier"],
                            title=f"{workload.name}: {_label(run_a)} → {_label(run_b)}")
    save_figure(figure, paths[3])
    report = {**provenance, "timings": timings,
              "linear": {k: v.tolist() for k, v in result["linear"].items()},
              "bezier": None if result["bezier"] is None else
              {k: v.tolist() for k, v in result["bezier"].items()}, "t": ts.tolist()}
    write_json(paths[0], report)
    for path_name, values in result["barriers"].items():
        # train before test, loss before error
        ordered = sorted(values, key=lambda k: (not k.startswith("train"), not k.endswith("loss")))
        click.echo(f"{path_name} barrier: " + ", ".join(f"{k} {values[k]:.4g}" for k in ordered))
    return paths


def _workload_name(path: str) -> str | None:
    """What ``run.json`` says the run was trained on (``workload_source`` for a user workload),
    or None when it cannot say (``open_run`` then reports what is wrong)."""
    try:
        with open(os.path.join(path, "run.json")) as handle:
            document = json.load(handle)
        name = document.get("workload_source") or document.get("workload")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _label(path: str) -> str:
    return os.path.join(*os.path.normpath(path).split(os.sep)[-2:])


def _table(ts, result) -> tuple[list[str], list[dict[str, str]]]:
    """connect.csv's columns (t, then each metric along each path) and rows."""
    paths = [p for p in ("linear", "bezier") if result[p] is not None]
    columns = ["t"] + [f"{p}_{n}" for p in paths for n in result["linear"]]
    rows = [{"t": f"{t:.6g}", **{f"{p}_{n}": repr(float(result[p][n][i]))
                                 for p in paths for n in result["linear"]}}
            for i, t in enumerate(ts)]
    return columns, rows

