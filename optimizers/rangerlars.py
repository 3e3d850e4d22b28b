r"""RangerLARS (RangerLamb, Over9000) and Paratrooper: RAdam steps with per-layer trust ratios,
inside Lookahead.

Article symbols: D_t the RAdam step plus decoupled weight decay (β1, β2 = ``b1``, ``b2``;
λ = ``weight_decay``), r_t RAdam's rectifier, b_t = √(1−β2^t)/(1−β1^t) the bias-correction factor,
T the trust ratio applied per layer (one params leaf), η the learning rate, k and α Lookahead's
period and slow step (``sync_period``, ``slow_step_size``).

optax has neither: the chains use optax's weight decay, masks and learning rate around the
suite's own pieces — RAdam (:mod:`optimizers.adam`), the clamped trust ratio
(:mod:`optimizers.trust_ratio`), Paratrooper's bounded trust ratio (here) and Lookahead over
plain params (:mod:`optimizers.lookahead`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.adam import radam_rectification, scale_by_radam
from optimizers.lookahead import lookahead
from optimizers.masks import Mask
from optimizers.trust_ratio import layer_trust_ratio, scale_by_trust_ratio, scale_leaf
from optimizers.validation import (
    check_at_least,
    check_decay_rate,
    check_learning_rate,
    check_non_negative,
)

__all__ = [
    "scale_by_rangerlars",
    "rangerlars",
    "ParatrooperTrustRatioState",
    "scale_by_paratrooper_trust_ratio",
    "scale_by_paratrooper",
    "paratrooper",
]


def _masked(transformation, mask: Mask):
    return transformation if mask is None else optax.masked(transformation, mask)


def scale_by_rangerlars(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    max_param_norm: float = 10.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""The RAdam step scaled per layer by the clamped trust ratio (no learning rate, no Lookahead).

    .. math::
        D_t = \Delta^{\text{RAdam}}_t + \lambda\,\theta_t, \qquad
        T_\ell = \frac{\min(\|\theta_\ell\|,\ c)}{\|D_\ell\|}\ (1 \text{ if a norm is } 0), \qquad
        \Delta_\ell = T_\ell\, D_\ell

    with :math:`\Delta^{\text{RAdam}}` from :func:`optimizers.adam.scale_by_radam` (rectified
    ratio, or m̂_t while ρ_t < ρ_min — the trust ratio applies in both regimes, as in over9000).

    Departure from over9000's code, on purpose: over9000 measures ‖θ + step‖ (its ``radam_step``
    starts as a copy of the weights) and applies the weight decay outside the ratio; here the
    ratio is ‖θ‖/‖D‖ of the step itself with the decay inside D, the LAMB form the article states.

    Args:
      b1, b2, eps, threshold: RAdam's, defaults 0.9, 0.999, 1e-8, 5 (over9000's).
      weight_decay: λ, default 0.
      max_param_norm: c, the clamp on ‖θ‖, default 10.
      weight_decay_mask, trust_ratio_mask: see :mod:`optimizers.masks`.
    """
    check_non_negative(weight_decay, "weight_decay")
    return optax.chain(
        scale_by_radam(b1, b2, eps, threshold),
        optax.add_decayed_weights(weight_decay, weight_decay_mask),
        _masked(scale_by_trust_ratio(max_param_norm=max_param_norm), trust_ratio_mask),
    )


