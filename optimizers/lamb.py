r"""LAMB: Adam's ratio scaled per layer by the trust ratio ‖θ‖/‖r + λθ‖ — optax's chain.

Article symbols: m̂, v̂ Adam's bias-corrected moments (β1, β2 = ``b1``, ``b2``), r the Adam ratio,
λ the decoupled weight decay (``weight_decay``), η the learning rate (``learning_rate``); a layer
is one leaf of the params pytree.
"""

from __future__ import annotations

import optax

from optimizers.adam import scale_by_adam
from optimizers.masks import Mask
from optimizers.numerics import widen_low_precision
from optimizers.validation import check_learning_rate, check_non_negative

__all__ = ["lamb"]


def lamb(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""LAMB: ``optax.lamb``'s chain — ``scale_by_adam``, ``add_decayed_weights``,
    ``scale_by_trust_ratio``, ``scale_by_learning_rate`` — with the suite's ``scale_by_adam``.

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}, \qquad
        D_t = r_t + \lambda\,\theta_t, \qquad
        \theta_{t+1} = \theta_t - \eta\, \frac{\|\theta_t\|}{\|D_t\|}\, D_t
        \quad (\text{ratio } 1 \text{ where a norm is } 0)

    per leaf. The paper's optional scaling φ(‖θ‖) is the identity here, as in optax; RangerLARS
    (:mod:`optimizers.rangerlars`) is the clamped variant.

    Args:
      learning_rate: η, a float or an optax schedule.
      b1, b2: β1, β2, defaults 0.9, 0.999.
      eps: ε, default 1e-6 (the LAMB paper's and optax's).
      weight_decay: λ ≥ 0, default 0.
      weight_decay_mask: leaves to decay (``True``), see :mod:`optimizers.masks`.
      trust_ratio_mask: leaves to scale by the trust ratio; the others take the plain D_t
        (``optax.lamb`` has no such mask).

    Reference: You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", ICLR 2020.
    """
    check_learning_rate(learning_rate)
    check_non_negative(weight_decay, "weight_decay")
    trust = optax.scale_by_trust_ratio()
    if trust_ratio_mask is not None:
        trust = optax.masked(trust, trust_ratio_mask)
    # Our scale_by_adam for its float32 bias corrections (optimizers.adam); widened so that
    # optax's trust ratio takes a bfloat16 leaf's norms in float32.
    return widen_low_precision(
        optax.chain(
            scale_by_adam(b1, b2, eps),
            optax.add_decayed_weights(weight_decay, weight_decay_mask),
            trust,
            optax.scale_by_learning_rate(learning_rate),
        )
    )
