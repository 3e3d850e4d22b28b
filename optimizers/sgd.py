r"""Gradient descent, heavy-ball momentum and Nesterov momentum: optax's own transformations.

Article symbols: θ parameters, g = ∇f(θ) the gradient, η the learning rate (``learning_rate``),
v the velocity, α the momentum coefficient (``momentum``).

The velocity accumulates *learning-rate-scaled* gradients, v ← αv − ηg, exactly as the article
writes it, so the learning rate comes before ``optax.trace`` in the chain. ``optax.sgd(η, α)``
and ``torch.optim.SGD`` put it after (buf ← α buf + g, θ ← θ − η buf); with a constant η the two
give identical parameter trajectories (v = −η buf), they differ only under a schedule, where the
article's form weights each gradient by the η of its own step.
"""

from __future__ import annotations

import optax

from optimizers.numerics import widen_low_precision
from optimizers.validation import check_decay_rate, check_learning_rate

__all__ = ["sgd", "momentum", "nesterov"]


def sgd(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    r"""Plain gradient descent: ``optax.sgd(learning_rate)``.

    .. math::
        \theta_{t+1} = \theta_t - \eta\, g_t

    Args:
      learning_rate: η, a float or an optax schedule of the step count.

    Reference: Robbins & Monro, "A Stochastic Approximation Method", 1951.
    """
    check_learning_rate(learning_rate)
    return optax.sgd(learning_rate)


def momentum(
    learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum (Polyak, 1964): ``chain(scale_by_learning_rate(η), trace(α))``.

    .. math::
        v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad \theta_{t+1} = \theta_t + v_t

    with :math:`v_0 = 0` (``optax.trace``'s state holds v).

    Args:
      learning_rate: η, a float or an optax schedule.
      momentum: α in [0, 1), default 0.9.

    Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
    USSR Comp. Math. and Math. Phys., 1964.
    """
    check_learning_rate(learning_rate)
    check_decay_rate(momentum, "momentum")
    # optax.trace keeps v in the params' dtype: widened for bfloat16/float16 leaves.
    return widen_low_precision(
        optax.chain(
            optax.scale_by_learning_rate(learning_rate),
            optax.trace(decay=momentum, nesterov=False),
        )
    )


def nesterov(
    learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
) -> optax.GradientTransformation:
    r"""Nesterov momentum in the article's re-parametrised form (no shifted gradient):
    ``chain(scale_by_learning_rate(η), trace(α, nesterov=True))``.

    .. math::
        v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad
        \theta_{t+1} = \theta_t + \alpha\, v_t - \eta\, g_t

    This follows from Sutskever et al.'s :math:`v_{t+1} = \alpha v_t - \eta \nabla f(\theta_t +
    \alpha v_t)` by tracking :math:`\phi = \theta + \alpha v` instead of θ, so the gradient is
    taken at the current point only.

    Args:
      learning_rate: η, a float or an optax schedule.
      momentum: α in [0, 1), default 0.9.

    Reference: Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
    momentum in deep learning", ICML 2013; Bengio, Boulanger-Lewandowski & Pascanu, "Advances in
    optimizing recurrent networks", 2012 (the re-parametrisation).
    """
    check_learning_rate(learning_rate)
    check_decay_rate(momentum, "momentum")
    # optax.trace keeps v in the params' dtype: widened for bfloat16/float16 leaves.
    return widen_low_precision(
        optax.chain(
            optax.scale_by_learning_rate(learning_rate),
            optax.trace(decay=momentum, nesterov=True),
        )
    )
