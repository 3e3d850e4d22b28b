"""Comparing optimizers on one surface: their paths, a common plane, and a summary table.

Two kinds of landscape:

- a classic 2D test function (:mod:`landscape.data.functions`), whose two parameters *are* the
  plane: every optimizer runs from the same start (:func:`run_on_function`), with the tuned
  Rosenbrock settings of the optimizer suite (:func:`function_optimizer`), and its path needs no
  projection;
- a network: the runs of :func:`landscape.train` (same initialization), a plane shared by all of
  them (:func:`common_plane`: PCA of the union of their recorded rows θ − θ_ref, or the plane
  through three endpoints) and each path projected onto it by least squares, the residual saying
  how far it leaves the plane (:func:`compared_path`).

:func:`summarize` turns the paths into one row per optimizer (final loss and accuracy, steps to
reach a loss threshold, path length, plane residual). Nothing here prints or writes files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from landscape.directions import Plane, interpolation_plane, pca_plane
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.projection import project_onto_plane
from landscape.workload import Params

PLANE_KINDS = ("pca", "endpoints")
Point = tuple[float, float]


# ---------------------------------------------------------------------------------------------
# Test functions: the parameters are the plane.


def function_setting(name: str) -> Any:
    """The tuned Rosenbrock setting of optimizer ``name`` (``optimizers.ROSENBROCK``, the table of
    ``docs/optimizers.md``); an unknown name is an :class:`InputError` listing the valid ones."""
    import optimizers

    if name not in optimizers.ROSENBROCK:
        raise InputError(f"`--optimizer` (={name!r}) is not a known optimizer; choose one of "
                         f"{', '.join(optimizers.names())}")
    return optimizers.ROSENBROCK[name]


def function_optimizer(name: str, *, steps: int, learning_rate: float | None = None
                       ) -> tuple[optax.GradientTransformation, dict[str, Any]]:
    """Optimizer ``name`` as tuned on Rosenbrock: the table's learning rate (or ``learning_rate``),
    its hyperparameters, and — where the table says so — a cosine decay of the rate over
    ``steps`` (the length of this run, not the table's).

    Returns the transformation and a JSON-ready description (name, learning rate, schedule,
    hyperparameters).
    """
    import optimizers

    setting = function_setting(name)
    peak = setting.learning_rate if learning_rate is None else float(learning_rate)
    if not peak > 0:
        raise InputError(f"`--lr` for {name} (={peak}) must be > 0")
    rate = optax.cosine_decay_schedule(peak, steps) if setting.cosine_decay else peak
    hyperparams = dict(setting.hyperparams)
    try:
        transformation = optimizers.get(name, learning_rate=rate, **hyperparams)
    except (ValueError, TypeError) as exc:
        raise InputError(f"optimizer `{name}`: {exc}") from exc
    description = {"name": name, "learning_rate": peak,
                   "schedule": "cosine_decay" if setting.cosine_decay else "constant",
                   "hyperparams": hyperparams}
    return transformation, description


def check_start(fn: Callable[[jax.Array], jax.Array], start: Sequence[float]) -> None:
    """Refuse (:class:`InputError`) a start where ``fn`` or its gradient is not finite in
    float32, the precision :func:`run_on_function` runs in: no optimizer could take a step
    there, and the path and the plot's box would be made of infinities."""
    theta = jnp.asarray(start, jnp.float32)
    value, grad = jax.jit(jax.value_and_grad(fn))(theta)
    where = f"at ({float(start[0]):g}, {float(start[1]):g}) in float32"
    if not np.isfinite(value):
        raise InputError(f"f(x, y) is {float(value):g} {where}, the precision the optimizers "
                         "run in; start where f and its gradient are finite")
    if not np.isfinite(grad).all():
        raise InputError(f"f(x, y) is finite but its gradient is not finite {where}, the "
                         "precision the optimizers run in; start where f and its gradient are "
                         "finite")


def run_on_function(fn: Callable[[jax.Array], jax.Array], optimizer: optax.GradientTransformation,
                    start: Sequence[float], *, steps: int) -> np.ndarray:
    """Run ``optimizer`` on ``fn`` from ``start`` for ``steps`` steps (float32, one compiled
    ``lax.scan``): the usual optax loop ``g = ∇f(θ); u, s = update(g, s, θ); θ += u``.

    Returns the visited points, shaped (steps + 1, 2), ``start`` first.
    """
    if steps < 1:
        raise InputError(f"`steps` (={steps}) must be >= 1")
    theta0 = jnp.asarray(start, jnp.float32)
    grad = jax.grad(fn)

    def step(carry, _):
        theta, state = carry
        updates, state = optimizer.update(grad(theta), state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, state), theta

    @jax.jit
    def run(theta):
        _, points = jax.lax.scan(step, (theta, optimizer.init(theta)), None, length=steps)
        return points

    points = np.asarray(run(theta0), np.float64)
    return np.concatenate([np.asarray(theta0, np.float64)[None], points])


def function_values(fn: Callable[[jax.Array], jax.Array], points: np.ndarray) -> np.ndarray:
    """``fn`` at each point of ``points`` (n, 2), as float64 (n,)."""
    return np.asarray(jax.jit(jax.vmap(fn))(jnp.asarray(points, jnp.float32)), np.float64)


def function_plane() -> Plane:
    """The identity plane of a 2D function: origin 0, d1 = e_x, d2 = e_y (coordinates = params)."""
    return Plane(np.zeros(2, np.float32), np.array([1.0, 0.0], np.float32),
                 np.array([0.0, 1.0], np.float32), kind="parameters", normalization="none",
                 ignore="none")


def function_grid(box: tuple[Point, Point], num: int, *, include: Sequence[Point] = ()) -> Grid:
    """An num × num grid over ``box`` ((xmin, xmax), (ymin, ymax)), widened to hold ``include``
    (e.g. a start outside the usual box) with a 5 % margin."""
    (x0, x1), (y0, y1) = box
    for x, y in include:
        if not x0 <= x <= x1:
            pad = 0.05 * (x1 - x0)
            x0, x1 = min(x0, x - pad), max(x1, x + pad)
        if not y0 <= y <= y1:
            pad = 0.05 * (y1 - y0)
            y0, y1 = min(y0, y - pad), max(y1, y + pad)
    return Grid(np.linspace(x0, x1, num), np.linspace(y0, y1, num))


# ---------------------------------------------------------------------------------------------
# Paths on a plane.


@dataclasses.dataclass(frozen=True)
class ComparedPath:
    """One optimizer's path on the comparison plane, one entry per recorded step.

    ``loss`` is the true (full training set) loss, ``residual`` the distance of each recorded θ
    from the plane in parameter units (0 on a test function), ``distance`` its distance from the
    plane's origin ‖θ − θ_ref‖, ``length`` the path length
    Σ‖θ_{k+1} − θ_k‖ in parameter space over the recorded points, ``metrics`` the final
    ``train_loss``, ``test_loss``, ``train_acc``, ``test_acc`` (accuracies in percent, NaN where
    they do not apply), and ``projected_loss`` the surface interpolated at each projected point
    (filled once the surface exists).
    """

    name: str
    optimizer: dict[str, Any]
    step: np.ndarray  # (n,) int64
    x: np.ndarray  # (n,)
    y: np.ndarray  # (n,)
    loss: np.ndarray  # (n,)
    residual: np.ndarray  # (n,)
    relative_residual: np.ndarray  # (n,) residual / ‖θ − origin‖
    distance: np.ndarray  # (n,) ‖θ − origin‖
    length: float
    metrics: dict[str, float]
    projected_loss: np.ndarray | None = None  # (n,)
    diverged_at: int | None = None  # the step whose loss was NaN/inf (the path ends before it)


def path_length(rows: np.ndarray) -> float:
    """Σ_k ‖r_{k+1} − r_k‖ over the rows (n, dims) of a path (NaN once it is not finite)."""
    rows = np.asarray(rows, np.float64)
    if len(rows) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(rows, axis=0), axis=1).sum())


def function_path(name: str, optimizer: dict[str, Any], points: np.ndarray, loss: np.ndarray
                  ) -> ComparedPath:
    """A path on a test function: the coordinates are the parameters (no residual)."""
    n = len(points)
    zeros = np.zeros(n)
    distance = np.linalg.norm(np.asarray(points, np.float64), axis=1)  # the origin is (0, 0)
    metrics = {"train_loss": float(loss[-1]), "test_loss": math.nan, "train_acc": math.nan,
               "test_acc": math.nan}
    return ComparedPath(name, optimizer, np.arange(n, dtype=np.int64), points[:, 0], points[:, 1],
                        np.asarray(loss, np.float64), zeros, zeros, distance, path_length(points),
                        metrics)


def _flat(tree: Params) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def common_plane(paths: Mapping[str, Sequence[Params]], reference: Params, *, kind: str = "pca",
                 reference_name: str | None = None, initial: Params | None = None) -> Plane:
    """One plane for every path, through ``reference``.

    ``pca``: the top two principal components of the union of every path's recorded rows
    θ − θ_ref (each distinct point once: the shared initial point is not counted once per
    optimizer), by :func:`landscape.directions.pca_plane` — Li et al.'s PCA directions for
    several trajectories at once.
    ``endpoints``: the plane through the reference and the final points of the first two other
    paths (:func:`~landscape.directions.interpolation_plane`: α = 1 at the first, β = 1 at the
    second); with only one other path, its final point and ``initial``.
    ``reference_name`` is the path whose final point the reference is (None for another point).
    """
    if kind not in PLANE_KINDS:
        raise InputError(f"`--plane` (={kind!r}) must be one of {', '.join(PLANE_KINDS)}")
    if not paths:
        raise InputError("no paths to compare")
    if kind == "endpoints":
        others = [rows[-1] for name, rows in paths.items() if name != reference_name]
        if len(others) < 2 and initial is not None:
            others.append(initial)
        if len(others) < 2:
            raise InputError("`--plane endpoints` needs two points besides the reference: compare "
                             "three optimizers, or two with the shared initial point")
        plane = interpolation_plane(reference, others[0], others[1])
        d1, d2 = _flat(plane.d1), _flat(plane.d2)
        cross = np.linalg.norm(d1) * np.linalg.norm(d2)
        if cross == 0 or abs(d1 @ d2) / cross > 1 - 1e-9:
            raise InputError("`--plane endpoints`: the reference and the two endpoints lie on one "
                             "line (or coincide); use `--plane pca`")
        return dataclasses.replace(plane, kind="endpoints")
    reference_flat = _flat(reference)
    seen = {reference_flat.tobytes()}
    union: list[Params] = []
    for rows in paths.values():
        for theta in rows:
            key = _flat(theta).tobytes()
            if key not in seen:
                seen.add(key)
                union.append(theta)
    # pca_plane centres the rows θ − θ_last: the reference goes last, once.
    plane = pca_plane([*union, reference])
    return dataclasses.replace(plane, kind="pca")


