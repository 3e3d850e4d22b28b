"""Mode connectivity of two trained models, with its files: the linear path and a trained
quadratic Bezier curve between them (:func:`landscape.geometry.connect.connect_models`), the
barrier on each, written as ``connect.json``, ``connect.csv``, ``curve.h5``
(:mod:`landscape.io.curve_h5`) and ``connect.png`` (what ``landscape connect`` does, as one
call)::

    (a, _), (b, _) = landscape.open_runs(["runs/a/adam", "runs/b/adam"])
    connection = landscape.connect_runs(a, b, "connect", curve_steps=500)
    connection.barriers["bezier"]["train_loss"]

While it writes, ``out/curve.h5.lock`` is held (:mod:`landscape.io.lock`): a second connect into
the same folder stops at once with :class:`~landscape.errors.FileInUse`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from landscape.errors import InputError, WriteError
from landscape.sources import ModelSource

FILES = ("connect.json", "connect.csv", "curve.h5", "connect.png")
STAGES = {"curve": "curve", "linear": "linear path", "bezier": "Bezier curve"}  # progress names


@dataclasses.dataclass(frozen=True)
class Connection:
    """Two models connected: ``t`` (points,), each path's metrics ``{metric: (points,)}``
    (``bezier`` None without a curve), the curve's control point θ_b (or None), ``barriers``
    ``{"linear": {...}, "bezier": {...}}``, the curve's minibatch losses ``curve_loss``
    (curve_steps,), and ``paths``: the files written (:data:`FILES` in ``out``)."""

    t: np.ndarray
    linear: dict[str, np.ndarray]
    bezier: dict[str, np.ndarray] | None
    control: Any
    barriers: dict[str, dict[str, float]]
    curve_loss: np.ndarray
    paths: list[str]

    def barrier_lines(self) -> list[str]:
        """"linear barrier: train_loss 0.12, train_error 3.4, ..." for each path (train before
        test, loss before error)."""
        lines = []
        for path_name, values in self.barriers.items():
            ordered = sorted(values, key=lambda k: (not k.startswith("train"),
                                                    not k.endswith("loss")))
            lines.append(f"{path_name} barrier: "
                         + ", ".join(f"{k} {values[k]:.4g}" for k in ordered))
        return lines


def connect_runs(
    model_a: ModelSource,
    model_b: ModelSource,
    out: str | os.PathLike,
    *,
    points: int = 21,
    curve_steps: int = 1000,
    lr: float = 1e-3,
    batch_size: int = 128,
    splits: Sequence[str] = ("train", "test"),
    seed: int = 0,
    precision: str = "highest",
    on_progress: Callable[[str, int], None] | None = None,
) -> Connection:
    """Connect two models of one workload (:func:`landscape.open_run`'s, or any
    :class:`landscape.ModelSource`) and write ``out/connect.json`` (barriers, settings,
    timings), ``out/connect.csv`` (t and every metric along both paths), ``out/curve.h5`` (the
    curve, its endpoints and its coordinates on the plane through A, B and the curve's
    midpoint) and ``out/connect.png``, holding ``out/curve.h5.lock`` throughout.

    ``points``: evaluated t evenly spaced in [0, 1]; ``curve_steps`` minibatch steps of Adam
    (``lr``, ``batch_size``) train the control point (0: the straight line only); ``splits``:
    what is evaluated along the paths (``test`` skipped when the workload has none). Everything
    is computed at ``precision`` (recorded). ``on_progress(stage, count)`` as
    :func:`~landscape.geometry.connect.connect_models` (stages: :data:`STAGES`).

    Raises:
      InputError: the models are of different workloads, or a bad value.
      FileInUse: another connect writes into ``out``.
    """
    from landscape.geometry.connect import connect_models
    from landscape.io.lock import exclusive
    from landscape.precision import check_precision, computing_in

    precision = check_precision(precision)
    names = [model.description["workload"] for model in (model_a, model_b)]
    if names[0] != names[1]:
        raise InputError(f"the models are of different workloads ({names[0]!r} and "
                         f"{names[1]!r}): connect two models of one")
    if not splits or any(s not in ("train", "test") for s in splits):
        raise InputError(f"`splits` (={', '.join(splits)}) must be some of: train, test",
                         param="splits")
    workload = model_a.workload
    wanted = tuple(dict.fromkeys(s for s in splits if s == "train" or workload.test is not None))
    out = os.fspath(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create folder {out}: {exc.strerror}") from exc
    # out/curve.h5.lock guards every output, as scan/compare lock out/surface.h5: a second
    # connect into this folder stops at once instead of both writing, the last one winning.
    with computing_in(precision), exclusive(os.path.join(out, "curve.h5"), what="connect"):
        started = time.perf_counter()
        result = connect_models(workload, model_a.params, model_b.params, model_a.state,
                                points=points, curve_steps=curve_steps, learning_rate=lr,
                                batch_size=batch_size, splits=wanted, seed=seed,
                                on_progress=on_progress)
        timings = {"connect_s": time.perf_counter() - started}
        settings = {"points": points, "curve_steps": curve_steps, "lr": lr,
                    "batch_size": min(batch_size, len(workload.train)), "splits": list(wanted),
                    "seed": seed, "curve_optimizer": "adam", "precision": precision,
                    "batch_stats": "re-estimated at every point" if workload.train_loss
                    is not None else "none (the model has no BatchNorm)"}
        paths = _write(out, result, model_a, model_b, settings, timings)
    return Connection(result["t"], result["linear"], result["bezier"], result["control"],
                      result["barriers"], result["curve_loss"], paths)


def check_same_workload(run_a: str | os.PathLike, run_b: str | os.PathLike) -> None:
    """An ``InputError`` when the ``run.json`` files of two run directories name different
    workloads (``workload_source`` for a user workload): a check made before loading either
    model. A run.json that cannot say is left to :func:`landscape.open_run` to report."""
    names = [_workload_name(path) for path in (run_a, run_b)]
    if None not in names and names[0] != names[1]:
        raise InputError(f"the runs are of different workloads ({names[0]!r} in "
                         f"{os.fspath(run_a)}, {names[1]!r} in {os.fspath(run_b)}): connect two "
                         "runs of one")


def _workload_name(path: str | os.PathLike) -> str | None:
    """What ``run.json`` says the run was trained on, or None when it cannot say."""
    try:
        with open(os.path.join(path, "run.json")) as handle:
            document = json.load(handle)
        name = document.get("workload_source") or document.get("workload")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _write(out: str, result: dict[str, Any], model_a: ModelSource, model_b: ModelSource,
           settings: dict[str, Any], timings: dict[str, float]) -> list[str]:
    """Write the four files (the caller holds out/curve.h5's lock); returns their paths."""
    from landscape.geometry.connect import curve_coordinates
    from landscape.io import curve_h5
    from landscape.io.atomic import save_figure, write_csv, write_json
    from landscape.plot.geometry import connect_figure

    ts = result["t"]
    bezier_x, bezier_y = curve_coordinates(ts)
    plane = {"linear_x": ts, "linear_y": 0 * ts}
    if result["bezier"] is not None:
        plane.update(bezier_x=bezier_x, bezier_y=bezier_y)
    provenance = {"tool": "landscape", "workload": model_a.description["workload"],
                  "run_a": model_a.description, "run_b": model_b.description,
                  "settings": settings, "barriers": result["barriers"]}
    paths = [os.path.join(out, name) for name in FILES]
    curve_h5.write(paths[2], curve_h5.CurveFile(
        ts, result["linear"], result["bezier"], model_a.params, model_b.params,
        result["control"], plane, result["curve_loss"], provenance))
    write_csv(paths[1], *_table(ts, result))
    title = f"{model_a.workload.name}: {_label(model_a)} → {_label(model_b)}"
    save_figure(connect_figure(ts, result["linear"], result["bezier"], title=title), paths[3])
    write_json(paths[0], {
        **provenance, "timings": timings,
        "linear": {k: v.tolist() for k, v in result["linear"].items()},
        "bezier": None if result["bezier"] is None else
        {k: v.tolist() for k, v in result["bezier"].items()}, "t": ts.tolist()})
    return paths


def _label(model: ModelSource) -> str:
    """A model's name in the figure's title: the last two parts of its run's path
    (``runs/adam``), else its workload."""
    path = model.description.get("run")
    if not path:
        return str(model.description["workload"])
    return os.path.join(*os.path.normpath(path).split(os.sep)[-2:])


def _table(ts: np.ndarray, result: dict[str, Any]) -> tuple[list[str], list[dict[str, str]]]:
    """connect.csv's columns (t, then each metric along each path) and rows."""
    paths = [p for p in ("linear", "bezier") if result[p] is not None]
    columns = ["t"] + [f"{p}_{n}" for p in paths for n in result["linear"]]
    rows = [{"t": f"{t:.6g}", **{f"{p}_{n}": repr(float(result[p][n][i]))
                                 for p in paths for n in result["linear"]}}
            for i, t in enumerate(ts)]
    return columns, rows
