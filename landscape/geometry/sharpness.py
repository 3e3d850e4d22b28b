"""Sharpness measures of a minimum: how much the loss rises under bounded weight perturbations.

- **ε-sharpness** (Keskar et al. 2017, "On large-batch training for deep learning", §2.2.2,
  with A = I): over the box C_ε = {z : |z_i| ≤ ε(|w_i| + 1)},

  .. math::

      \\phi_\\varepsilon = 100 \\cdot \\frac{\\max_{z \\in C_\\varepsilon} L(w + z) - L(w)}{1 + L(w)}.

- **Adaptive worst-case sharpness** (Kwon et al. 2021, ASAM; Andriushchenko et al. 2023, "A modern
  look at the relationship between sharpness and generalization"):
  max_{‖δ ⊙ c⁻¹‖_p ≤ ρ} L(w + δ) − L(w) with c = |w| (a weight at 0 is not perturbed), for
  p = ∞ and p = 2; ``adaptive=False`` takes c = 1.
- **Adaptive average-case sharpness**: E_{δ ∼ N(0, ρ² diag(c²))} L(w + δ) − L(w), a Monte-Carlo
  mean over Gaussian draws with its standard error.

The maxima are found by projected gradient ascent, ``steps`` gradient evaluations from δ = 0
(where the gradient vanishes — at an exact minimum — a random sign or direction starts it):
for a box (p = ∞, and Keskar's C_ε) signed steps of ``step_size`` × the box's half-width per
coordinate, clipped to the box (Madry et al. 2018's rule: 2.5/steps of the width); for p = 2
normalized-gradient steps of ``step_size`` × ρ in the u = δ/c coordinates, projected back onto
the ball (default step ρ). The largest loss seen at any iterate is kept, so each value is a
lower bound on the true maximum. Keskar et al. maximized with 10 iterations of L-BFGS-B and
Andriushchenko et al. with auto-PGD on m-sample batches; here the loss is the full-dataset mean
(m = n) and the ascent plain PGD — stated with every result.

The measures take any loss of :mod:`landscape.geometry.loss`; for a data set's mean (an
:class:`~landscape.objective.Objective`, on its first split) every gradient is summed batch by
batch, in the memory of one batch. :func:`model_sharpness` is the glue from a workload and a model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.geometry.loss import Loss, placed, problem_of, workload_loss
from landscape.curvature.operator import HessianProblem
from landscape.workload import Params

NORMS = ("linf", "l2")


class SharpnessValue(NamedTuple):
    """One measure at one point."""

    value: float  # the measure (ε-sharpness: percent of 1 + L(w))
    base_loss: float  # L(w)
    perturbed_loss: float  # the largest L(w + δ) found (average case: the mean)
    stderr: float  # standard error of ``value`` (average case; NaN for the maxima)
    evaluations: int  # gradient steps (maxima) or Gaussian draws (average case)


def _check(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"`{name}` (={value}) must be a positive finite number")


@functools.partial(jax.jit, static_argnames=("norm",))
def _ascent_update(u, best, value, g, k, radius, step_size, key, *, norm):
    """One projected-gradient-ascent step over {‖u‖_norm ≤ radius} from ``u``, where the loss
    is ``value`` with gradient ``g`` (with respect to u), and the best loss so far (that of
    the point the step started from included)."""
    k_key = jax.random.fold_in(key, k)
    if norm == "linf":
        random_sign = jax.random.rademacher(k_key, g.shape, g.dtype)
        direction = jnp.where(g == 0, random_sign, jnp.sign(g))
        u = jnp.clip(u + step_size * radius * direction, -radius, radius)
    else:
        size = jnp.linalg.norm(g)
        fresh = jax.random.normal(k_key, g.shape, g.dtype)
        direction = jnp.where(size > 0, g / jnp.where(size > 0, size, 1.0),
                              fresh / jnp.linalg.norm(fresh))
        u = u + step_size * radius * direction
        u = u * jnp.minimum(1.0, radius / jnp.maximum(jnp.linalg.norm(u), 1e-30))
    return u, jnp.maximum(best, value)


@jax.jit
def _moved(w, scale, u):
    return w + scale * u


def _ascent(problem: HessianProblem, scale, radius, step_size, key, *, norm, steps):
    """Projected gradient ascent of L(w + δ) over {‖δ/scale‖_norm ≤ radius} (per-coordinate
    ``scale``; a box of half-widths scale·radius for linf). Returns (L(w), best L(w + δ)).

    The loop runs on the host, dispatched without waiting; each step's gradient is the
    problem's (summed over the batches: memory of one batch), ∂L(w + scale·u)/∂u =
    scale · ∇L(w + scale·u)."""
    w = problem.params
    u = jnp.zeros_like(w)
    base = problem.value()
    best = base
    for k in range(steps):
        value, g = problem.value_and_grad(_moved(w, scale, u))
        u, best = _ascent_update(u, best, value, g * scale, jnp.asarray(k, jnp.int32), radius,
                                 step_size, key, norm=norm)
    return base, jnp.maximum(best, problem.value(_moved(w, scale, u)))


def worst_case_sharpness(
    loss: Loss,
    params: Params,
    *,
    rho: float,
    norm: str = "linf",
    adaptive: bool = True,
    steps: int = 20,
    step_size: float | None = None,
    seed: int = 0,
) -> SharpnessValue:
    """max_{‖δ ⊙ c⁻¹‖_p ≤ ρ} L(w + δ) − L(w), c = |w| (``adaptive``) or 1, p = ∞ (``"linf"``)
    or 2 (``"l2"``), by ``steps`` steps of projected gradient ascent (see the module
    docstring; ``step_size`` default: 2.5/steps for linf, 1 for l2, as fractions of ρ)."""
    if norm not in NORMS:
        raise InputError(f"`norm` (={norm!r}) must be one of {', '.join(NORMS)}")
    _check("rho", rho)
    problem = problem_of(loss, params)
    w = problem.params
    scale = jnp.abs(w) if adaptive else jnp.ones_like(w)
    return _maximum(problem, scale, rho, norm=norm, steps=steps, step_size=step_size, seed=seed)


def epsilon_sharpness(
    loss: Loss,
    params: Params,
    *,
    epsilon: float = 1e-3,
    steps: int = 20,
    step_size: float | None = None,
    seed: int = 0,
) -> SharpnessValue:
    """Keskar et al.'s ε-sharpness (percent): 100 (max_{C_ε} L(w + z) − L(w)) / (1 + L(w)),
    C_ε = {|z_i| ≤ ε(|w_i| + 1)}, maximized by ``steps`` signed projected-gradient steps of
    ``step_size`` (default 2.5/steps) × each coordinate's half-width."""
    _check("epsilon", epsilon)
    problem = problem_of(loss, params)
    found = _maximum(problem, jnp.abs(problem.params) + 1.0, epsilon, norm="linf", steps=steps,
                     step_size=step_size, seed=seed)
    return found._replace(value=100.0 * (found.perturbed_loss - found.base_loss)
                          / (1.0 + found.base_loss))


