r"""Adam, AdamW (decoupled weight decay) and RAdam (rectified Adam).

Article symbols: g the gradient, m_t and v_t the first and second moment estimates with decay
rates β1, β2 (``b1``, ``b2``), m̂_t, v̂_t their bias-corrected values, η the learning rate
(``learning_rate``), ε (``eps``), λ the decoupled weight decay (``weight_decay``), and for RAdam
ρ_∞, ρ_t the length of the approximated simple moving average and r_t the rectification term.

The chains are optax's (``optax.adamw`` is ``scale_by_adam``, ``add_decayed_weights``,
``scale_by_learning_rate``) and the moments are updated by ``optax.tree.update_moment``; the two
``scale_by_*`` are ours for their bias corrections and ρ_t, which optax forms in float32 from
float32(β) with a loss of digits that changes the steps beyond rounding (numbers in each).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.masks import Mask
from optimizers.validation import (
    HyperparameterError,
    check_at_least,
    check_decay_rate,
    check_learning_rate,
    check_non_negative,
)

__all__ = [
    "AdamState",
    "scale_by_adam",
    "adam",
    "adamw",
    "RAdamState",
    "scale_by_radam",
    "radam",
    "radam_rectification",
]


def _check_moments(b1, b2, eps) -> None:
    check_decay_rate(b1, "b1")
    check_decay_rate(b2, "b2")
    check_non_negative(eps, "eps")


def _update_moments(updates, mu, nu, b1, b2):
    """m_t = β1 m + (1−β1) g and v_t = β2 v + (1−β2) g², in the accumulators' dtype."""
    wide = numerics.cast_tree_like(updates, mu)  # a bfloat16 g² would keep 8 bits
    return (optax.tree.update_moment(wide, mu, b1, 1),
            optax.tree.update_moment_per_elem_norm(wide, nu, b2, 2))


class AdamState(NamedTuple):
    """State of :func:`scale_by_adam`."""

    count: jax.Array  # t, steps taken, int32
    mu: optax.Updates  # m_t, at least float32
    nu: optax.Updates  # v_t, at least float32


def scale_by_adam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    r"""Adam's bias-corrected moment ratio (``optax.scale_by_adam`` with accurate 1 − β^t).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
        \Delta_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    with :math:`m_0 = v_0 = 0` and t counted from 1.

    Args:
      b1: β1 in [0, 1), default 0.9.
      b2: β2 in [0, 1), default 0.999.
      eps: ε ≥ 0 outside the root, default 1e-8.

    Ours rather than ``optax.scale_by_adam`` for the bias corrections alone: optax's float32
    1 − float32(0.999) is 1.3e-5 off 0.001, so its first step is 6.6e-6 off −η sign(g); in float64
    the two agree to rounding.
    """
    _check_moments(b1, b2, eps)

    def init_fn(params):
        return AdamState(
            count=jnp.zeros([], jnp.int32),
            mu=numerics.zeros_accumulator(params),
            nu=numerics.zeros_accumulator(params),
        )

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        mu, nu = _update_moments(updates, state.mu, state.nu, b1, b2)
        inv_correction1 = 1.0 / numerics.one_minus_power(b1, count)
        inv_correction2 = 1.0 / numerics.one_minus_power(b2, count)
        steps = jax.tree.map(
            lambda m, v: (m * inv_correction1.astype(m.dtype))
            / (jnp.sqrt(v * inv_correction2.astype(v.dtype)) + eps),
            mu,
            nu,
        )
        return numerics.cast_tree_like(steps, updates), AdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adam(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    r"""Adam.

    .. math::
        \theta_{t+1} = \theta_t - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    (moments as in :func:`scale_by_adam`). Defaults β1 = 0.9, β2 = 0.999, ε = 1e-8.

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """
    check_learning_rate(learning_rate)
    return optax.chain(scale_by_adam(b1, b2, eps), optax.scale_by_learning_rate(learning_rate))


def adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: optax.ScalarOrSchedule = 1e-2,
    *,
    mask: Mask = None,
) -> optax.GradientTransformation:
    r"""AdamW: Adam with weight decay added to the update, not to the gradient.

    .. math::
        \theta_{t+1} = \theta_t - \eta \left( \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}
                                              + \lambda\, \theta_t \right)

    The decay never enters m or v (that would be L2 regularisation, which Adam rescales away).

    Args:
      learning_rate: η, a float or an optax schedule.
      b1, b2, eps: as in :func:`adam`.
      weight_decay: λ ≥ 0, default 1e-2 (Loshchilov & Hutter's and PyTorch's; optax's default is
        1e-4). The decay is multiplied by η, as in PyTorch and optax.
      mask: leaves to decay (``True``), see :mod:`optimizers.masks`; default all.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    """
    check_learning_rate(learning_rate)
    check_non_negative(weight_decay, "weight_decay")
    return optax.chain(
        scale_by_adam(b1, b2, eps),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def _rho_accurate(b2: float, count: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """ρ_∞ and ρ_t without the float32 cancellation of ρ_∞ − 2tβ2^t/(1−β2^t) (≈ 2000 − 1995).

    With a = −ln β2 and x = t·a: ρ_t = [2/(1−β2) − 2/a − 1] + 2t·q(x), where
    q(x) = 1/x − 1/(e^x − 1). The bracket is a double-precision constant; q is evaluated by its
    series 1/2 − x/12 + x³/720 − x⁵/30240 + x⁷/1209600 for x < 0.5. The textbook float32 form is
    off by ~4e-4 at t = 6 (1e-4 relative in r_t), and by 0.03 if ρ_∞ itself is formed from
    float32(β2) — enough to flip the ρ_5 ≈ 4.996 < 5 decision. This form: ≤ 3e-7 relative.
    """
    a = -math.log(b2)
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    offset = 2.0 / (1.0 - b2) - 2.0 / a - 1.0
    t = jnp.asarray(count).astype(dtype)
    x = t * jnp.asarray(a, dtype)
    x2 = x * x
    series = 0.5 - x / 12.0 + x * x2 * (1.0 / 720.0 - x2 / 30240.0 + x2 * x2 / 1209600.0)
    direct = 1.0 / x - 1.0 / jnp.expm1(x)  # = q(x); no overflow for large x (1/inf = 0)
    q = jnp.where(x < 0.5, series, direct)
    return jnp.asarray(rho_inf, dtype), offset + 2.0 * t * q


def radam_rectification(count: jax.Array, b2, threshold) -> tuple[jax.Array, jax.Array]:
    r"""RAdam's tractability test and rectification term at step ``count`` (t ≥ 1).

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}
                          {(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}

    Returns ``(rho_t >= threshold, r_t)``; r_t is 1 where the variance is not tractable.
    """
    dtype = numerics.scalar_dtype()
    if numerics.is_number(b2) and 0.0 < float(b2) < 1.0:
        rho_inf, rho_t = _rho_accurate(float(b2), count, dtype)
    else:  # a traced β2 (or β2 = 0): the textbook formula
        rho_inf = 2.0 / (1.0 - jnp.asarray(b2, dtype)) - 1.0
        one_minus_b2t = numerics.one_minus_power(b2, count)
        t = jnp.asarray(count).astype(dtype)
        rho_t = rho_inf - 2.0 * t * (1.0 - one_minus_b2t) / one_minus_b2t
    tractable = rho_t >= threshold
    r_squared = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf) / (
        (rho_inf - 4.0) * (rho_inf - 2.0) * rho_t
    )
    r_t = jnp.where(tractable, jnp.sqrt(jnp.maximum(r_squared, 0.0)), 1.0)
    return tractable, r_t


EPS_PLACEMENTS = ("v_hat", "v")


class RAdamState(NamedTuple):
    """State of :func:`scale_by_radam`."""

    count: jax.Array  # t, steps taken, int32
    mu: optax.Updates  # m_t, at least float32
    nu: optax.Updates  # v_t, at least float32


def scale_by_radam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    *,
    eps_on: str = "v_hat",
) -> optax.GradientTransformation:
    r"""RAdam's rectified moment ratio, or the plain momentum while the variance is intractable
    (``optax.scale_by_radam`` with accurate ρ_t and bias corrections, and Ranger's ε placement).

    .. math::
        \Delta_t = \begin{cases}
          r_t\, \dfrac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon} & \rho_t \ge \rho_{\min} \\[1ex]
          \hat m_t & \text{otherwise (the un-adapted momentum step)}
        \end{cases}

    with m̂, v̂ as in :func:`scale_by_adam` and ρ_t, r_t from :func:`radam_rectification`.
    With β2 = 0.999 and ρ_min = 5 the first five steps are momentum steps (ρ_5 ≈ 4.996,
    ρ_6 ≈ 5.994). ``eps_on="v"`` adds ε to √v_t before the bias correction instead, as
    Ranger's reference code does (``step_size · m / (√v + ε)``):

    .. math::
        r_t\, \frac{\hat m_t \sqrt{1-\beta_2^t}}{\sqrt{v_t} + \varepsilon}

    Args:
      b1, b2, eps: as in :func:`scale_by_adam`.
      threshold: ρ_min ≥ 4, default 5 (Liu et al.'s code, optax and over9000 use ``ρ_t >= 5``;
        the paper says ρ_t > 4, ``torch.optim.RAdam`` uses ``ρ_t > 5``: identical for β2 = 0.999).
        r_t is imaginary below 4, hence the lower bound.
      eps_on: ``"v_hat"`` (default: Liu et al., optax, torch.optim.RAdam): ε on √v̂_t;
        ``"v"``: ε on √v_t (Ranger's reference; a larger ε early, ε/√(1−β2^t)).

    Ours rather than ``optax.scale_by_radam``: optax forms ρ_t = ρ_∞ − 2tβ2^t/(1−β2^t) in float32
    (≈ 1999 − 1993 at t = 6, from float32(β2)), which puts its first rectified step 1.2 % off
    r_6; and it has no ``eps_on="v"``. With ``eps_on="v_hat"`` in float64 the two agree to
    rounding.
    """
    _check_moments(b1, b2, eps)
    check_at_least(threshold, "threshold", 4.0)
    if eps_on not in EPS_PLACEMENTS:
        raise HyperparameterError(f"`eps_on` (={eps_on!r}) must be one of "
                                  f"{', '.join(EPS_PLACEMENTS)}")

    def init_fn(params):
        return RAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=numerics.zeros_accumulator(params),
            nu=numerics.zeros_accumulator(params),
        )

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_increment(state.count)
        mu, nu = _update_moments(updates, state.mu, state.nu, b1, b2)
        tractable, r_t = radam_rectification(count, b2, threshold)
        inv_correction1 = 1.0 / numerics.one_minus_power(b1, count)
        inv_correction2 = 1.0 / numerics.one_minus_power(b2, count)

        def step(m, v):
            m_hat = m * inv_correction1.astype(m.dtype)
            if eps_on == "v_hat":
                denominator = jnp.sqrt(v * inv_correction2.astype(v.dtype)) + eps
            else:  # (√v + ε)/√(1−β2^t): Ranger's step_size · m / (√v + ε)
                denominator = (jnp.sqrt(v) + eps) * jnp.sqrt(inv_correction2).astype(v.dtype)
            rectified = r_t.astype(m.dtype) * m_hat / denominator
            return jnp.where(tractable, rectified, m_hat)

        steps = jax.tree.map(step, mu, nu)
        return numerics.cast_tree_like(steps, updates), RAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def radam(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    *,
    mask: Mask = None,
    eps_on: str = "v_hat",
) -> optax.GradientTransformation:
    r"""RAdam, optionally with decoupled weight decay (RAdamW, the core of Ranger).

    .. math::
        \theta_{t+1} = \theta_t - \eta \left( \Delta_t + \lambda\, \theta_t \right)

    with Δ_t from :func:`scale_by_radam` (rectified Adam ratio, or m̂_t while ρ_t < ρ_min).

    Args:
      learning_rate: η, a float or an optax schedule.
      b1, b2, eps, threshold, eps_on: see :func:`scale_by_radam`.
      weight_decay: λ ≥ 0, default 0 (plain RAdam); decoupled as in :func:`adamw`.
      mask: leaves to decay, see :mod:`optimizers.masks`.

    Reference: Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
    """
    check_learning_rate(learning_rate)
    check_non_negative(weight_decay, "weight_decay")
    return optax.chain(
        scale_by_radam(b1, b2, eps, threshold, eps_on=eps_on),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
