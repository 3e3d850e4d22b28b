"""Numerical primitives shared by the optimizer families: state precision and accurate scalars.

Three decisions live here so that every family makes them the same way:

* **State precision.** Moments and accumulators of low-precision leaves (bfloat16, float16) are
  kept in float32: a bfloat16 second moment has 8 significant bits, so
  :math:`\\beta_2 v + (1-\\beta_2) g^2` with :math:`\\beta_2 = 0.999` would stop changing. Leaves of
  float32 or float64 keep their own dtype. Updates are always cast back to the gradient's dtype,
  so ``optax.apply_updates`` never changes a parameter's dtype. The suite's own transformations
  do this leaf by leaf; optax's keep their state in the params' dtype, so the aliases that chain
  them wrap the chain in :func:`widen_low_precision`.
* **Bias corrections** :math:`1 - \\beta^t` are computed as ``-expm1(t * log(beta))`` with
  ``log(beta)`` taken in double precision when ``beta`` is a Python number. The naive float32
  ``1 - 0.999**t`` is off by 1.3e-5 relative at ``t = 1``: float32(0.999) is 0.99900001287.
* **Per-layer norms** (a layer is one leaf of the params pytree) are taken in the accumulator
  dtype, so a bfloat16 leaf does not overflow or round its sum of squares.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "accumulator_dtype",
    "zeros_accumulator",
    "cast_tree_like",
    "scalar_dtype",
    "is_number",
    "one_minus_power",
    "layer_norm",
    "widen_low_precision",
]


def accumulator_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """Dtype of optimizer state for a leaf of ``dtype``: at least float32, else unchanged."""
    return jnp.promote_types(dtype, jnp.float32)


def zeros_accumulator(tree):
    """Zeros shaped like every leaf of ``tree``, in :func:`accumulator_dtype` of that leaf."""
    return jax.tree.map(
        lambda leaf: jnp.zeros(jnp.shape(leaf), accumulator_dtype(jnp.result_type(leaf))), tree
    )


def cast_tree_like(tree, reference):
    """Cast every leaf of ``tree`` to the dtype of the matching leaf of ``reference``."""
    return jax.tree.map(lambda x, ref: jnp.asarray(x).astype(jnp.result_type(ref)), tree, reference)


def scalar_dtype() -> jnp.dtype:
    """Dtype for per-step scalars (bias corrections, rectifiers): the default float dtype.

    float64 inside ``jax.enable_x64(True)``, float32 otherwise (what optax does for these scalars).
    """
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def is_number(value) -> bool:
    """True for a plain Python/NumPy number (known at construction, exact in double precision)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (numbers.Real, np.floating, np.integer))


def _log(decay):
    # log(beta) in double precision when beta is a plain number: the float32 rounding of 0.999 alone
    # is a 1.3e-5 relative error in 1 - beta.
    if is_number(decay):
        decay = float(decay)
        return -math.inf if decay == 0.0 else math.log(decay)
    return jnp.log(decay)


def one_minus_power(decay, count: jax.Array) -> jax.Array:
    """:math:`1 - \\beta^t` for an integer step count ``t >= 1``, without cancellation."""
    t = jnp.asarray(count).astype(scalar_dtype())
    return -jnp.expm1(t * jnp.asarray(_log(decay), scalar_dtype()))


def layer_norm(x: jax.Array) -> jax.Array:
    """Euclidean norm of a whole leaf (LARS/LAMB's "layer"), in the leaf's accumulator dtype."""
    x = jnp.asarray(x)
    x = x.astype(accumulator_dtype(x.dtype))
    return jnp.sqrt(jnp.sum(x * x))


def _widen(tree):
    """Every low-precision leaf of ``tree`` as a float32 copy; other leaves (and ``None``) as is."""

    def widen(leaf):
        leaf = jnp.asarray(leaf)
        dtype = accumulator_dtype(leaf.dtype)
        return leaf if leaf.dtype == dtype else leaf.astype(dtype)

    return jax.tree.map(widen, tree)


def widen_low_precision(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inner`` run on float32 copies of the bfloat16/float16 leaves of params and gradients.

    Gives an optax transformation (whose state follows the params' dtype) the suite's state
    precision; its updates come back in each gradient's dtype. The state is ``inner``'s, unwrapped,
    and float32/float64 leaves pass through untouched, so for them this is ``inner`` itself.
    """

    def init_fn(params):
        return inner.init(_widen(params))

    def update_fn(updates, state, params=None):
        new_updates, state = inner.update(_widen(updates), state, _widen(params))
        return cast_tree_like(new_updates, updates), state

    return optax.GradientTransformation(init_fn, update_fn)
