r"""The per-layer trust ratio min(‖θ‖, c)/‖Δ‖ of RangerLARS and Paratrooper (a layer is one
params leaf).

Scaling each leaf's update Δ by :math:`\|\theta\| / \|\Delta\|` makes the step of every layer a
fixed fraction (η) of that layer's weight norm, whatever the gradient scale of the layer. Without
the clamp c this is ``optax.scale_by_trust_ratio()`` up to rounding, which is what LAMB uses;
optax has no clamp on ‖θ‖ (RangerLARS's c = 10), hence this one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optimizers import numerics
from optimizers.validation import check_non_negative

__all__ = ["layer_trust_ratio", "scale_leaf", "scale_by_trust_ratio"]


def layer_trust_ratio(param: jax.Array, update: jax.Array, max_param_norm=None) -> jax.Array:
    r"""``min(‖θ‖, max_param_norm) / ‖Δ‖`` for one leaf, and 1 where either norm is 0.

    The fallback to 1 keeps a zero-initialised leaf (‖θ‖ = 0) trainable and avoids 0/0 when the
    update vanishes (LAMB paper, optax, over9000 all do this).
    """
    param_norm = numerics.layer_norm(param)
    if max_param_norm is not None:
        param_norm = jnp.minimum(param_norm, max_param_norm)
    update_norm = numerics.layer_norm(update)
    usable = (param_norm > 0) & (update_norm > 0)
    return jnp.where(usable, param_norm / jnp.where(usable, update_norm, 1.0), 1.0)


def scale_leaf(update: jax.Array, factor: jax.Array) -> jax.Array:
    """``factor * update`` rounded once to the update's dtype (a bfloat16 factor has 3 digits)."""
    dtype = numerics.accumulator_dtype(update.dtype)
    return (update.astype(dtype) * factor.astype(dtype)).astype(update.dtype)


def scale_by_trust_ratio(*, max_param_norm: float | None = None) -> optax.GradientTransformation:
    r"""Scale each leaf's update by its trust ratio.

    .. math::
        \Delta_\ell \leftarrow \frac{\min(\|\theta_\ell\|,\ c)}{\|\Delta_\ell\|}\, \Delta_\ell,
        \qquad 1 \text{ instead where } \|\theta_\ell\| = 0 \text{ or } \|\Delta_\ell\| = 0

    Args:
      max_param_norm: c, the clamp on the weight norm (RangerLARS: 10; ``None``: no clamp).

    Wrap it in ``optax.masked`` to exempt leaves (biases, norm scales) from it.
    """
    if max_param_norm is not None:
        check_non_negative(max_param_norm, "max_param_norm")

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("the trust ratio needs `params` in update(grads, state, params)")
        scaled = jax.tree.map(
            lambda u, p: scale_leaf(u, layer_trust_ratio(p, u, max_param_norm)), updates, params
        )
        return scaled, state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)
