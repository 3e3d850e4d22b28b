r"""LAMB: Adam's ratio scaled per layer by the trust ratio ‖θ‖/‖r + λθ‖.

Article symbols: m̂, v̂ Adam's bias-corrected moments (β1, β2 = ``b1``, ``b2``), r the Adam ratio,
λ the decoupled weight decay (``weight_decay``), η the learning rate (``learning_rate``); a layer
is one leaf of the params pytree.
"""

from __future__ import annotations

import optax

from optimizers.adam import scale_by_adam
from optimizers.masks import Mask
from optimizers.trust_ratio import scale_by_trust_ratio
from optimizers.validation import check_learning_rate
from optimizers.weight_decay import add_decayed_weights

__all__ = ["scale_by_lamb", "lamb"]


def scale_by_lamb(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    *,
    weight_decay_mask: Mask = None,
    trust_ratio_mask: Mask = None,
) -> optax.GradientTransformation:
    r"""LAMB's layer-wise adapted direction (no learning rate).

    .. math::
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}, \qquad
        D_t = r_t + \lambda\,\theta_t, \qquad
        \Delta_t = \frac{\|\theta_t\|}{\|D_t\|}\, D_t
        \quad (\text{ratio } 1 \text{ where a norm is } 0)

    per leaf. A chain of :func:`optimizers.adam.scale_by_adam`, decoupled weight decay and
    :func:`optimizers.trust_ratio.scale_by_trust_ratio`; its state is that chain's tuple.

    Args:
      b1, b2: β1, β2, defaults 0.9, 0.999.
      eps: ε, default 1e-6 (the LAMB paper's and optax's).
      weight_decay: λ ≥ 0, default 0.
      weight_decay_mask: leaves to decay (``True``), see :mod:`optimizers.masks`.
      trust_ratio_mask: leaves to scale by the trust ratio; the others take the plain D_t.
    """
    trust = scale_by_trust_ratio()
    if trust_ratio_mask is not None:
        trust = optax.masked(trust, trust_ratio_mask)
    return optax.chain(
        scale_by_adam(b1, b2, eps),
        add_decayed_weights(weight_decay, weight_decay_mask),
        trust,
    )


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
    r"""LAMB.

    .. math::
        \theta_{t+1} = \theta_t - \eta\, \frac{\|\theta_t\|}{\|r_t + \lambda\theta_t\|}
                       \left(r_t + \lambda\,\theta_t\right), \qquad
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}

    per leaf (see :func:`scale_by_lamb`). The paper's optional scaling φ(‖θ‖) is the identity here,
    as in optax; RangerLARS (:mod:`optimizers.rangerlars`) is the clamped variant.

    Reference: You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", ICLR 2020.
    """
    check_learning_rate(learning_rate)
    return optax.chain(
        scale_by_lamb(
            b1,
            b2,
            eps,
            weight_decay,
            weight_decay_mask=weight_decay_mask,
            trust_ratio_mask=trust_ratio_mask,
        ),
        optax.scale_by_learning_rate(learning_rate),
    )
