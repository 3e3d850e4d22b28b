r"""RMSProp: divide the gradient by a running root-mean-square of recent gradients.

Article symbols: g the gradient, σ_t² the running mean of g², α its decay rate (``decay``),
η the learning rate (``learning_rate``), ε (``eps``) a guard outside the root.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.validation import check_decay_rate, check_learning_rate, check_non_negative

__all__ = ["RMSPropState", "scale_by_rmsprop", "rmsprop"]


class RMSPropState(NamedTuple):
    """State of :func:`scale_by_rmsprop`."""

    count: jax.Array  # steps taken, int32
    mean_square: optax.Updates  # σ_t², at least float32


def scale_by_rmsprop(
    decay: float = 0.9, eps: float = 1e-8, *, zero_init: bool = False
) -> optax.GradientTransformation:
    r"""Divide the gradient by the running RMS of gradients.

    .. math::
        \sigma_t^2 = \alpha\, \sigma_{t-1}^2 + (1-\alpha)\, g_t^2 \quad (t \ge 1), \qquad
        \sigma_0 = |g_0|, \qquad
        \Delta_t = \frac{g_t}{\sigma_t + \varepsilon}

    Steps are numbered from t = 0 as in the article, so the first step divides by
    :math:`|g_0|` itself (a sign step of size η). With ``zero_init=True`` the average starts from
    :math:`\sigma_{-1} = 0` instead, so :math:`\sigma_0^2 = (1-\alpha) g_0^2` — the common choice of
    ``torch.optim.RMSprop`` and ``optax.rmsprop``, whose first step is :math:`1/\sqrt{1-\alpha}`
    times larger.

    Args:
      decay: α in [0, 1), default 0.9 (Hinton's lecture; PyTorch defaults to 0.99).
      eps: ε ≥ 0 added to σ outside the root (PyTorch's placement), default 1e-8.
      zero_init: start the average at 0 instead of the first squared gradient.

    Ours rather than ``optax.scale_by_rms``: σ_0 = |g_0| needs the step count, which optax's state
    lacks. ``zero_init=True`` is ``optax.scale_by_rms(decay, eps, eps_in_sqrt=False)`` up to
    rounding, kept here so that both starts have one state layout (``count``, ``mean_square``).
    """
    check_decay_rate(decay, "decay")
    check_non_negative(eps, "eps")

    def init_fn(params):
        return RMSPropState(
            count=jnp.zeros([], jnp.int32), mean_square=numerics.zeros_accumulator(params)
        )

    def update_fn(updates, state, params=None):
        del params
        first_step = state.count == 0

        def new_mean_square(g, s):
            g2 = jnp.square(g.astype(s.dtype))
            running = decay * s + (1.0 - decay) * g2
            if zero_init:
                return running
            return jnp.where(first_step, g2, running)

        mean_square = jax.tree.map(new_mean_square, updates, state.mean_square)
        steps = jax.tree.map(
            lambda g, s: g.astype(s.dtype) / (jnp.sqrt(s) + eps), updates, mean_square
        )
        new_state = RMSPropState(count=optax.safe_increment(state.count), mean_square=mean_square)
        return numerics.cast_tree_like(steps, updates), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def rmsprop(
    learning_rate: optax.ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    *,
    zero_init: bool = False,
) -> optax.GradientTransformation:
    r"""RMSProp.

    .. math::
        \sigma_t^2 = \alpha\, \sigma_{t-1}^2 + (1-\alpha)\, g_t^2, \quad \sigma_0 = |g_0|, \qquad
        \theta_{t+1} = \theta_t - \eta\, \frac{g_t}{\sigma_t + \varepsilon}

    Args:
      learning_rate: η, a float or an optax schedule.
      decay: α, default 0.9.
      eps: ε outside the root, default 1e-8.
      zero_init: σ_{-1} = 0 (PyTorch/optax) instead of the article's σ_0 = |g_0|.

    Reference: G. Hinton, N. Srivastava, K. Swersky, "Neural Networks for Machine Learning",
    lecture 6e, 2012.
    """
    check_learning_rate(learning_rate)
    return optax.chain(
        scale_by_rmsprop(decay, eps, zero_init=zero_init),
        optax.scale_by_learning_rate(learning_rate),
    )
