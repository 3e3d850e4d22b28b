"""``curvature_along_runs``: λmax (λmin, the trace, the preconditioned sharpness) at recorded
steps of training runs against each optimizer's edge-of-stability threshold, into
``OUT/curvature.json``, ``OUT/curvature.csv`` and ``OUT/curvature.png``."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from landscape.errors import InputError
from landscape.probes.session import OnProgress, Reporter, Written

CSV_COLUMNS = ("run", "optimizer", "step", "lambda_max", "lambda_max_residual", "lambda_min",
               "lambda_min_residual", "trace", "trace_stderr", "threshold", "threshold_formula",
               "preconditioned_max", "preconditioned_residual", "preconditioned_threshold",
               "converged", "lanczos_steps", "precision", "operator")
CURVATURE_FILES = ("curvature.json", "curvature.csv", "curvature.png")


def curvature_along_runs(
    runs: Sequence[str | os.PathLike] | Sequence[tuple[Any, Any]],
    out: str | os.PathLike,
    *,
    steps: str | Sequence[int] | None = "all",
    lambda_min: bool = False,
    trace_samples: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    preconditioned: bool = True,
    operator: str = "hessian",
    precision: str | None = None,
    seed: int = 0,
    on_progress: OnProgress | None = None,
    on_message: Any = None,
    on_warning: Any = None,
) -> Written:
    """The curvature of the ``operator`` matrix (``"hessian"``, ``"ggn"``, ``"fisher"``) of
    each run's full-training-set mean loss at its recorded ``steps``; ``out/curvature.json``,
    ``out/curvature.csv`` and ``out/curvature.png`` (λmax against step with each optimizer's
    edge-of-stability threshold: 2/η for SGD, 2(1+β)/η heavy ball, (2+2β)/(η(1+2β)) Nesterov,
    (2+2β1)/((1−β1)η) against the preconditioned sharpness for Adam; Cohen et al. 2021, 2022).

    ``runs``: run directories of ``landscape train``, or what :func:`landscape.open_runs`
    returns for them. ``steps``: ``"all"`` recorded steps, a list of them (each recorded by
    every run), or None (the final model). At each step λmax (Lanczos, to ``tol``/``atol``
    by the ``stop`` rule, at most ``max_iter`` steps, started from the previous step's
    eigenvector), with ``lambda_min`` also λmin, with ``trace_samples`` a Hutchinson trace,
    and for Adam and RMSProp runs with a recorded optimizer state (``preconditioned``) also
    λmax(P^-1/2 H P^-1/2). Every product at ``precision`` (default ``highest``), recorded.
    ``on_progress("curvature", done, total)`` per step; ``on_message`` a summary line per run;
    ``on_warning`` as :class:`~landscape.probes.session.Reporter` takes them.

    Returns:
      :class:`~landscape.probes.Written`: ``report`` (what curvature.json holds) and the
      three ``files``.
    """
    from landscape.curvature.products import OPERATOR_NAMES
    from landscape.geometry.curvature import run_curvature
    from landscape.io.atomic import save_figure, write_csv, write_json
    from landscape.plot.geometry import curvature_figure
    from landscape.precision import DEFAULT as DEFAULT_PRECISION
    from landscape.precision import check_precision, computing_in
    from landscape.sources import open_runs

    if not runs:
        raise InputError("`runs` is empty: give at least one run directory", param="runs")
    loaded = (open_runs([os.fspath(r) for r in runs])
              if isinstance(runs[0], (str, os.PathLike)) else list(runs))
    paths = [model.description["run"] for model, _ in loaded]
    precision = check_precision(precision or DEFAULT_PRECISION)
    said = Reporter(on_progress, on_message, on_warning)
    chosen = [recorded_steps(path, run, steps) for path, (_, run) in zip(paths, loaded)]
    names = run_labels(paths, [run for _, run in loaded])
    results, timings = [], {}
    done = said.counter("curvature", sum(map(len, chosen)))
    with computing_in(precision):
        for (model, run), at, name in zip(loaded, chosen, names):
            started = time.perf_counter()
            results.append(run_curvature(
                run, model.workload, steps=at, preconditioned=preconditioned,
                lambda_min=lambda_min, trace_samples=trace_samples, tol=tol, atol=atol,
                stop=stop, max_iter=max_iter, seed=seed, on_point=lambda i: done(1),
                operator=operator))
            timings[name] = time.perf_counter() - started
    report = {"tool": "landscape", "split": "train", "precision": precision,
              "operator": operator,
              "settings": {"tol": tol, "atol": atol, "stop": stop, "max_iter": max_iter,
                           "lambda_min": lambda_min,
                           "trace_samples": trace_samples, "seed": seed,
                           "warm_start": "previous step's eigenvector + 0.5 Gaussian"},
              "runs": [], "timings_s": timings}
    rows, series = [], []
    for path, name, result, (model, run) in zip(paths, names, results, loaded):
        c, th = result.curvature, result.threshold
        report["runs"].append({
            "label": name, "run": path, "model": model.description,
            "optimizer": result.optimizer, "preconditioned": result.preconditioned,
            "threshold": None if th is None else th._asdict(),
            **{k: _json(v) for k, v in c.columns().items()}})
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
        _summary(said, name, result)
    files = [os.path.join(os.fspath(out), name) for name in CURVATURE_FILES]
    os.makedirs(os.fspath(out), exist_ok=True)
    write_json(files[0], report, allow_nan=False)
    write_csv(files[1], CSV_COLUMNS, rows)
    title = f"{loaded[0][0].workload.name}: {OPERATOR_NAMES[operator]} sharpness along training"
    save_figure(curvature_figure(series, title=title), files[2])
    return Written(report, files)


def recorded_steps(path: str, run: Any, steps: str | Sequence[int] | None) -> list[int]:
    """The recorded steps of ``run`` (loaded from ``path``) that ``steps`` names: None, the
    last; ``"all"``; or a list, each of which it must have recorded."""
    recorded = [int(s) for s in run.trajectory.step]
    if steps is None:
        return recorded[-1:]
    if isinstance(steps, str):
        if steps != "all":
            raise InputError(f"`steps` (={steps!r}) must be `all`, None or a list of recorded "
                             "steps", param="steps")
        return recorded
    steps = list(dict.fromkeys(int(s) for s in steps))
    missing = [s for s in steps if s not in recorded]
    if missing or not steps:
        shown = ", ".join(map(str, recorded[:8])) + (" ..." if len(recorded) > 8 else "")
        what = f"step {missing[0]} was not recorded" if missing else "no step was given"
        raise InputError(f"`steps`: {what} in {path} (recorded: {shown}; every "
                         f"{run.record_every} steps, {recorded[0]}..{recorded[-1]})",
                         param="steps")
    return steps


def run_labels(paths: Sequence[str], runs: Sequence[Any]) -> list[str]:
    """The optimizer's name, or the run's folder where two runs share one."""
    names = [run.optimizer.get("name", "run") for run in runs]
    return [name if names.count(name) == 1 else os.path.normpath(path)
            for name, path in zip(names, paths)]


def _summary(said: Reporter, name: str, result) -> None:
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
    said.message(line)
    if not c.converged.all():
        said.warning(f"warning: {name}: {int((~c.converged).sum())} of {len(c.step)} steps did "
                     "not reach `tol` in `max_iter` Lanczos steps (their residuals are in the "
                     "outputs)")


def _cell(value) -> str:
    value = float(value)
    return "" if value != value else repr(value)


def _json(values: np.ndarray) -> list:
    return [None if isinstance(v, float) and v != v else v for v in np.asarray(values).tolist()]
