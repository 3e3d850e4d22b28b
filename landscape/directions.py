"""Directions in parameter space and the planes they span.

A direction is a pytree shaped like the params. Normalizations follow Li et al. 2018 ("Visualizing
the Loss Landscape of Neural Nets", §4):

- ``filter``: each output filter d_f is rescaled to the norm of the weights' w_f
  (d_f ← d_f · ‖w_f‖ / (‖d_f‖ + 1e-10), their ``net_plotter.normalize_direction``);
- ``layer``:  each leaf is rescaled to the norm of the same leaf of the weights;
- ``weight``: elementwise d ← d ⊙ w;
- ``none``:   left as drawn.

Which axis of a leaf holds its output filters depends on the framework, so it is said, never
guessed from the shape (``output_axis``): ``"last"`` is Flax's layout (a dense kernel (in, out),
a conv kernel (h, w, in, out)) and the default; ``"first"`` is PyTorch's and Equinox's ((out, in),
(out, in, h, w): Li et al.'s filter = dim 0); or a pytree like the params with an int per leaf,
None for a leaf that has no output axis although it has several dimensions (an Equinox
convolution's bias, shaped (out, 1, 1) where PyTorch's is (out,)). :func:`landscape.surface` takes
the layout from the model (:func:`landscape.adapters.output_axis_of`).

Leaves without an output axis — 1-D leaves (biases, norm scales), scalars, and those marked None
— follow Li et al.'s rule under every normalization: with ``ignore="biasbn"`` they are zeroed,
otherwise the direction copies the weights.

A plane records the layout it was made with (``Plane.output_axis``, in the surface file's
provenance): a rule's name, or ``{leaf path: axis or None}``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from landscape.errors import InputError
from landscape.objective import Params
from landscape.tree import leaf_path

NORMALIZATIONS = ("filter", "layer", "weight", "none")
IGNORE_RULES = ("biasbn", "none")
OUTPUT_AXIS_RULES = ("last", "first")  # Flax's layout; PyTorch's and Equinox's
_EPS = 1e-10  # Li et al.'s guard against a zero-norm direction filter

# How a plane records its layout: a rule's name, or ((leaf path, axis or None), ...) in tree
# order (hashable: a plane's provenance is static pytree metadata).
Layout = str | tuple[tuple[str, int | None], ...]


@functools.partial(jax.tree_util.register_dataclass, data_fields=["origin", "d1", "d2"],
                   meta_fields=["kind", "normalization", "ignore", "seed", "explained_variance",
                                "output_axis"])
@dataclasses.dataclass(frozen=True)
class Plane:
    """An origin and one or two directions, with how they were made.

    A pytree: the arrays (``origin``, ``d1``, ``d2``) are its children and the provenance its
    static metadata, so ``jax.tree.map`` and ``jax.device_put`` apply to the arrays. ``d2`` is
    None for a 1D line. ``explained_variance`` is filled for PCA planes. ``output_axis`` is the
    layout the directions were made with (see the module docstring; :func:`layout_record` gives
    it as JSON), None where none was used (interpolation, Hessian, stored directions).
    """

    origin: Params
    d1: Params
    d2: Params | None = None
    kind: str = "random"
    normalization: str = "filter"
    ignore: str = "biasbn"
    seed: int | None = None
    explained_variance: tuple[float, ...] | None = None
    output_axis: Layout | None = None

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


def _shape(leaf: Any) -> tuple[int, ...]:
    shape = getattr(leaf, "shape", None)  # arrays and jax.ShapeDtypeStruct alike
    return tuple(shape) if shape is not None else np.shape(leaf)


def _ndim(leaf: Any) -> int:
    return len(_shape(leaf))


def output_axes(params: Params, output_axis: Any = "last") -> list[int | None]:
    """Each leaf's output axis (in ``jax.tree`` order; non-negative), None for a leaf without
    one: 1-D leaves and scalars always, and those ``output_axis`` marks None.

    ``output_axis``: ``"last"`` (Flax), ``"first"`` (PyTorch, Equinox), or a pytree with the
    params' structure holding an int (negative counts from the end) or None per leaf; an int on
    a 1-D leaf or a scalar is ignored (Li et al.'s rule applies there). Anything else is an
    :class:`InputError` naming ``output_axis``."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if isinstance(output_axis, str):
        if output_axis not in OUTPUT_AXIS_RULES:
            raise InputError(f"`output_axis` (={output_axis!r}) must be one of: "
                             f"{', '.join(OUTPUT_AXIS_RULES)}, or a pytree like the parameters "
                             "with an int (or None) per leaf", param="output_axis")
        return [None if _ndim(w) <= 1 else 0 if output_axis == "first" else _ndim(w) - 1
                for _, w in flat]
    try:
        given = treedef.flatten_up_to(output_axis)
    except (ValueError, TypeError) as exc:
        raise InputError(f"`output_axis` must be one of: {', '.join(OUTPUT_AXIS_RULES)}, or a "
                         f"pytree like the parameters with an int (or None) per leaf; it does "
                         f"not have the parameters' structure ({exc})", param="output_axis"
                         ) from None
    axes: list[int | None] = []
    for (path, w), axis in zip(flat, given):
        ndim = _ndim(w)
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
            raise InputError(f"`output_axis` of leaf {leaf_path(path)!r} (={axis!r}) must be an "
                             "int or None", param="output_axis")
        if axis is None or ndim <= 1:
            axes.append(None)
        elif not -ndim <= axis < ndim:
            raise InputError(f"`output_axis` of leaf {leaf_path(path)!r} (={axis}) is not an "
                             f"axis of its shape {_shape(w)}", param="output_axis")
        else:
            axes.append(int(axis) % ndim)
    return axes


def layout_of(params: Params, output_axis: Any = "last") -> Layout:
    """The layout ``output_axis`` gives ``params``, as a plane records it: ``"last"`` or
    ``"first"`` when it is that rule's (whatever way it was given), else ``((leaf path, axis or
    None), ...)`` for every leaf in tree order."""
    axes = output_axes(params, output_axis)
    for rule in OUTPUT_AXIS_RULES:  # one layout, one record, however it was given
        if axes == output_axes(params, rule):
            return rule
    names = [leaf_path(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    return tuple(zip(names, axes))


def layout_record(layout: Layout | None) -> str | dict[str, int | None] | None:
    """A plane's ``output_axis`` as JSON, as a surface file records it
    (:class:`~landscape.io.surface_record.SurfaceRecord`): a rule's name, or ``{leaf path: axis
    or None}``."""
    return layout if layout is None or isinstance(layout, str) else dict(layout)


def layout_from_record(recorded: str | dict | None) -> Layout | None:
    """The inverse of :func:`layout_record`."""
    return recorded if recorded is None or isinstance(recorded, str) else tuple(recorded.items())


def layout_spec(layout: Layout | None) -> dict[str, Any]:
    """The layout as an argument of a scan's spec, so a resume under another one is refused:
    ``{"output_axis": ...}``, or nothing for ``"last"`` — the layout of every scan before the
    layout was recorded, whose files stay resumable — and for planes made without one."""
    return {} if layout is None or layout == "last" else {"output_axis": layout_record(layout)}


def _normalize_leaf(d: jax.Array, w: jax.Array, axis: int | None, normalization: str,
                    ignore: str) -> jax.Array:
    if axis is None:  # a bias, a norm's scale: Li et al.'s rule for 1-D tensors
        return jnp.zeros_like(d) if ignore == "biasbn" else jnp.asarray(w, d.dtype)
    if normalization == "filter":
        axes = tuple(i for i in range(jnp.ndim(w)) if i != axis)  # a filter: all but the output
        w_norm = jnp.sqrt(jnp.sum(w * w, axis=axes, keepdims=True))
        d_norm = jnp.sqrt(jnp.sum(d * d, axis=axes, keepdims=True))
        return d * (w_norm / (d_norm + _EPS))
    if normalization == "layer":
        return d * (jnp.linalg.norm(w) / (jnp.linalg.norm(d) + _EPS))
    if normalization == "weight":
        return d * w
    return d


def normalize_direction(
    direction: Params, params: Params, *, normalization: str = "filter", ignore: str = "biasbn",
    output_axis: Any = "last",
) -> Params:
    """Rescale ``direction`` against ``params`` (see the module docstring), with the output
    filters along ``output_axis`` (see :func:`output_axes`). Pure; returns a copy."""
    if normalization not in NORMALIZATIONS:
        raise InputError(
            f"`normalization` (={normalization!r}) must be one of: {', '.join(NORMALIZATIONS)}"
        )
    if ignore not in IGNORE_RULES:
        raise InputError(f"`ignore` (={ignore!r}) must be one of: {', '.join(IGNORE_RULES)}")
    axes = output_axes(params, output_axis)
    treedef = jax.tree.structure(params)
    leaves = [_normalize_leaf(d, w, axis, normalization, ignore) for d, w, axis
              in zip(treedef.flatten_up_to(direction), jax.tree.leaves(params), axes)]
    return jax.tree.unflatten(treedef, leaves)


def random_plane(
    params: Params,
    *,
    seed: int = 0,
    normalization: str = "filter",
    ignore: str = "biasbn",
    dims: int = 2,
    same: bool = False,
    orthogonal: bool = False,
    output_axis: Any = "last",
) -> Plane:
    """A plane through ``params`` spanned by one or two normalized random directions.

    ``same`` uses the first direction for both axes (a diagonal slice); ``orthogonal`` makes the
    second direction orthogonal to the first (after normalization; see :func:`orthogonalize`).
    ``output_axis``: the params' layout (see the module docstring; default ``"last"``, Flax's),
    recorded in the plane.
    """
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2")
    layout = layout_of(params, output_axis)
    k1, k2 = jax.random.split(jax.random.key(seed))
    norm = dict(normalization=normalization, ignore=ignore, output_axis=output_axis)
    d1 = normalize_direction(random_direction(k1, params), params, **norm)
    d2 = None
    if dims == 2:
        d2 = d1 if same else normalize_direction(random_direction(k2, params), params, **norm)
        if orthogonal and not same:
            d2 = orthogonalize(d1, d2)
    kind = "random" if normalization == "none" else f"random-{normalization}"
    return Plane(_host(params), _host(d1), _host(d2), kind, normalization, ignore, seed,
                 output_axis=layout)


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


def pca_plane(trajectory: list[Params], *, dims: int = 2, ignore: str = "none",
              output_axis: Any = "last") -> Plane:
    """The plane through the trajectory's last point spanned by the top principal components of
    the rows θ_i − θ_final: centred PCA by SVD, as Li et al.'s ``projection.py`` with
    scikit-learn's ``PCA`` — signs included (sklearn ≥ 1.5's ``svd_flip`` on the components:
    each component's largest-magnitude entry, the first of ties, is positive).

    ``ignore="biasbn"`` zeroes the 1-D leaves (biases, norm scales) and scalars of every row
    before the PCA and of the directions after it (their ``net_plotter.ignore_biasbn``); the
    plane's ``ignore`` records the rule applied; with it, the leaves without an output axis
    under ``output_axis`` (see the module docstring) are those zeroed, and the plane records that
    layout. Directions are unit vectors in parameter space; ``explained_variance`` holds the
    explained variance ratios of the components used.
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
    # 1 where a parameter takes part: Li et al.'s `d.dim() <= 1` per tensor, said by the layout
    # (an Equinox convolution's (out, 1, 1) bias is their 1-D one).
    axes = output_axes(final, output_axis)
    keep = np.asarray(ravel_pytree(jax.tree.unflatten(jax.tree.structure(final), [
        jnp.full(jnp.shape(w), ignore != "biasbn" or axis is not None, jnp.float32)
        for w, axis in zip(jax.tree.leaves(final), axes)]))[0], np.float64)
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
                 normalization="none", ignore=ignore, explained_variance=ratios,
                 output_axis=layout_of(final, output_axis) if ignore == "biasbn" else None)


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
