"""``landscape hessian RUN [RUN ...] --steps all|N,M,...``: curvature along recorded training
runs (λmax per step against each optimizer's edge-of-stability threshold). Not a command of its
own: the part of ``landscape hessian`` that takes run directories and several steps."""

from __future__ import annotations

import os
import time

import click
import numpy as np

from landscape.cli.options import echo_outputs, progress

CSV_COLUMNS = ("run", "optimizer", "step", "lambda_max", "lambda_max_residual", "lambda_min",
               "lambda_min_residual", "trace", "trace_stderr", "threshold", "threshold_formula",
               "preconditioned_max", "preconditioned_residual", "preconditioned_threshold",
               "converged", "lanczos_steps", "precision", "operator")


def parse_steps(spec: str | None) -> str | list[int] | None:
    """``None`` (final model), ``"all"``, or the listed steps (``--steps N,M,...`` with RUN)."""
    if spec is None or spec.strip() == "all":
        return None if spec is None else "all"
    try:
        steps = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        steps = []
    if not steps or any(s < 0 for s in steps):
        raise click.BadParameter(f"(={spec}) with RUN must be `all` or a comma-separated list "
                                 "of recorded steps, e.g. 0,100,200", param_hint="--steps")
    return list(dict.fromkeys(steps))


def chosen_steps(path: str, run, spec: str | list[int] | None) -> list[int]:
    """The recorded steps of ``run`` to probe; a step it did not record is a usage error."""
    recorded = [int(s) for s in run.trajectory.step]
    if spec is None:
        return recorded[-1:]
    if spec == "all":
        return recorded
    missing = [s for s in spec if s not in recorded]
    if missing:
        shown = ", ".join(map(str, recorded[:8])) + (" ..." if len(recorded) > 8 else "")
        raise click.BadParameter(
            f"step {missing[0]} was not recorded in {path} (recorded: {shown}; every "
            f"{run.record_every} steps, {recorded[0]}..{recorded[-1]})", param_hint="--steps")
    return spec


def labels(paths: list[str], runs: list) -> list[str]:
    """The optimizer's name, or the run's folder where two runs share one."""
    names = [run.optimizer.get("name", "run") for run in runs]
    return [name if names.count(name) == 1 else os.path.normpath(path)
            for name, path in zip(names, paths)]


def along_runs(paths: list[str], loaded: list, spec, *, bottom: bool, trace_samples: int,
               tol: float, atol: float, stop: str, max_iter: int, preconditioned: bool,
               seed: int, out: str, quiet: bool, precision: str = "highest",
               operator: str = "hessian") -> None:
    """Measure, report and draw the curvature of every run at its chosen steps (inside the
    caller's ``precision``, which the outputs record) of the ``operator`` matrix."""
    from landscape.curvature.products import OPERATOR_NAMES

    from landscape.io.atomic import save_figure
    from landscape.geometry.curvature import run_curvature
    from landscape.io.atomic import write_csv, write_json
    from landscape.plot.geometry import curvature_figure

    runs = [run for _, run in loaded]
    steps = [chosen_steps(path, run, spec) for path, run in zip(paths, runs)]
    names = labels(paths, runs)
    results, timings = [], {}
    with progress(sum(map(len, steps)), "curvature", quiet=quiet, unit="step") as bar:
        for path, (model, run), chosen, name in zip(paths, loaded, steps, names):
            started = time.perf_counter()
            results.append(run_curvature(
                run, model.workload, steps=chosen, preconditioned=preconditioned,
                lambda_min=bottom, trace_samples=trace_samples, tol=tol, atol=atol, stop=stop,
                max_iter=max_iter, seed=seed, on_point=lambda i: bar.update(1),
                operator=operator))
            timings[name] = time.perf_counter() - started
    report = {"tool": "landscape", "split": "train", "precision": precision,
              "operator": operator,
              "settings": {"tol": tol, "atol": atol, "stop": stop, "max_iter": max_iter,
                           "lambda_min": bottom,
                           "trace_samples": trace_samples, "seed": seed,
                           "warm_start": "previous step's eigenvector + 0.5 Gaussian"},
              "runs": [], "timings_s": timings}
    rows, series = [], []
    for path, name, result, (model, run) in zip(paths, names, results, loaded):
        c, th = result.curvature, result.threshold
        columns = {k: _json(v) for k, v in c.columns().items()}
        report["runs"].append({
            "label": name, "run": path, "model": model.description,
            "optimizer": result.optimizer, "preconditioned": result.preconditioned,
            "threshold": None if th is None else th._asdict(), **columns})
        for i in range(len(c.step)):
            rows.append({
                "run": path, "optimizer": result.name, "step": int(c.step[i]),
                **{k: _cell(getattr(c, k)[i]) for k in (
                    "lambda_max", "lambda_max_residual", "lambda_min", "lambda_min_residual",
                    "trace", "trace_stderr", "preconditioned_max", "preconditioned_residual")},
                "threshold": _cell(th.value) if th and not th.preconditioned else "",
                "threshold_formula": th.formula if th else "",
                "preconditioned_threshold": _cell(th.value) if th and th.preconditioned else "",
                "converged": bool(c.converged[i]), "lanczos_steps": int(c.lanczos_steps[i]),
                "precision": precision, "operator": operator})
        tracked = run.trajectory.sharpness
        series.append({"label": name, "step": c.step, "lambda_max": c.lambda_max,
                       "preconditioned_max": c.preconditioned_max, "threshold": th,
                       "tracked": None if tracked is None else (tracked.step, tracked.lambda_max)})
        _summary(name, result)
    paths_out = [os.path.join(out, name) for name in ("curvature.json", "curvature.csv",
                                                      "curvature.png")]
    write_json(paths_out[0], report, allow_nan=False)
    write_csv(paths_out[1], CSV_COLUMNS, rows)
    workload = loaded[0][0].workload.name
    matrix = OPERATOR_NAMES[operator]
    save_figure(curvature_figure(series, title=f"{workload}: {matrix} sharpness along training"),
                paths_out[2])
    echo_outputs(paths_out)


def _summary(name: str, result) -> None:
    c, th = result.curvature, result.threshold
    line = (f"{name}: λmax {c.lambda_max[0]:.4g} at step {c.step[0]}"
            + (f" → {c.lambda_max[-1]:.4g} at step {c.step[-1]}" if len(c.step) > 1 else ""))
    if th is not None and not th.preconditioned:
        line += f" (threshold {th.formula} = {th.value:.4g}, max {np.nanmax(c.lambda_max):.4g})"
    if np.isfinite(c.preconditioned_max).any():
        line += f"; preconditioned λmax max {np.nanmax(c.preconditioned_max):.4g}"
        if th is not None and th.preconditioned:
            line += f" (threshold {th.formula} = {th.value:.4g})"
    elif result.preconditioned not in ("not asked", "not an adaptive optimizer"):
        line += f"; preconditioned: {result.preconditioned}"
    click.echo(line)
    if not c.converged.all():
        click.echo(f"warning: {name}: {int((~c.converged).sum())} of {len(c.step)} steps did not "
                   "reach --tol in --max-iter Lanczos steps (their residuals are in the outputs)",
                   err=True)


def _cell(value) -> str:
    value = float(value)
    return "" if value != value else repr(value)


def _json(values: np.ndarray) -> list:
    return [None if isinstance(v, float) and v != v else v for v in np.asarray(values).tolist()]
