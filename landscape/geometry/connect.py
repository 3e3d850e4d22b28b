"""Mode connectivity: the loss along paths between two minima, and the barrier on each.

- **Linear path** θ(t) = (1 − t) θ_A + t θ_B (Goodfellow et al. 2015; Frankle et al. 2020).
- **Quadratic Bezier curve** (Garipov et al. 2018, "Loss surfaces, mode connectivity, and fast
  ensembling of DNNs"): θ(t) = (1 − t)² θ_A + 2t(1 − t) θ_b + t² θ_B, the control point θ_b
  trained by minimizing E_{t∼U(0,1)} L(θ(t)) — one t drawn per minibatch step — from the
  midpoint (θ_A + θ_B)/2.
- **Barrier** of a metric along a path: max_t f(θ(t)) − (f(θ_A) + f(θ_B))/2 (Frankle et al.
  2020, "Linear mode connectivity and the lottery ticket hypothesis", for the error; here for
  the loss too).

With BatchNorm, every evaluated point gets its own running statistics, re-estimated over the
training data (:mod:`landscape.geometry.batch_stats`): a point between two networks has neither
network's statistics.

The curve lies in the plane through θ_A, θ_B and its midpoint θ(½) = (θ_A + 2θ_b + θ_B)/4:
θ(t) − θ_A = (2t² − t)(θ_B − θ_A) + 4t(1 − t)(θ(½) − θ_A) exactly, so :func:`curve_plane` and
:func:`curve_coordinates` draw it on a scan of that plane with no projection error.

The path functions take any ``evaluate(params) -> {metric: value}``; :func:`workload_evaluator`
is the glue from a workload (BatchNorm statistics recomputed, then exact dataset means).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from landscape.directions import Plane, interpolation_plane
from landscape.errors import InputError
from landscape.workload import Params

Evaluate = Callable[[Params], dict[str, float]]


def linear_point(start: Params, end: Params, t: float | jax.Array) -> Params:
    """(1 − t) start + t end."""
    return jax.tree.map(lambda a, b: (1 - t) * a + t * b, start, end)


def bezier_point(start: Params, control: Params, end: Params, t: float | jax.Array) -> Params:
    """(1 − t)² start + 2t(1 − t) control + t² end."""
    return jax.tree.map(lambda a, c, b: (1 - t) ** 2 * a + 2 * t * (1 - t) * c + t ** 2 * b,
                        start, control, end)


def barrier(values: Sequence[float]) -> float:
    """max along the path − the mean of its two endpoint values (Frankle et al. 2020)."""
    values = np.asarray(values, np.float64)
    return float(np.max(values) - (values[0] + values[-1]) / 2)


def evaluate_path(evaluate: Evaluate, point_at: Callable[[float], Params], ts: Sequence[float],
                  on_point: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """``{metric: (len(ts),) values}`` of ``evaluate(point_at(t))`` at every t."""
    rows = []
    for i, t in enumerate(ts):
        rows.append(evaluate(point_at(float(t))))
        if on_point is not None:
            on_point(i)
    return {name: np.asarray([row[name] for row in rows], np.float64) for name in rows[0]}


def check_endpoints(start: Params, end: Params) -> None:
    """Raise :class:`InputError` unless the two endpoints have one layout and differ."""
    if jax.tree.structure(start) != jax.tree.structure(end) or \
            jax.tree.map(np.shape, start) != jax.tree.map(np.shape, end):
        raise InputError("the two endpoints have different parameter layouts")
    if all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(end))):
        raise InputError("the two endpoints are the same point: there is no path to measure")


@functools.partial(jax.jit, static_argnames=("loss", "optimizer", "batch_size"),
                   donate_argnums=(0, 1))
def _curve_step(control, opt_state, start, end, data, key, *, loss, optimizer, batch_size):
    t_key, batch_key = jax.random.split(key)
    t = jax.random.uniform(t_key, (), jax.tree.leaves(control)[0].dtype)
    n = jax.tree.leaves(data)[0].shape[0]
    rows = jax.random.choice(batch_key, n, (batch_size,), replace=False)
    batch = jax.tree.map(lambda x: x[rows], data)
    value, grads = jax.value_and_grad(
        lambda c: loss(bezier_point(start, c, end, t), batch))(control)
    updates, opt_state = optimizer.update(grads, opt_state, control)
    return optax.apply_updates(control, updates), opt_state, value


def train_bezier(
    loss: Callable[[Params, Any], jax.Array],
    start: Params,
    end: Params,
    data: Any,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    optimizer: optax.GradientTransformation | None = None,
    seed: int = 0,
    on_step: Callable[[int, jax.Array], None] | None = None,
) -> Params:
    """The control point θ_b of a quadratic Bezier curve from ``start`` to ``end`` trained to
    minimize E_{t∼U(0,1)} loss(θ(t), batch): ``steps`` steps, each with a fresh t and a
    minibatch of ``batch_size`` samples drawn without replacement from ``data`` (a pytree of
    arrays sharing a leading sample axis), by ``optimizer`` (default Adam, lr 1e-3) from the
    midpoint. ``loss(params, batch)`` is the training-mode minibatch mean.
    ``on_step(step, loss)`` after every step (the loss as a device scalar)."""
    check_endpoints(start, end)
    if steps < 0:
        raise InputError(f"`steps` (={steps}) must be >= 0")
    n = jax.tree.leaves(data)[0].shape[0]
    if not 1 <= batch_size <= n:
        raise InputError(f"`batch_size` (={batch_size}) must be between 1 and the number of "
                         f"training samples ({n})")
    optimizer = optimizer or optax.adam(1e-3)
    start, end = jax.device_put((start, end))
    control = jax.tree.map(lambda a, b: (jnp.asarray(a) + jnp.asarray(b)) / 2, start, end)
    opt_state = optimizer.init(control)
    data = jax.device_put(data)
    key = jax.random.key(seed)
    for step in range(1, steps + 1):
        control, opt_state, value = _curve_step(
            control, opt_state, start, end, data, jax.random.fold_in(key, step), loss=loss,
            optimizer=optimizer, batch_size=batch_size)
        if on_step is not None:
            on_step(step, value)
    return jax.tree.map(np.asarray, control)


def curve_midpoint(start: Params, control: Params, end: Params) -> Params:
    """θ(½) = (θ_A + 2θ_b + θ_B)/4."""
    return bezier_point(start, control, end, 0.5)


def curve_plane(start: Params, control: Params, end: Params) -> Plane:
    """The plane through ``start`` (origin), ``end`` (x = 1, y = 0) and the curve's midpoint
    (x = 0, y = 1): :func:`landscape.directions.interpolation_plane` of the three points."""
    return interpolation_plane(start, end, jax.tree.map(np.asarray,
                                                        curve_midpoint(start, control, end)))


def curve_coordinates(ts: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the Bezier curve's points θ(t) on :func:`curve_plane`: x = 2t² − t,
    y = 4t(1 − t) (exact; the linear path is (t, 0))."""
    t = np.asarray(ts, np.float64)
    return 2 * t ** 2 - t, 4 * t * (1 - t)


