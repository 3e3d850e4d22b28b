r"""Lookahead around any optimizer of the suite, and Ranger = Lookahead(RAdamW).

Article symbols: θ the fast weights, φ the slow weights, k the number of fast steps between
synchronisations (``sync_period``), α the slow weights' step toward the fast ones
(``slow_step_size``).

Unlike ``optax.lookahead``, which needs its params wrapped in ``optax.LookaheadParams(fast, slow)``,
this Lookahead is a plain ``GradientTransformation`` over plain params: the slow weights live in
the optimizer state and **the params the training loop holds are the fast weights**. At a
synchronisation step the emitted update moves the params straight to the new slow weights
(``params + update == slow_new`` up to one rounding), so the usual loop

.. code-block:: python

    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)

works unchanged, and after every k-th step ``params`` are the (synchronised) slow weights.
Otherwise the two agree (the slow-weight update is the same; tested to 1e-10 in float64). A second
reason for our own: ``optax.lookahead`` checks ``sync_period < 1`` with a Python ``if``, which
fails on the traced value that ``optax.inject_hyperparams`` passes inside a jitted update.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.adam import radam
from optimizers.masks import Mask
from optimizers.validation import (
    check_interpolation_rate,
    check_learning_rate,
    check_positive_int,
)

__all__ = ["LookaheadState", "lookahead", "ranger"]


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`."""

    inner_state: optax.OptState  # the wrapped optimizer's state
    slow: optax.Params  # φ, in the params' dtype
    steps_since_sync: jax.Array  # fast steps since the last synchronisation, int32 in [0, k)


def lookahead(
    inner: optax.GradientTransformation,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
) -> optax.GradientTransformation:
    r"""Lookahead: k fast steps of ``inner``, then pull the slow weights toward the fast ones.

    For each step, with Δ_t the (learning-rate-scaled) update of ``inner``:

    .. math::
        \tilde\theta = \theta_t + \Delta_t, \qquad
        \begin{cases}
          \theta_{t+1} = \tilde\theta & \text{if } (t+1) \bmod k \ne 0 \\[0.5ex]
          \phi \leftarrow \phi + \alpha\,(\tilde\theta - \phi), \quad \theta_{t+1} = \phi
            & \text{if } (t+1) \bmod k = 0
        \end{cases}

    with :math:`\phi = \theta_0` at initialisation and t counted from 0. The emitted update is
    :math:`\theta_{t+1} - \theta_t`. The inner state is carried across synchronisations (not
    reset), as in Zhang et al.'s experiments, Ranger and optax's default.

    Args:
      inner: any ``GradientTransformation`` producing final updates (learning rate included).
      sync_period: k ≥ 1, default 6 (Ranger's; Zhang et al. use 5 or 10).
      slow_step_size: α in (0, 1], default 0.5. α = 1 makes Lookahead the inner optimizer.

    Reference: Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
    NeurIPS 2019.
    """
    check_positive_int(sync_period, "sync_period")
    check_interpolation_rate(slow_step_size, "slow_step_size")

    def init_fn(params):
        return LookaheadState(
            inner_state=inner.init(params),
            # A copy, not an alias: a training step that donates params and state would otherwise
            # hand XLA the same buffer twice.
            slow=jax.tree.map(jnp.copy, params),
            steps_since_sync=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "lookahead needs `params` in update(grads, state, params): the fast weights"
            )
        fast_updates, inner_state = inner.update(updates, state.inner_state, params)
        sync = state.steps_since_sync == sync_period - 1

        def interpolate(u, theta, phi):
            # φ + α(θ + Δ − φ), rounded once to the params' dtype; used at a sync step only.
            dtype = numerics.accumulator_dtype(phi.dtype)
            theta_new = jnp.asarray(theta).astype(dtype) + u.astype(dtype)
            phi_wide = phi.astype(dtype)
            return (phi_wide + slow_step_size * (theta_new - phi_wide)).astype(phi.dtype)

        slow_candidate = jax.tree.map(interpolate, fast_updates, params, state.slow)
        # At a sync the update is the distance from the fast weights θ to the new φ.
        new_updates = jax.tree.map(
            lambda u, theta, phi: jnp.where(sync, phi - theta, u).astype(u.dtype),
            fast_updates,
            params,
            slow_candidate,
        )
        slow = jax.tree.map(
            lambda candidate, phi: jnp.where(sync, candidate, phi), slow_candidate, state.slow
        )
        new_state = LookaheadState(
            inner_state=inner_state,
            slow=slow,
            steps_since_sync=(state.steps_since_sync + 1) % sync_period,
        )
        return new_updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


def ranger(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.95,
    b2: float = 0.999,
    eps: float = 1e-5,
    threshold: float = 5.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    sync_period: int = 6,
    slow_step_size: float = 0.5,
    *,
    mask: Mask = None,
) -> optax.GradientTransformation:
    r"""Ranger: Lookahead around RAdam with decoupled weight decay (RAdamW).

    .. math::
        \Delta_t = -\eta\,\Big(r_t\,\frac{\hat m_t\sqrt{1-\beta_2^t}}{\sqrt{v_t}
                    + \varepsilon} + \lambda\,\theta_t\Big)
        \quad\text{inside}\quad \text{Lookahead}(k, \alpha)

    (:math:`\hat m_t` while ρ_t < ρ_min; RAdam step as in :func:`optimizers.adam.scale_by_radam`
    with ``eps_on="v"``, Lookahead as in :func:`lookahead`). ε is added to √v_t, not to √v̂_t
    as in RAdam: the reference code's ``step_size · m / (√v + ε)``, which pytorch-optimizer's
    Ranger follows too. The effective ε is then ε/√(1−β2^t): 13× larger at t = 6, the first
    rectified step with β2 = 0.999, and → ε as t grows.

    Args:
      learning_rate: η, a float or an optax schedule.
      b1: β1, default 0.95 (fast.ai's and Ranger's choice, as the article recommends).
      b2: β2, default 0.999.
      eps: ε, default 1e-5 (Ranger's reference implementation).
      threshold: RAdam's ρ_min, default 5.
      weight_decay: λ, default 0; decoupled as in AdamW.
      sync_period: k, default 6.
      slow_step_size: α, default 0.5.
      mask: leaves to decay, see :mod:`optimizers.masks`.

    Reference: L. Wright, "Ranger" (2019), version 9.3.19 (the gradient centralization that
    version 20.4.11 adds is not part of this one),
    https://github.com/lessw2020/Ranger-Deep-Learning-Optimizer.
    """
    check_learning_rate(learning_rate)
    inner = radam(learning_rate, b1, b2, eps, threshold, weight_decay, mask=mask, eps_on="v")
    return lookahead(inner, sync_period, slow_step_size)
