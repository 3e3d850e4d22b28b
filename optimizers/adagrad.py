r"""Adagrad: per-coordinate step sizes from the running sum of squared gradients.

Article symbols: g the gradient, σ_t the root of the summed squared gradients, η the learning
rate (``learning_rate``), ε (``eps``) a guard against 0/0 only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.validation import check_learning_rate, check_non_negative

__all__ = ["AdagradState", "scale_by_adagrad", "adagrad"]


class AdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`."""

    sum_of_squares: optax.Updates  # Σ_{s≤t} g_s², at least float32


def scale_by_adagrad(eps: float = 1e-10) -> optax.GradientTransformation:
    r"""Divide the gradient by the root of the summed squared gradients.

    .. math::
        \sigma_t = \sqrt{\textstyle\sum_{s=1}^{t} g_s^2}, \qquad
        \Delta_t = \frac{g_t}{\sigma_t + \varepsilon}

    The sum starts at 0 (as in Duchi et al. and ``torch.optim.Adagrad``; optax's default starts it
    at 0.1 and puts ε inside the root). ε = 1e-10 only keeps a coordinate whose gradients have all
    been exactly 0 at 0 instead of 0/0; it is far below any gradient that moves a parameter.

    Args:
      eps: ε ≥ 0, default 1e-10 (PyTorch's value). With ε = 0 a coordinate whose gradients have
        all been 0 gives 0/0 = NaN.

    Ours rather than ``optax.scale_by_rss``, which computes g/√(Σg² + ε) (ε inside the root, sum
    from 0.1 by default): with ε > 0 no setting of it gives g/(σ + ε); with
    ``initial_accumulator_value=0, eps=0`` the two agree to rounding.
    """
    check_non_negative(eps, "eps")

    def init_fn(params):
        return AdagradState(sum_of_squares=numerics.zeros_accumulator(params))

    def update_fn(updates, state, params=None):
        del params
        sum_of_squares = jax.tree.map(
            lambda g, s: s + jnp.square(g.astype(s.dtype)), updates, state.sum_of_squares
        )
        steps = jax.tree.map(
            lambda g, s: g.astype(s.dtype) / (jnp.sqrt(s) + eps), updates, sum_of_squares
        )
        return numerics.cast_tree_like(steps, updates), AdagradState(sum_of_squares)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad(
    learning_rate: optax.ScalarOrSchedule, eps: float = 1e-10
) -> optax.GradientTransformation:
    r"""Adagrad.

    .. math::
        \theta_{t+1} = \theta_t - \eta\, \frac{g_t}{\sigma_t + \varepsilon}, \qquad
        \sigma_t = \sqrt{\textstyle\sum_{s=1}^{t} g_s^2}

    Args:
      learning_rate: η, a float or an optax schedule.
      eps: ε, default 1e-10.

    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 2011.
    """
    check_learning_rate(learning_rate)
    return optax.chain(scale_by_adagrad(eps), optax.scale_by_learning_rate(learning_rate))