def compared_path(name: str, optimizer: dict[str, Any], rows: Sequence[Params], plane: Plane, *,
                  step: np.ndarray, loss: np.ndarray, metrics: Mapping[str, float],
                  diverged_at: int | None = None) -> ComparedPath:
    """Project a network's recorded params ``rows`` onto ``plane`` (least squares, with
    residuals); ``metrics`` are the final ones (accuracies as fractions, stored in percent);
    ``diverged_at`` the step where the run diverged (None if it did not)."""
    projection = project_onto_plane(list(rows), plane)
    flat = np.stack([_flat(theta) for theta in rows])
    distance = np.linalg.norm(flat - _flat(plane.origin), axis=1)
    final = {key: float(metrics.get(key, math.nan)) for key in
             ("train_loss", "test_loss", "train_acc", "test_acc")}
    for key in ("train_acc", "test_acc"):
        final[key] *= 100.0
    y = projection.y if projection.y is not None else np.zeros_like(projection.x)
    return ComparedPath(name, optimizer, np.asarray(step, np.int64), projection.x, y,
                        np.asarray(loss, np.float64), projection.residual,
                        projection.relative_residual, distance, path_length(flat), final,
                        diverged_at=diverged_at)


def runs_on_plane(runs: Mapping[str, Any], *, kind: str = "pca", reference: str | None = None
                  ) -> tuple[Plane, list[ComparedPath], tuple[Params, Any, float]]:
    """Training runs (:class:`landscape.Run`, all from one initialization) on their common plane.

    ``reference`` names the run whose final point is the plane's origin; None takes the shared
    initial point. Returns the plane, one :class:`ComparedPath` per run, and the reference as
    ``(params, state, train_loss)`` — what a scan of the plane evaluates around.
    """
    rows = {name: [jax.tree.map(lambda leaf, i=i: leaf[i], run.trajectory.params)
                   for i in range(len(run.trajectory))] for name, run in runs.items()}
    first = next(iter(runs))
    if reference is None:
        run = runs[first]
        state = jax.tree.map(lambda leaf: leaf[0], run.trajectory.state)
        origin = (rows[first][0], state, float(run.trajectory.train_loss[0]))
    else:
        run = runs[reference]
        origin = (run.params, run.state, float(run.final_metrics["train_loss"]))
    plane = common_plane(rows, origin[0], kind=kind, reference_name=reference,
                         initial=rows[first][0])
    paths = [compared_path(name, run.optimizer, rows[name], plane, step=run.trajectory.step,
                           loss=run.trajectory.train_loss, metrics=run.final_metrics,
                           diverged_at=None if run.divergence is None else run.divergence.step)
             for name, run in runs.items()]
    return plane, paths, origin


# ---------------------------------------------------------------------------------------------
# The summary table.

SUMMARY_COLUMNS = ("optimizer", "learning_rate", "steps", "final_loss", "final_test_loss",
                   "final_train_acc", "final_test_acc", "steps_to_threshold", "path_length",
                   "max_residual", "relative_residual", "final_projected_loss")


