r"""Gradient descent, heavy-ball momentum and Nesterov momentum.

Article symbols: θ parameters, g = ∇f(θ) the gradient, η the learning rate (``learning_rate``),
v the velocity, α the momentum coefficient (``momentum``).

The velocity accumulates *learning-rate-scaled* gradients, v ← αv − ηg, exactly as the article
writes it, so the learning rate is applied before the momentum in the chain. PyTorch's
``torch.optim.SGD`` keeps ``buf ← μ buf + g`` and steps θ ← θ − η buf instead; with a constant η the
two give identical parameter trajectories (v = −η buf), they differ only under a schedule, where
the article's form weights each gradient by the η of its own step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from optimizers import numerics
from optimizers.validation import check_decay_rate, check_learning_rate

__all__ = ["MomentumState", "scale_by_momentum", "sgd", "momentum", "nesterov"]


def sgd(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    r"""Plain gradient descent.

    .. math::
        \theta_{t+1} = \theta_t - \eta\, g_t

    Args:
      learning_rate: η, a float or an optax schedule of the step count.

    Reference: Robbins & Monro, "A Stochastic Approximation Method", 1951.
    """
    check_learning_rate(learning_rate)
    return optax.scale_by_learning_rate(learning_rate)


class MomentumState(NamedTuple):
    """State of :func:`scale_by_momentum`."""

    velocity: optax.Updates  # v, already scaled by −η when chained after the learning rate


def scale_by_momentum(
    momentum: float = 0.9, *, nesterov: bool = False
) -> optax.GradientTransformation:
    r"""Accumulate incoming updates u (here u = −ηg) into a velocity.

    Heavy ball (``nesterov=False``) and the article's re-parametrised Nesterov
    (``nesterov=True``), which evaluates the gradient at the current point only — no shifted
    gradient θ + αv is needed:

    .. math::
        v_t = \alpha\, v_{t-1} + u_t, \qquad
        \Delta\theta_t = \begin{cases} v_t & \text{heavy ball} \\
                                       \alpha\, v_t + u_t & \text{Nesterov} \end{cases}

    with :math:`v_0 = 0`. The Nesterov form follows from Sutskever et al.'s
    :math:`v_{t+1} = \alpha v_t - \eta \nabla f(\theta_t + \alpha v_t)` by tracking
    :math:`\phi = \theta + \alpha v` instead of θ.

    Args:
      momentum: α, in [0, 1).
      nesterov: use the Nesterov form.

    The velocity is kept in at least float32 (see :mod:`optimizers.numerics`).
    """
    check_decay_rate(momentum, "momentum")

    def init_fn(params):
        return MomentumState(velocity=numerics.zeros_accumulator(params))

    def update_fn(updates, state, params=None):
        del params
        velocity = jax.tree.map(
            lambda u, v: momentum * v + u.astype(v.dtype), updates, state.velocity
        )
        if nesterov:
            steps = jax.tree.map(
                lambda u, v: momentum * v + u.astype(v.dtype), updates, velocity
            )
        else:
            steps = velocity
        return numerics.cast_tree_like(steps, updates), MomentumState(velocity=velocity)

    return optax.GradientTransformation(init_fn, update_fn)


def momentum(
    learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum (Polyak, 1964).

    .. math::
        v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad \theta_{t+1} = \theta_t + v_t

    Args:
      learning_rate: η, a float or an optax schedule.
      momentum: α, default 0.9.

    Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
    USSR Comp. Math. and Math. Phys., 1964.
    """
    check_learning_rate(learning_rate)
    return optax.chain(
        optax.scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=False),
    )


def nesterov(
    learning_rate: optax.ScalarOrSchedule, momentum: float = 0.9
) -> optax.GradientTransformation:
    r"""Nesterov momentum in the article's re-parametrised form (no shifted gradient).

    .. math::
        v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad
        \theta_{t+1} = \theta_t + \alpha\, v_t - \eta\, g_t

    Args:
      learning_rate: η, a float or an optax schedule.
      momentum: α, default 0.9.

    Reference: Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
    momentum in deep learning", ICML 2013; Bengio, Boulanger-Lewandowski & Pascanu, "Advances in
    optimizing recurrent networks", 2012 (the re-parametrisation).
    """
    check_learning_rate(learning_rate)
    return optax.chain(
        optax.scale_by_learning_rate(learning_rate),
        scale_by_momentum(momentum, nesterov=True),
    )