def rangerlars(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    max_param_norm: float = 10.0,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""RangerLARS (a.k.a. RangerLamb, Over9000).

    .. math::
        \Delta_t = -\eta\, \frac{\min(\|\theta_t\|, 10)}{\|D_t\|}\, D_t
        \quad\text{inside}\quad \text{Lookahead}(k=6, \alpha=0.5)

    per layer (see :func:`scale_by_rangerlars`).

    Reference: M. Grankin, "Over9000" (2019), https://github.com/mgrankin/over9000 (RAdam + LARS +
    Lookahead); D. Han-Chen, "State of The Art Optimizers" (2020).
    """
    check_learning_rate(learning_rate)
    inner = optax.chain(
        scale_by_rangerlars(
            b1,
            b2,
            eps,
            threshold,
            weight_decay,
            max_param_norm,
            weight_decay_mask=weight_decay_mask,
            trust_ratio_mask=trust_ratio_mask,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )
    return lookahead(inner, sync_period, slow_step_size)


class ParatrooperTrustRatioState(NamedTuple):
    """State of :func:`scale_by_paratrooper_trust_ratio`."""

    count: jax.Array  # t, steps taken, int32


def scale_by_paratrooper_trust_ratio(
    b1: float = 0.9, b2: float = 0.999, threshold: float = 5.0
) -> optax.GradientTransformation:
    r"""Paratrooper's trust ratio, bounded between Ranger's step and an un-corrected Adam step.

    .. math::
        b_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
        T_\ell = \max\!\left(1,\ \min\!\left(\frac{1}{r_t\, b_t},\
                 \frac{\|\theta_\ell\|}{\|D_\ell\|}\right)\right), \qquad
        \Delta_\ell = T_\ell\, D_\ell

    (‖θ‖/‖D‖ := 1 where a norm is 0). :math:`r_t b_t` is the factor RAdam puts in front of
    :math:`m_t/\sqrt{v_t}`, so T never shrinks the step below Ranger's and never lets that factor
    exceed 1. As t grows, :math:`r_t b_t \to 1` and T → 1: Paratrooper becomes Ranger.

    While ρ_t < ρ_min the article defines no r_t; the step there is :math:`\hat m_t =
    m_t/(1-\beta_1^t)`, whose factor on :math:`m_t` is already ≥ 1, so the same rule ("never below
    the plain step, factor at most 1") gives T = 1, which is what is implemented.

    Args:
      b1, b2, threshold: must equal those of the RAdam step being scaled.
    """
    check_decay_rate(b1, "b1")
    check_decay_rate(b2, "b2")
    check_at_least(threshold, "threshold", 4.0)

    def init_fn(params):
        del params
        return ParatrooperTrustRatioState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("the trust ratio needs `params` in update(grads, state, params)")
        count = optax.safe_increment(state.count)
        tractable, r_t = radam_rectification(count, b2, threshold)
        b_t = jnp.sqrt(numerics.one_minus_power(b2, count)) / numerics.one_minus_power(b1, count)
        upper = 1.0 / (r_t * b_t)

        def scale(u, p):
            ratio = layer_trust_ratio(p, u).astype(upper.dtype)
            bounded = jnp.maximum(1.0, jnp.minimum(upper, ratio))
            return scale_leaf(u, jnp.where(tractable, bounded, 1.0))

        scaled = jax.tree.map(scale, updates, params)
        return scaled, ParatrooperTrustRatioState(count=count)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_paratrooper(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""Paratrooper's direction (no learning rate, no Lookahead), per leaf ℓ:

    .. math::
        D_t = \Delta^{\text{RAdam}}_t + \lambda\,\theta_t, \qquad
        \Delta_\ell = \max\!\left(1,\ \min\!\left(\frac{1}{r_t b_t},\
                        \frac{\|\theta_\ell\|}{\|D_\ell\|}\right)\right) D_\ell

    i.e. :func:`scale_by_rangerlars` with RangerLARS's clamp :math:`\min(\|\theta\|, 10)/\|D\|`
    replaced by Paratrooper's bounds (:func:`scale_by_paratrooper_trust_ratio`; T = 1 while the
    variance is intractable). Arguments as :func:`scale_by_rangerlars`, without the clamp.
    """
    check_non_negative(weight_decay, "weight_decay")
    return optax.chain(
        scale_by_radam(b1, b2, eps, threshold),
        optax.add_decayed_weights(weight_decay, weight_decay_mask),
        _masked(scale_by_paratrooper_trust_ratio(b1, b2, threshold), trust_ratio_mask),
    )


def paratrooper(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""Paratrooper.

    .. math::
        \Delta_t = -\eta\, \max\!\left(1, \min\!\left(\frac{1}{r_t b_t},
                   \frac{\|\theta_t\|}{\|D_t\|}\right)\right) D_t
        \quad\text{inside}\quad \text{Lookahead}(k=6, \alpha=0.5)

    per layer, D_t the RAdam step plus λθ_t (details in
    :func:`scale_by_paratrooper_trust_ratio`). Defaults as :func:`rangerlars`.

    Reference: D. Han-Chen, "State of The Art Optimizers" (2020),
    https://danielhanchen.github.io/optimizers/sota%20optimizers.htm.
    """
    check_learning_rate(learning_rate)
    inner = optax.chain(
        scale_by_paratrooper(
            b1,
            b2,
            eps,
            threshold,
            weight_decay,
            weight_decay_mask=weight_decay_mask,
            trust_ratio_mask=trust_ratio_mask,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )
    return lookahead(inner, sync_period, slow_step_size)
