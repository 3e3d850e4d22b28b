r"""LARS: momentum SGD with a per-layer learning rate from the ratio of weight and gradient norms.

Article symbols: g the gradient, θ the parameters of one layer (one params leaf), m the momentum
with decay β (``momentum``), δ the weight decay (``weight_decay``), λ the local (layer) learning
rate with trust coefficient η_tc (``trust_coefficient``), η the global learning rate
(``learning_rate``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.masks import Mask, mask_per_leaf
from optimizers.validation import (
    HyperparameterError,
    check_decay_rate,
    check_learning_rate,
    check_non_negative,
)

__all__ = ["LarsState", "scale_by_lars", "lars"]


class LarsState(NamedTuple):
    """State of :func:`scale_by_lars`."""

    momentum: optax.Updates  # m, at least float32


def scale_by_lars(
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    eps: float = 0.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""LARS's direction (no global learning rate), per leaf ℓ:

    .. math::
        m_\ell \leftarrow \beta\, m_\ell + (1-\beta)\,(g_\ell + \delta\,\theta_\ell), \qquad
        \lambda_\ell = \eta_{tc}\, \frac{\|\theta_\ell\|}
                                        {\|g_\ell\| + \delta\,\|\theta_\ell\| + \epsilon}, \qquad
        \Delta_\ell = \lambda_\ell\, m_\ell

    λ_ℓ = 1 where ‖θ_ℓ‖ = 0 or the denominator is 0 (a zero-initialised layer still trains), and
    on leaves outside ``trust_ratio_mask``; δ = 0 on leaves outside ``weight_decay_mask``.

    The momentum is an exponential average with damping (1 − β), as the article writes it; You et
    al. (2017) accumulate ``λ(g + δθ)`` undamped inside the momentum instead, which is what
    ``optax.lars`` does. The two coincide for β = 0 and δ = 0.

    Args:
      momentum: β in [0, 1), default 0.9.
      weight_decay: δ ≥ 0 (a number), default 0.
      trust_coefficient: η_tc ≥ 0, default 1e-3 (You et al.'s and optax's).
      eps: ε ≥ 0 in the ratio's denominator, default 0.
      weight_decay_mask, trust_ratio_mask: see :mod:`optimizers.masks`.
    """
    check_decay_rate(momentum, "momentum")
    check_non_negative(eps, "eps")
    check_non_negative(trust_coefficient, "trust_coefficient")
    if callable(weight_decay):
        # δ enters λ's denominator at every step; a schedule would need its own step count.
        raise HyperparameterError("`weight_decay` of LARS must be a number, not a schedule")
    check_non_negative(weight_decay, "weight_decay")

    def init_fn(params):
        return LarsState(momentum=numerics.zeros_accumulator(params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("LARS needs `params` in update(grads, state, params)")
        decay_flags = mask_per_leaf(weight_decay_mask, params)
        trust_flags = mask_per_leaf(trust_ratio_mask, params)

        def leaf(g, theta, m, decays, trusts):
            dtype = m.dtype
            g = g.astype(dtype)
            theta = jnp.asarray(theta).astype(dtype)
            delta = weight_decay if decays else 0.0
            direction = g + delta * theta if decays else g
            m = momentum * m + (1.0 - momentum) * direction
            if not trusts:
                return m, m
            theta_norm = numerics.layer_norm(theta)
            denominator = numerics.layer_norm(g) + delta * theta_norm + eps
            usable = (theta_norm > 0) & (denominator > 0)
            ratio = jnp.where(
                usable, trust_coefficient * theta_norm / jnp.where(usable, denominator, 1.0), 1.0
            )
            return ratio * m, m

        pairs = jax.tree.map(leaf, updates, params, state.momentum, decay_flags, trust_flags)
        steps, new_momentum = jax.tree.transpose(
            jax.tree.structure(updates), jax.tree.structure((0, 0)), pairs
        )
        return numerics.cast_tree_like(steps, updates), LarsState(momentum=new_momentum)

    return optax.GradientTransformation(init_fn, update_fn)


def lars(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    eps: float = 0.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""LARS (layer-wise adaptive rate scaling).

    .. math::
        m_\ell \leftarrow \beta\, m_\ell + (1-\beta)\,(g_\ell + \delta\,\theta_\ell), \qquad
        \theta_\ell \leftarrow \theta_\ell - \eta\, \lambda_\ell\, m_\ell, \qquad
        \lambda_\ell = \eta_{tc} \frac{\|\theta_\ell\|}{\|g_\ell\| + \delta \|\theta_\ell\|}

    (details, defaults and masks in :func:`scale_by_lars`). Each layer moves by about
    η·η_tc·‖θ‖ per step, so with η_tc = 1e-3 the global η is large (the registry's default is 3).

    Reference: You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017.
    """
    check_learning_rate(learning_rate)
    return optax.chain(
        scale_by_lars(
            momentum,
            weight_decay,
            trust_coefficient,
            eps,
            weight_decay_mask=weight_decay_mask,
            trust_ratio_mask=trust_ratio_mask,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )
