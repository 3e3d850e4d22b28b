"""Parameter blocks: groups of leaves, and the curvature of each group alone.

A block B is a set of flat parameter indices; its operator is the diagonal block H[B, B] of the
whole matrix (Hessian, GGN or Fisher), the other parameters held fixed
(:meth:`~landscape.curvature.operator.HessianProblem.restricted`). Zhang et al. 2024 ("Why
Transformers need Adam: a Hessian perspective", Figs. 1 and 3) compare such blocks' spectra:
a transformer's differ from block to block far more than a CNN's. Per block,
:func:`block_summaries` gives λmax and λmin (one Lanczos run), |λmin/λmax|, a Hutchinson trace
± its standard error and, optionally, the spectral density (stochastic Lanczos quadrature).

Blocks are named by leaf paths (``dense0/kernel``: :func:`landscape.tree.leaf_path`):

- ``"layer"``: one block per parent path — the kernel and bias of a Dense layer together; a
  leaf at the top of the tree is a block of its own;
- glob patterns (``fnmatch``: ``*`` matches across ``/``): one block per pattern, of every leaf
  whose path it matches (``"*/attn/*"``). Leaves no pattern matches are in no block.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from landscape.errors import InputError
from landscape.curvature.density import SpectralDensity, gaussian_density, slq_nodes
from landscape.curvature.eigen import hessian_eigenpairs
from landscape.curvature.operator import HessianProblem
from landscape.curvature.trace import hutchinson_trace
from landscape.tree import leaf_path

LAYER = "layer"
# σ of the blocks' densities, of the range of all their nodes: one σ, so that the curves
# compare; wider than one spectrum's default (density.SIGMA_REL, 0.16 %), under which a few
# probes' quadrature nodes draw as separate spikes that hide each other on one axis (seen on
# a small GPT's 8 blocks; 1 % shows each block's bulk and outliers, 2 % merges them).
BLOCK_SIGMA_REL = 0.01


class ParameterBlock(NamedTuple):
    name: str  # the layer's path, or the pattern
    leaves: tuple[str, ...]  # the leaf paths in it
    indices: np.ndarray  # (m,) int64: their entries in the flat parameter vector


def parameter_blocks(params: Any, blocks: str | Sequence[str]) -> list[ParameterBlock]:
    """The blocks of ``params``: ``"layer"``, or glob patterns over leaf paths (a string is
    one pattern). Flat indices follow ``ravel_pytree``'s order (leaves in flattening order)."""
    patterns = [blocks] if isinstance(blocks, str) else list(blocks)
    if not patterns:
        raise InputError("`blocks` is empty: give `layer` or leaf-path patterns", param="blocks")
    spans, start = {}, 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        size = int(np.size(leaf))
        spans[leaf_path(path)] = np.arange(start, start + size, dtype=np.int64)
        start += size
    if patterns == [LAYER]:
        groups: dict[str, list[str]] = {}
        for name in spans:
            groups.setdefault(name.rpartition("/")[0] or name, []).append(name)
    elif LAYER in patterns:
        raise InputError("`blocks`: `layer` stands alone; give it, or leaf-path patterns",
                         param="blocks")
    else:
        groups = {}
        for pattern in patterns:
            matched = [name for name in spans if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                shown = ", ".join(list(spans)[:6]) + (" ..." if len(spans) > 6 else "")
                raise InputError(f"`blocks` pattern {pattern!r} matches no parameter (leaves: "
                                 f"{shown})", param="blocks")
            groups[pattern] = matched
    return [ParameterBlock(name, tuple(names), np.concatenate([spans[n] for n in names]))
            for name, names in groups.items() if sum(spans[n].size for n in names)]


class BlockSummary(NamedTuple):
    """One block's curvature: λmax by Lanczos to the ``stop`` rule with tolerance
    max(tol·|λmax|, atol), then λmin to max(tol·|λmax|, atol) (see
    :func:`~landscape.curvature.eigen.hessian_eigenpairs`)."""

    name: str
    size: int  # parameters in the block
    lambda_max: float
    lambda_max_residual: float
    lambda_min: float
    lambda_min_residual: float
    trace: float  # Hutchinson estimate (NaN when not asked)
    trace_stderr: float
    converged: bool  # both eigenvalues met the tolerance
    lanczos_steps: int  # of both runs
    density: SpectralDensity | None

    @property
    def ratio(self) -> float:
        """|λmin/λmax| (Li et al. 2018's measure of non-convexity)."""
        return abs(self.lambda_min / self.lambda_max) if self.lambda_max else float("nan")

    def row(self) -> dict[str, Any]:
        """The table row (no density)."""
        row = {name: getattr(self, name) for name in self._fields if name != "density"}
        return {**row, "ratio": self.ratio}


def block_summaries(
    problem: HessianProblem,
    blocks: Sequence[ParameterBlock],
    *,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    trace_samples: int = 100,
    density_probes: int = 0,
    density_steps: int = 80,
    density_sigma: float | None = None,
    seed: int = 0,
    on_block: Callable[[int], object] | None = None,
) -> list[BlockSummary]:
    """:class:`BlockSummary` of each block of ``problem``'s (whole) matrix.

    ``trace_samples``: Rademacher probes per block (0: no trace); ``density_probes``: SLQ
    probes of ``density_steps`` Lanczos steps (capped at the block's size) per block (0: no
    density), smoothed by one Gaussian for every block so that their densities compare
    (``density_sigma``; default ``BLOCK_SIGMA_REL`` × the width of all the blocks' nodes).
    ``on_block(i)`` after each block (progress bars).
    """
    if trace_samples == 1 or trace_samples < 0:
        raise InputError(f"`trace_samples` (={trace_samples}) must be 0 (no trace) or >= 2")
    out, quadratures = [], []
    for i, block in enumerate(blocks):
        restricted = problem.restricted(block.indices)
        size = restricted.num_params
        options = dict(tol=tol, stop=stop, max_iter=max_iter)
        top = hessian_eigenpairs(restricted, top_k=1, atol=atol, seed=seed, **options)
        high, steps = top.top, top.iterations
        low = high
        if size > 1:
            # λmin to within tol·|λmax| (or atol): a block's smallest eigenvalues are often
            # ≈ 0 (the GGN's and the Fisher's always), out of reach of a relative tolerance,
            # and |λmin/λmax| needs no more than that.
            bottom = hessian_eigenpairs(restricted, top_k=0, bottom_k=1, seed=seed + 1,
                                        atol=max(atol, tol * abs(float(high.values[0]))),
                                        **options)
            low, steps = bottom.bottom, steps + bottom.iterations
        trace = (hutchinson_trace(restricted, num_samples=trace_samples, seed=seed)
                 if trace_samples else None)
        if density_probes:
            quadratures.append(slq_nodes(restricted, num_probes=density_probes,
                                         num_steps=min(density_steps, size), seed=seed))
        out.append(BlockSummary(
            block.name, size, float(high.values[0]), float(high.residuals[0]),
            float(low.values[0]), float(low.residuals[0]),
            float("nan") if trace is None else trace.estimate,
            float("nan") if trace is None else trace.stderr,
            bool(high.converged.all() and low.converged.all()), steps, None))
        if on_block is not None:
            on_block(i)
    if not quadratures:
        return out
    if density_sigma is None:
        nodes = np.concatenate([nodes for nodes, _ in quadratures])
        width = float(nodes.max() - nodes.min()) or max(abs(float(nodes.max())), 1.0)
        density_sigma = BLOCK_SIGMA_REL * width
    return [summary._replace(density=gaussian_density(nodes, weights, sigma=density_sigma))
            for summary, (nodes, weights) in zip(out, quadratures)]