def _maximum(problem: HessianProblem, scale, radius, *, norm, steps, step_size, seed
             ) -> SharpnessValue:
    if steps < 1:
        raise InputError(f"`steps` (={steps}) must be >= 1")
    if step_size is None:
        step_size = 2.5 / steps if norm == "linf" else 1.0
    _check("step_size", step_size)
    dtype = problem.params.dtype
    base, best = _ascent(problem, scale.astype(dtype), jnp.asarray(radius, dtype),
                         jnp.asarray(step_size, dtype), jax.random.key(seed), norm=norm,
                         steps=steps)
    base, best = float(base), float(best)
    return SharpnessValue(best - base, base, best, float("nan"), steps)


def average_case_sharpness(
    loss: Loss,
    params: Params,
    *,
    rho: float,
    adaptive: bool = True,
    samples: int = 100,
    batch: int = 10,
    seed: int = 0,
) -> SharpnessValue:
    """E_{δ ∼ N(0, ρ² diag(c²))} L(w + δ) − L(w), c = |w| (``adaptive``) or 1: the mean over
    ``samples`` Gaussian draws (``batch`` at a time, vmapped) ± its standard error."""
    _check("rho", rho)
    if samples < 2:
        raise InputError(f"`samples` (={samples}) must be >= 2 (for a standard error)")
    if batch < 1:
        raise InputError(f"`batch` (={batch}) must be >= 1")
    problem = problem_of(loss, params)
    w = problem.params
    scale = (jnp.abs(w) if adaptive else jnp.ones_like(w)) * rho
    base = float(problem.value())
    batch = min(batch, samples)
    rises = []
    for key in jax.random.split(jax.random.key(seed), -(-samples // batch)):
        deltas = scale * jax.random.normal(key, (batch, w.size), w.dtype)
        rises.append(np.asarray(problem.values(w + deltas), np.float64))
    rises = np.concatenate(rises)[:samples] - base
    mean = float(np.mean(rises))
    return SharpnessValue(mean, base, base + mean, float(np.std(rises, ddof=1) / np.sqrt(samples)),
                          samples)


def model_sharpness(
    workload: Any,
    params: Params,
    state: Any,
    *,
    epsilons: tuple[float, ...] = (1e-3, 5e-4),
    rho_linf: float = 1e-3,
    rho_l2: float = 0.1,
    rho_average: float = 0.1,
    steps: int = 20,
    samples: int = 100,
    trace_samples: int = 100,
    tol: float = 1e-3,
    split: str = "train",
    seed: int = 0,
    on_measure: Callable[[str], object] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every measure at one model of ``workload`` (its mean ``split`` loss, evaluation mode
    with the model's ``state``: BatchNorm statistics are not re-estimated at perturbed
    points), beside λmax and the Hutchinson trace: ``{measure name: {"value", ...}}``, each
    entry saying what it is and how it was computed (``len(epsilons) + 5`` entries;
    ``on_measure(name)`` after each, for progress bars)."""
    from landscape.geometry.curvature import extreme_eigenvalues
    from landscape.curvature.trace import hutchinson_trace

    loss = workload_loss(workload, state, split=split)
    problem = problem_of(loss, params)
    loss = placed(loss, problem)  # every measure below reuses the placed batches
    table: dict[str, dict[str, Any]] = {}

    def add(name: str, value: dict[str, Any]) -> None:
        table[name] = value
        if on_measure is not None:
            on_measure(name)

    def entry(result: SharpnessValue, **how: Any) -> dict[str, Any]:
        return {"value": result.value, "base_loss": result.base_loss,
                "perturbed_loss": result.perturbed_loss, "stderr": result.stderr, **how}

    for eps in epsilons:
        found = epsilon_sharpness(loss, params, epsilon=eps, steps=steps, seed=seed)
        add(f"epsilon_sharpness_{eps:g}", entry(
            found, definition="Keskar et al. 2017: 100 (max_{|z_i| <= eps(|w_i|+1)} L(w+z) - "
            "L(w)) / (1 + L(w))", epsilon=eps, method=f"sign PGD, {steps} steps of "
            f"{2.5 / steps:g} x half-width, from z = 0"))
    for norm, rho in (("linf", rho_linf), ("l2", rho_l2)):
        found = worst_case_sharpness(loss, params, rho=rho, norm=norm, steps=steps, seed=seed)
        step = f"{2.5 / steps:g} x rho, signed" if norm == "linf" else "rho, normalized"
        add(f"adaptive_worst_{norm}", entry(
            found, definition=f"max_{{||delta / |w| ||_{norm[1:]} <= rho}} L(w+delta) - L(w)",
            rho=rho, method=f"PGD, {steps} steps of {step}, from delta = 0"))
    found = average_case_sharpness(loss, params, rho=rho_average, samples=samples, seed=seed)
    add("adaptive_average", entry(
        found, definition="E_{delta ~ N(0, rho^2 diag(w^2))} L(w+delta) - L(w)",
        rho=rho_average, method=f"Monte Carlo, {samples} draws"))
    pairs = extreme_eigenvalues(loss, params, tol=tol, max_iter=200, seed=seed)
    add("lambda_max", {"value": float(pairs.top.values[0]), "stderr": float("nan"),
                       "residual": float(pairs.top.residuals[0]),
                       "converged": bool(pairs.top.converged[0]),
                       "definition": "largest Hessian eigenvalue",
                       "method": f"Lanczos to tol {tol:g} (residual rule)"})
    trace = hutchinson_trace(problem, num_samples=trace_samples, seed=seed)
    add("trace", {"value": trace.estimate, "stderr": trace.stderr,
                  "definition": "Hessian trace",
                  "method": f"Hutchinson, {trace_samples} Rademacher probes"})
    return table
