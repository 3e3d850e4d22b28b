"""Masks that exclude leaves (biases, norm scales) from weight decay and trust ratios.

A mask follows optax's convention (``optax.masked``, ``optax.add_decayed_weights``): ``None`` (or
``True``) applies the rule to every leaf; otherwise a pytree with the params' structure, or a prefix
of it, whose leaves are Python booleans (``True``: apply), or a callable ``params -> such a tree``.
Masks are static: they decide at trace time which leaves get which code.

The families that compose optax building blocks pass masks straight to ``optax.masked`` /
``optax.add_decayed_weights``; LARS, whose trust ratio needs the raw gradient and the decayed one
together, resolves the mask to one boolean per leaf with :func:`mask_per_leaf`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import jax

__all__ = ["Mask", "mask_per_leaf", "no_decay_for_vectors"]

Mask = Union[None, bool, Any, Callable[[Any], Any]]


def mask_per_leaf(mask: Mask, params) -> Any:
    """The mask as a tree shaped like ``params`` with one Python ``bool`` per leaf."""
    if mask is None:
        mask = True
    if callable(mask):
        mask = mask(params)
    # A prefix tree: every mask leaf covers the whole params subtree below it.
    full = jax.tree.map(
        lambda flag, subtree: jax.tree.map(lambda _: flag, subtree), mask, params
    )
    return jax.tree.map(_as_static_bool, full)


def _as_static_bool(flag) -> bool:
    try:
        return bool(flag)
    except jax.errors.ConcretizationTypeError as error:
        raise TypeError(
            "a `mask` leaf must be a Python bool known at trace time, got a traced value"
        ) from error


def no_decay_for_vectors(params) -> Any:
    """A ready-made mask: ``True`` for leaves with ``ndim >= 2`` (weight matrices, kernels).

    Biases and normalisation scales/offsets (``ndim <= 1``) are excluded, the usual rule for
    weight decay and for LARS/LAMB trust ratios.
    """
    return jax.tree.map(lambda leaf: jax.numpy.ndim(leaf) >= 2, params)