def workload_evaluator(workload: Any, state: Any, *, splits: Sequence[str] = ("train",),
                       recompute_state: bool = True) -> Evaluate:
    """``evaluate(params) -> {"<split>_loss", "<split>_acc" (percent, classifiers)}``: exact
    means over each split in evaluation mode, after re-estimating the BatchNorm statistics at
    ``params`` over the training set (when the workload has a training-mode loss and
    ``recompute_state``); otherwise with ``state``."""
    from landscape.geometry.batch_stats import recompute_batch_stats, state_momentum
    from landscape.workload import dataset_mean

    batches = {split: jax.device_put(workload.dataset(split).split_batches(workload.batch_size))
               for split in splits}
    train_batches = (batches["train"] if "train" in batches else
                     jax.device_put(workload.train.split_batches(workload.batch_size)))
    stateful = recompute_state and workload.train_loss is not None and jax.tree.leaves(state)
    momentum = None

    @jax.jit
    def means(params, state, batches):
        return {split: dataset_mean(workload.loss, params, state, *b)
                for split, b in batches.items()}

    def evaluate(params: Params) -> dict[str, float]:
        nonlocal momentum
        point_state = state
        if stateful:
            full, rest = train_batches
            if momentum is None:
                first = rest if full is None else jax.tree.map(lambda a: a[0], full)
                momentum = state_momentum(workload.train_loss, params, state, first)
            point_state = recompute_batch_stats(workload.train_loss, params, state, full, rest,
                                                momentum)
        values = jax.device_get(means(params, point_state, batches))
        out = {}
        for split, metrics in values.items():
            out[f"{split}_loss"] = float(metrics["loss"])
            if "acc" in metrics:
                out[f"{split}_acc"] = 100.0 * float(metrics["acc"])
        return out

    return evaluate


