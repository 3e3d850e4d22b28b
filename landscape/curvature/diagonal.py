"""Hutchinson's estimate of the Hessian diagonal, entry by entry with its standard error, and
its summary per layer.

For Rademacher vectors z, E[z ⊙ H z] = diag H (Bekas, Kokiopoulou & Saad 2007, "An estimator
for the diagonal of a matrix"): entry i of z ⊙ Hz is H_ii + Σ_{j≠i} z_i z_j H_ij, whose
noise has mean 0 and variance Σ_{j≠i} H_ij². With S probes,

.. math::

    \\hat d = \\frac{1}{S} \\sum_{s=1}^{S} z_s \\odot H z_s, \\qquad
    \\mathrm{SE}_i = \\frac{\\operatorname{std}_s\\big((z_s \\odot H z_s)_i\\big)}{\\sqrt{S}}
    \\quad (\\text{sample std}, S - 1 \\text{ degrees of freedom}).

Each probe is one Hessian-vector product (:meth:`HessianProblem.hvps`, ``batch`` side by side);
the running mean and sum of squared deviations stay on the device (Chan et al.'s pairwise
update, stable in float32), so memory is one block of products and two vectors of n.

Per layer (:func:`layer_names`: a leaf's parent path, ``dense0`` for ``dense0/kernel`` and
``dense0/bias``), the summary gives the mean of the estimated diagonal (the layer's trace over
its size) with a standard error from the per-probe layer sums Σ_{i∈B} z_i (Hz)_i (each an
unbiased estimate of the layer's trace), and Σ d̂_i². The latter is biased upwards:
E[Σ d̂_i²] = Σ H_ii² + Σ Var d̂_i, and ``sum_variance`` = Σ SE_i² estimates that excess.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.curvature.operator import HessianProblem
from landscape.curvature.trace import block_size, rademacher
from landscape.tree import leaf_path

Params = Any


class DiagonalBlock(NamedTuple):
    """The estimated diagonal over one layer."""

    name: str  # the layer: its leaves' parent path (a top-level leaf: its own name)
    leaves: tuple[str, ...]  # the leaf paths in it
    count: int  # its entries
    mean: float  # mean of d̂ over the layer (the layer's trace / count)
    mean_stderr: float  # standard error of ``mean``
    sum_squares: float  # Σ d̂_i²
    sum_variance: float  # Σ SE_i²: what Σ d̂_i² exceeds Σ H_ii² by, on average


class DiagonalEstimate(NamedTuple):
    diagonal: Params  # d̂, shaped like the params
    stderr: Params  # per-entry standard error, shaped like the params
    num_samples: int  # Rademacher probes (Hessian-vector products)
    blocks: tuple[DiagonalBlock, ...]  # one per layer, in the params' leaf order


def layer_names(params: Params) -> list[tuple[str, str]]:
    """``[(leaf path, layer), ...]`` in flattening order: a leaf's layer is its parent path
    (``dense0/kernel`` → ``dense0``), a top-level leaf's its own name (``w1`` → ``w1``)."""
    pairs = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = leaf_path(path)
        pairs.append((name, name.rsplit("/", 1)[0] if "/" in name else name))
    return pairs


@functools.partial(jax.jit, static_argnames=("num_blocks",), donate_argnums=(0, 1))
def _accumulate(mean, m2, count, x, segments, *, num_blocks):
    """Chan et al.'s merge of the block ``x`` (b, n) into the running ``mean`` and ``m2`` (Σ of
    squared deviations) of ``count`` earlier samples; also each row's sums per layer (b, L)."""
    size = x.shape[0]
    block_mean = jnp.mean(x, axis=0)
    block_m2 = jnp.sum((x - block_mean) ** 2, axis=0)
    total = count + size
    delta = block_mean - mean
    mean = mean + delta * (size / total)
    m2 = m2 + block_m2 + delta**2 * (count * size / total)
    sums = jax.vmap(lambda row: jax.ops.segment_sum(row, segments, num_blocks))(x)
    return mean, m2, sums


def hutchinson_diagonal(
    problem: HessianProblem,
    *,
    num_samples: int = 100,
    batch: int = 10,
    seed: int = 0,
) -> DiagonalEstimate:
    """Hutchinson's estimate of diag H with ``num_samples`` Rademacher probes (one
    Hessian-vector product each), ``batch`` at a time; see the module docstring."""
    if num_samples < 2:
        raise InputError(f"`num_samples` (={num_samples}) must be >= 2 (for a standard error)",
                         param="num_samples")
    if batch < 1:
        raise InputError(f"`batch` (={batch}) must be >= 1", param="batch")
    n, dtype = problem.num_params, problem.params.dtype
    template = problem.unravel(jnp.zeros(n, dtype))
    leaves = layer_names(template)
    layers = list(dict.fromkeys(layer for _, layer in leaves))
    sizes = [int(np.size(leaf)) for leaf in jax.tree.leaves(template)]
    segments = jnp.asarray(np.repeat([layers.index(layer) for _, layer in leaves], sizes),
                           jnp.int32)
    mean, m2 = jnp.zeros(n, dtype), jnp.zeros(n, dtype)
    size = block_size(num_samples, batch)  # one compiled product for every block
    keys = jax.random.split(jax.random.key(seed), -(-num_samples // size))
    layer_sums = []
    for i, key in enumerate(keys):
        z = rademacher(key, (size, n), dtype)
        real = min(size, num_samples - i * size)  # the last block's rows past it are not probes
        x = (z * problem.hvps(z.at[real:].set(0)))[:real]
        mean, m2, sums = _accumulate(mean, m2, jnp.asarray(i * size, dtype), x, segments,
                                     num_blocks=len(layers))
        layer_sums.append(np.asarray(sums, np.float64))
    diagonal = np.asarray(mean, np.float64)
    stderr = np.sqrt(np.asarray(m2, np.float64) / (num_samples - 1) / num_samples)
    layer_sums = np.concatenate(layer_sums)  # (S, L): per probe, Σ_{i∈B} z_i (Hz)_i
    ids = np.asarray(segments)
    blocks = []
    for b, layer in enumerate(layers):
        inside = ids == b
        count = int(inside.sum())
        blocks.append(DiagonalBlock(
            name=layer, leaves=tuple(name for name, of in leaves if of == layer), count=count,
            mean=float(diagonal[inside].mean()),
            mean_stderr=float(np.std(layer_sums[:, b], ddof=1) / np.sqrt(num_samples) / count),
            sum_squares=float(np.sum(diagonal[inside] ** 2)),
            sum_variance=float(np.sum(stderr[inside] ** 2))))
    def as_tree(flat: np.ndarray) -> Params:
        return jax.tree.map(np.asarray, problem.unravel(jnp.asarray(flat, dtype)))

    return DiagonalEstimate(as_tree(diagonal), as_tree(stderr), num_samples, tuple(blocks))
