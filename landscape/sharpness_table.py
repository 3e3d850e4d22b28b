"""Sharpness of trained models side by side: every measure of
:func:`landscape.geometry.sharpness.model_sharpness` for each model, one table per model, written
as ``sharpness.json`` and ``sharpness.csv`` (what ``landscape sharpness`` does, as one call)::

    models = [model for model, _ in landscape.open_runs(["runs/sgd", "runs/adam"])]
    report = landscape.sharpness_report(models, "sharp", epsilons=(1e-3,))
    report.runs[0]["measures"]["lambda_max"]["value"]
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from landscape.errors import WriteError
from landscape.sources import ModelSource

COLUMNS = ("run", "measure", "value", "stderr", "base_loss", "perturbed_loss", "parameter",
           "method", "definition", "precision")
FILES = ("sharpness.json", "sharpness.csv")


@dataclasses.dataclass(frozen=True)
class SharpnessReport:
    """The measures of every model: ``document`` is ``sharpness.json``'s content (NaN where
    sharpness.json has null), ``rows`` ``sharpness.csv``'s rows (:data:`COLUMNS`), ``paths`` the
    files written (none without ``out``)."""

    document: dict[str, Any]
    rows: list[dict[str, Any]]
    paths: list[str]

    @property
    def runs(self) -> list[dict[str, Any]]:
        """``[{"run", "model", "measures": {name: {"value", "stderr", ...}}, "seconds"}]``."""
        return self.document["runs"]

    def lines(self) -> list[str]:
        """The tables as text: each run's label, then "  measure  value ± stderr" lines."""
        lines = []
        for entry in self.runs:
            lines.append(f"{entry['run']}:")
            for name, m in entry["measures"].items():
                error = f" ± {m['stderr']:.2g}" if m["stderr"] == m["stderr"] else ""
                lines.append(f"  {name:28s} {m['value']:.6g}{error}")
        return lines


def measures_per_model(epsilons: Sequence[float]) -> int:
    """How many measures :func:`sharpness_report` makes of each model (``on_measure`` calls)."""
    return len(epsilons) + 5


def sharpness_report(
    models: Sequence[ModelSource],
    out: str | os.PathLike | None = None,
    *,
    epsilons: Sequence[float] = (1e-3, 5e-4),
    rho_linf: float = 1e-3,
    rho_l2: float = 0.1,
    rho_average: float = 0.1,
    ascent_steps: int = 20,
    samples: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    precision: str = "highest",
    on_measure: Callable[[str], object] | None = None,
) -> SharpnessReport:
    """Every sharpness measure of each of ``models`` on its full training set (evaluation
    mode), beside λmax and the Hessian trace; with ``out``, written to ``out/sharpness.json``
    and ``out/sharpness.csv`` (the folder created if missing).

    Each model is labelled by its run directory (``model.description["run"]``, as
    :func:`landscape.open_run` makes it) or else its workload. ``epsilons``: Keskar et al.'s ε;
    ``rho_linf``, ``rho_l2``: ρ of the adaptive worst cases; ``rho_average``: of the average
    case; ``ascent_steps``: projected-gradient-ascent steps per maximum; ``samples``: Gaussian
    draws for the average case and Rademacher probes for the trace; ``tol``: λmax's relative
    tolerance (:func:`landscape.geometry.sharpness.model_sharpness`). Every loss, gradient and
    Hessian-vector product is computed at ``precision``. ``on_measure(name)`` after each
    measure (:func:`measures_per_model` per model: a progress bar).
    """
    from landscape.geometry.sharpness import model_sharpness
    from landscape.precision import check_precision, computing_in

    precision = check_precision(precision)
    document: dict[str, Any] = {
        "tool": "landscape", "split": "train", "precision": precision, "settings": {
            "epsilons": list(epsilons), "rho_linf": rho_linf, "rho_l2": rho_l2,
            "rho_average": rho_average, "ascent_steps": ascent_steps, "samples": samples,
            "tol": tol, "seed": seed}, "runs": []}
    rows = []
    with computing_in(precision):
        for model in models:
            label = model.description.get("run") or model.description["workload"]
            started = time.perf_counter()
            table = model_sharpness(model.workload, model.params, model.state,
                                    epsilons=tuple(epsilons), rho_linf=rho_linf, rho_l2=rho_l2,
                                    rho_average=rho_average, steps=ascent_steps,
                                    samples=samples, trace_samples=samples, tol=tol, seed=seed,
                                    on_measure=on_measure)
            document["runs"].append({"run": label, "model": model.description,
                                     "measures": table, "seconds": time.perf_counter() - started})
            for name, entry in table.items():
                parameter = next((f"{k}={entry[k]:g}" for k in ("epsilon", "rho") if k in entry),
                                 "")
                rows.append({"run": label, "measure": name, "value": entry["value"],
                             "stderr": entry["stderr"], "base_loss": entry.get("base_loss", ""),
                             "perturbed_loss": entry.get("perturbed_loss", ""),
                             "parameter": parameter, "method": entry["method"],
                             "definition": entry["definition"], "precision": precision})
    paths = [] if out is None else _write(os.fspath(out), document, rows)
    return SharpnessReport(document, rows, paths)


def _write(out: str, document: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    from landscape.io.atomic import write_csv, write_json

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create folder {out}: {exc.strerror}") from exc
    paths = [os.path.join(out, name) for name in FILES]
    write_json(paths[0], _finite(document))
    write_csv(paths[1], COLUMNS, rows)
    return paths


def _finite(value):
    """NaN → None, so the JSON is standard."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