def steps_to_reach(step: np.ndarray, loss: np.ndarray, threshold: float) -> int | None:
    """The first recorded step whose loss is ≤ ``threshold`` (None if it never gets there)."""
    hits = np.flatnonzero(np.asarray(loss) <= threshold)
    return int(step[hits[0]]) if hits.size else None


def default_threshold(paths: Sequence[ComparedPath], min_value: float | None = None,
                      tolerance: float = 1e-4) -> float:
    """``min_value + tolerance`` for a function with a known minimum; otherwise the highest
    final loss among the paths that make progress (so each of them gets a number: how soon it
    reaches what the slowest one ends with), NaN if none does.

    A path makes progress if it did not diverge and ends finite and below its first loss. The
    others would set a threshold every path meets at its first step (they all start at one
    point): a diverged run's last finite loss, or one that blew up, is usually far above it.
    """
    if min_value is not None and math.isfinite(min_value):
        return float(min_value + tolerance)
    finals = [float(p.loss[-1]) for p in paths
              if p.diverged_at is None and math.isfinite(float(p.loss[-1]))
              and float(p.loss[-1]) < float(p.loss[0])]
    return max(finals) if finals else math.nan


def summarize(paths: Sequence[ComparedPath], threshold: float) -> list[dict[str, Any]]:
    """One row per path, with the keys of :data:`SUMMARY_COLUMNS` (floats NaN where they do not
    apply; ``steps_to_threshold`` None where never reached).

    ``max_residual`` is the farthest a recorded point lies off the plane (parameter units) and
    ``relative_residual`` that over the farthest the path gets from the plane's origin: 0 for a
    path inside the plane, near 1 for one the plane does not see.
    """
    rows = []
    for path in paths:
        projected = path.projected_loss
        rows.append({
            "optimizer": path.name,
            "learning_rate": path.optimizer.get("learning_rate"),
            "steps": int(path.step[-1]),
            "final_loss": float(path.loss[-1]),
            "final_test_loss": path.metrics["test_loss"],
            "final_train_acc": path.metrics["train_acc"],
            "final_test_acc": path.metrics["test_acc"],
            "steps_to_threshold": steps_to_reach(path.step, path.loss, threshold),
            "path_length": path.length,
            "max_residual": float(np.max(path.residual)),
            "relative_residual": _ratio(float(np.max(path.residual)),
                                        float(np.max(path.distance))),
            "final_projected_loss": math.nan if projected is None else float(projected[-1]),
        })
    return rows


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def format_summary(rows: Sequence[Mapping[str, Any]], threshold: float) -> str:
    """The summary as an aligned text table; columns that apply to no row are left out (test
    metrics without a test set, accuracies on a regression, residuals on a function)."""
    columns = [
        ("optimizer", "optimizer", "{}"), ("learning_rate", "lr", "{:.3g}"),
        ("steps", "steps", "{}"), ("final_loss", "final loss", "{:.4g}"),
        ("final_test_loss", "test loss", "{:.4g}"), ("final_train_acc", "train acc %", "{:.2f}"),
        ("final_test_acc", "test acc %", "{:.2f}"),
        ("steps_to_threshold", f"steps to {threshold:.3g}", "{}"),
        ("path_length", "path length", "{:.4g}"), ("max_residual", "max residual", "{:.3g}"),
        ("relative_residual", "relative residual", "{:.3g}"),
        ("final_projected_loss", "surface at end", "{:.4g}"),
    ]

    off_plane = any(row.get("max_residual") for row in rows)

    def shown(key: str) -> bool:
        values = [row.get(key) for row in rows]
        if key == "steps_to_threshold" and not math.isfinite(threshold):
            return False  # no path made progress: no threshold to reach
        if key in ("max_residual", "relative_residual", "final_projected_loss"):
            # on the plane (a test function), the surface at the end only measures the grid's
            # interpolation error
            return off_plane
        return any(v is None or not isinstance(v, float) or not math.isnan(v) for v in values)

    def cell(key: str, value: Any, fmt: str) -> str:
        if value is None:
            return "never" if key == "steps_to_threshold" else "-"
        if isinstance(value, float) and math.isnan(value):
            return "-"
        return fmt.format(value)

    kept = [column for column in columns if shown(column[0])]
    table = [[title for _, title, _ in kept]]
    table += [[cell(key, row.get(key), fmt) for key, _, fmt in kept] for row in rows]
    widths = [max(len(line[k]) for line in table) for k in range(len(kept))]
    return "\n".join(
        "  ".join(text.ljust(width) if k == 0 else text.rjust(width)
                  for k, (text, width) in enumerate(zip(line, widths))).rstrip()
        for line in table)