def barriers(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """The barrier of every ``*_loss`` metric, and of the error (100 − acc, percent points) for
    every ``*_acc`` one: ``{"train_loss": ..., "train_error": ...}``."""
    out = {}
    for name, values in metrics.items():
        if name.endswith("_loss"):
            out[name] = barrier(values)
        elif name.endswith("_acc"):
            out[name[: -len("acc")] + "error"] = barrier(100.0 - np.asarray(values))
    return out


def connect_models(
    workload: Any,
    start: Params,
    end: Params,
    state: Any,
    *,
    points: int = 21,
    curve_steps: int = 1000,
    learning_rate: float = 1e-3,
    batch_size: int = 128,
    splits: Sequence[str] = ("train",),
    recompute_state: bool = True,
    seed: int = 0,
    on_progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Linear path and trained Bezier curve (``curve_steps`` = 0: linear only) between two
    models of ``workload``, each evaluated at ``points`` evenly spaced t ∈ [0, 1].

    Returns ``{"t", "linear": {metric: values}, "bezier": {...} or None, "control": θ_b or
    None, "barriers": {"linear": {...}, "bezier": {...}}, "curve_loss": (curve_steps,)
    minibatch losses}``. ``on_progress(stage, count)``: ``("curve", steps done)``, then
    ``("linear" | "bezier", points done)``.
    """
    check_endpoints(start, end)
    if points < 3:
        raise InputError(f"`points` (={points}) must be >= 3 (both endpoints and the path)")
    tell = on_progress or (lambda stage, count: None)
    evaluate = workload_evaluator(workload, state, splits=splits, recompute_state=recompute_state)
    ts = np.linspace(0.0, 1.0, points)
    result: dict[str, Any] = {"t": ts, "bezier": None, "control": None,
                              "curve_loss": np.zeros(0)}
    if curve_steps:
        if workload.train_loss is not None:
            def loss(params, batch, train_loss=workload.train_loss):
                return train_loss(params, state, batch)[0]
        else:
            def loss(params, batch, eval_loss=workload.loss):
                return eval_loss(params, state, batch)[0]
        from landscape.workload import Batch

        losses = []
        control = train_bezier(
            loss, start, end, Batch(workload.train.inputs, workload.train.targets),
            steps=curve_steps, batch_size=min(batch_size, len(workload.train)),
            optimizer=optax.adam(learning_rate), seed=seed,
            on_step=lambda step, value: (losses.append(value), tell("curve", step)))
        result["control"] = control
        result["curve_loss"] = np.asarray(jax.device_get(losses), np.float64)
    result["linear"] = evaluate_path(evaluate, lambda t: linear_point(start, end, t), ts,
                                     lambda i: tell("linear", i + 1))
    if result["control"] is not None:
        result["bezier"] = evaluate_path(
            evaluate, lambda t: bezier_point(start, result["control"], end, t), ts,
            lambda i: tell("bezier", i + 1))
    result["barriers"] = {path: barriers(result[path]) for path in ("linear", "bezier")
                          if result[path] is not None}
    return result
