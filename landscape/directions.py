"""Directions in parameter space and the planes they span.

A direction is a pytree shaped like the params. Normalizations follow Li et al. 2018 ("Visualizing
the Loss Landscape of Neural Nets", §4), adapted to Flax layouts where the *output* axis of a dense
or conv kernel is the **last** one (PyTorch puts it first):

- ``filter``: each output filter d[..., j] is rescaled to the norm of w[..., j];
- ``layer``:  each leaf is rescaled to the norm of the same leaf of the weights;
- ``weight``: elementwise d ← d ⊙ w;
- ``none``:   left as drawn.

1-D leaves (biases, norm scales) and scalars: with ``ignore="biasbn"`` they are zeroed, otherwise
the direction copies the weights (Li et al.'s rule).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.workload import Params

NORMALIZATIONS = ("filter", "layer", "weight", "none")
IGNORE_RULES = ("biasbn", "none")
_EPS = 1e-10  # Li et al.'s guard against a zero-norm direction filter


@dataclasses.dataclass(frozen=True)
class Plane:
    """An origin and one or two directions, with how they were made.

    ``d2`` is None for a 1D line. ``explained_variance`` is filled for PCA planes.
    """

    origin: Params
    d1: Params
    d2: Params | None = None
    kind: str = "random"
    normalization: str = "filter"
    ignore: str = "biasbn"
    seed: int | None = None
    explained_variance: tuple[float, ...] | None = None

    @property
    def ndim(self) -> int:
        return 1 if self.d2 is None else 2


def random_direction(key: jax.Array, params: Params) -> Params:
    """A standard Gaussian direction shaped like ``params`` (one key per leaf, in tree order)."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, jnp.shape(w), jnp.result_type(w)) for k, w in zip(keys, leaves)],
    )


def _normalize_leaf(d: jax.Array, w: jax.Array, normalization: str, ignore: str) -> jax.Array:
    if jnp.ndim(w) <= 1:
        return jnp.zeros_like(d) if ignore == "biasbn" else jnp.asarray(w, d.dtype)
    if normalization == "filter":
        axes = tuple(range(jnp.ndim(w) - 1))  # every axis but the output one
        w_norm = jnp.sqrt(jnp.sum(w * w, axis=axes, keepdims=True))
        d_norm = jnp.sqrt(jnp.sum(d * d, axis=axes, keepdims=True))
        return d * (w_norm / (d_norm + _EPS))
    if normalization == "layer":
        return d * (jnp.linalg.norm(w) / (jnp.linalg.norm(d) + _EPS))
    if normalization == "weight":
        return d * w
    return d


def normalize_direction(
    direction: Params, params: Params, *, normalization: str = "filter", ignore: str = "biasbn"
) -> Params:
    """Rescale ``direction`` against ``params`` (see the module docstring). Pure; returns a copy."""
    if normalization not in NORMALIZATIONS:
        raise InputError(
            f"`normalization` (={normalization!r}) must be one of: {', '.join(NORMALIZATIONS)}"
        )
    if ignore not in IGNORE_RULES:
        raise InputError(f"`ignore` (={ignore!r}) must be one of: {', '.join(IGNORE_RULES)}")
    return jax.tree.map(lambda d, w: _normalize_leaf(d, w, normalization, ignore), direction, params)


def random_plane(
    params: Params,
    *,
    seed: int = 0,
    normalization: str = "filter",
    ignore: str = "biasbn",
    dims: int = 2,
) -> Plane:
    """A plane through ``params`` spanned by one or two normalized random directions."""
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2")
    k1, k2 = jax.random.split(jax.random.key(seed))
    d1 = normalize_direction(random_direction(k1, params), params, normalization=normalization, ignore=ignore)
    d2 = None
    if dims == 2:
        d2 = normalize_direction(random_direction(k2, params), params, normalization=normalization, ignore=ignore)
    kind = "random" if normalization == "none" else f"random-{normalization}"
    to_host = lambda t: None if t is None else jax.tree.map(np.asarray, t)  # noqa: E731
    return Plane(to_host(params), to_host(d1), to_host(d2), kind, normalization, ignore, seed)
