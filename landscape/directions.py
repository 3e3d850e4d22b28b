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
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from landscape.errors import InputError
from landscape.objective import Params

NORMALIZATIONS = ("filter", "layer", "weight", "none")
IGNORE_RULES = ("biasbn", "none")
_EPS = 1e-10  # Li et al.'s guard against a zero-norm direction filter


@functools.partial(jax.tree_util.register_dataclass, data_fields=["origin", "d1", "d2"],
                   meta_fields=["kind", "normalization", "ignore", "seed", "explained_variance"])
@dataclasses.dataclass(frozen=True)
class Plane:
    """An origin and one or two directions, with how they were made.

    A pytree: the arrays (``origin``, ``d1``, ``d2``) are its children and the provenance its
    static metadata, so ``jax.tree.map`` and ``jax.device_put`` apply to the arrays. ``d2`` is
    None for a 1D line. ``explained_variance`` is filled for PCA planes.
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

    def bare(self) -> Plane:
        """The arrays alone (default provenance): what compiled programs take, so that one
        program serves every plane of the same shapes whatever their provenance."""
        return Plane(self.origin, self.d1, self.d2)


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
    same: bool = False,
    orthogonal: bool = False,
) -> Plane:
    """A plane through ``params`` spanned by one or two normalized random directions.

    ``same`` uses the first direction for both axes (a diagonal slice); ``orthogonal`` makes the
    second direction orthogonal to the first (after normalization; see :func:`orthogonalize`).
    """
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2")
    k1, k2 = jax.random.split(jax.random.key(seed))
    norm = dict(normalization=normalization, ignore=ignore)
    d1 = normalize_direction(random_direction(k1, params), params, **norm)
    d2 = None
    if dims == 2:
        d2 = d1 if same else normalize_direction(random_direction(k2, params), params, **norm)
        if orthogonal and not same:
            d2 = orthogonalize(d1, d2)
    kind = "random" if normalization == "none" else f"random-{normalization}"
    return Plane(_host(params), _host(d1), _host(d2), kind, normalization, ignore, seed)


def _host(tree: Params | None) -> Params | None:
    return None if tree is None else jax.tree.map(np.asarray, tree)


def orthogonalize(d1: Params, d2: Params) -> Params:
    """``d2`` made orthogonal to ``d1`` (one Gram–Schmidt step over all leaves together) and
    rescaled to its original norm, so a normalized direction keeps its overall scale."""
    flat1, _ = ravel_pytree(d1)
    flat2, unravel = ravel_pytree(d2)
    v1, v2 = np.asarray(flat1, np.float64), np.asarray(flat2, np.float64)
    denom = v1 @ v1
    if denom == 0:
        raise InputError("cannot orthogonalize against a zero direction")
    ortho = v2 - (v1 @ v2) / denom * v1
    ortho *= np.linalg.norm(v2) / max(np.linalg.norm(ortho), 1e-30)
    return _host(unravel(jnp.asarray(ortho, flat2.dtype)))


def pca_plane(trajectory: list[Params], *, dims: int = 2, ignore: str = "none") -> Plane:
    """The plane through the trajectory's last point spanned by the top principal components of
    the rows θ_i − θ_final: centred PCA by SVD, as Li et al.'s ``projection.py`` with
    scikit-learn's ``PCA`` — signs included (sklearn ≥ 1.5's ``svd_flip`` on the components:
    each component's largest-magnitude entry, the first of ties, is positive).

    ``ignore="biasbn"`` zeroes the 1-D leaves (biases, norm scales) and scalars of every row
    before the PCA and of the directions after it (their ``net_plotter.ignore_biasbn``); the
    plane's ``ignore`` records the rule applied. Directions are unit vectors in parameter space;
    ``explained_variance`` holds the explained variance ratios of the components used.
    """
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2", param="dims")
    if ignore not in IGNORE_RULES:
        raise InputError(f"`ignore` (={ignore!r}) must be one of: {', '.join(IGNORE_RULES)}",
                         param="ignore")
    # n recorded points span at most n - 1 directions once centred: a plane needs 3, a line 2.
    if len(trajectory) < dims + 1:
        line = " or scan a line (`dims` 1)" if dims == 2 and len(trajectory) == 2 else ""
        raise InputError(
            f"PCA directions need at least {dims + 1} recorded steps for a "
            f"{'plane' if dims == 2 else 'line'}, the trajectory has {len(trajectory)}; "
            f"record more often (`record_every`){line}", param=("record_every", "dims"))
    final = trajectory[-1]
    final_vec, unravel = ravel_pytree(final)
    # 1 where a parameter takes part: the rule is Li et al.'s `d.dim() <= 1` per tensor.
    keep = np.asarray(ravel_pytree(jax.tree.map(
        lambda w: jnp.full(jnp.shape(w), ignore != "biasbn" or jnp.ndim(w) > 1, jnp.float32),
        final))[0], np.float64)
    rows = np.stack([np.asarray(ravel_pytree(p)[0], np.float64) for p in trajectory])
    rows -= np.asarray(final_vec, np.float64)
    rows *= keep
    rows -= rows.mean(axis=0)
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    # sklearn's svd_flip(u_based_decision=False), as its PCA applies it since 1.5 (before 1.5 the
    # sign followed U's columns instead: Li et al.'s 2018 figures may be mirrored against these).
    largest = np.argmax(np.abs(vt), axis=1)
    vt *= np.sign(vt[np.arange(len(vt)), largest])[:, None]
    vt *= keep  # exact zeros where ignored (the SVD leaves rounding noise there)
    variance = singular**2
    total = variance.sum()
    if total == 0:
        raise InputError("the trajectory never moves: PCA directions are undefined")
    ratios = tuple(float(v) for v in variance[:dims] / total)
    if ratios[-1] < 1e-12:  # the trajectory is (numerically) a straight line
        raise InputError(
            f"the trajectory moves along one direction only (PCA component 2 explains "
            f"{ratios[-1]:.1e} of its variance): a PCA plane is undefined; scan a line (`dims` 1)",
            param="dims")
    dtype = np.asarray(final_vec).dtype
    ds = [_host(unravel(jnp.asarray(vt[i].astype(dtype)))) for i in range(dims)]
    return Plane(_host(final), ds[0], ds[1] if dims == 2 else None, kind="pca",
                 normalization="none", ignore=ignore, explained_variance=ratios)


def interpolation_plane(start: Params, end: Params, third: Params | None = None) -> Plane:
    """The line θ(α) = start + α (end − start) (Goodfellow et al. 2015), or with ``third`` the
    plane through three points: start + α (end − start) + β (third − start).

    α = 0 is ``start`` and α = 1 is ``end``; scan e.g. ``--x -0.5:1.5:41``.
    """
    def minus(a, b):
        if jax.tree.structure(a) != jax.tree.structure(b):
            raise InputError("interpolation endpoints have different parameter structures")
        shapes_a, shapes_b = jax.tree.map(np.shape, a), jax.tree.map(np.shape, b)
        if shapes_a != shapes_b:
            raise InputError("interpolation endpoints have different parameter shapes")
        return jax.tree.map(lambda x, y: np.asarray(x) - np.asarray(y), a, b)

    d1 = minus(end, start)
    d2 = None if third is None else minus(third, start)
    return Plane(_host(start), d1, d2, kind="interpolation", normalization="none", ignore="none")


def plane_from_directions(origin: Params, d1: Params, d2: Params | None, *, kind: str = "file") -> Plane:
    """A plane through ``origin`` along given directions (e.g. read from a surface file), with
    their shapes checked against the params."""
    want = jax.tree.map(np.shape, origin)
    for name, d in (("d1", d1), ("d2", d2)):
        if d is not None and jax.tree.map(np.shape, d) != want:
            raise InputError(f"direction `{name}` does not match the model's parameter shapes")
    return Plane(_host(origin), _host(d1), _host(d2), kind=kind, normalization="none", ignore="none")
