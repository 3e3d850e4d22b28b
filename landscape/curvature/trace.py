"""Stochastic estimates of the Hessian trace, each with its standard error: Hutchinson's and
Hutch++.

**Hutchinson** (1990). For Rademacher vectors z (entries ±1 with probability ½),
E[zᵀ H z] = tr H, so

.. math::

    \\widehat{\\operatorname{tr}} H = \\frac{1}{S} \\sum_{s=1}^{S} z_s^\\top H z_s, \\qquad
    \\mathrm{SE} = \\frac{\\operatorname{std}(z_s^\\top H z_s)}{\\sqrt{S}} \\quad
    (\\text{sample std}, S - 1 \\text{ degrees of freedom}),

(Rademacher probes minimize the variance, 2 Σ_{i≠j} H_ij², among i.i.d. probes). Its error
falls as 1/√S whatever the spectrum.

**Hutch++** (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: optimal stochastic trace
estimation", Algorithm 1). With m products split in thirds — k = ⌊m/3⌋ Rademacher columns S,
k more for the low-rank part, r = m − 2k Rademacher probes G for the rest:

.. math::

    Q = \\operatorname{qr}(H S), \\quad P = I - Q Q^\\top, \\qquad
    \\widehat{\\operatorname{tr}} H = \\operatorname{tr}(Q^\\top H Q)
    + \\frac{1}{r} \\sum_{j=1}^{r} g_j^\\top P H P g_j .

The first term is exact given Q (tr H = tr QᵀHQ + tr PHP for any orthonormal Q); the second is
Hutchinson's estimate on the deflated matrix P H P, whose Frobenius norm is small when H's
spectrum decays, so the error falls as 1/m there (against 1/√m). For a matrix of rank ≤ k the
sketch captures the whole range, P H P = 0, and the estimate is exact.

Each zᵀ H z is a second directional derivative (forward-over-forward, no reverse pass), summed
over the data batch by batch (:meth:`HessianProblem.quadratic_forms`); Hutch++'s sketch H S
takes Hessian-vector products (:meth:`HessianProblem.hvps`). A block of ``batch`` probes runs
side by side (vmapped), so the network runs larger matmuls and memory stays bounded. PyHessian
stops when the running mean changes by less than a relative tolerance, which can stop after a
few probes with a large error; here the number of probes is fixed and the standard error says
how good the estimate is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.curvature.operator import HessianProblem

TRACE_METHODS = ("hutchinson", "hutch++")


class TraceEstimate(NamedTuple):
    estimate: float  # the trace estimate
    stderr: float  # its standard error (see each estimator for what it measures)
    samples: np.ndarray  # (S,) zᵀ H z (Hutchinson); (r,) gᵀ P H P g, the residual's (Hutch++)
    method: str = "hutchinson"
    matvecs: int = 0  # products with H: S probes (Hutchinson), m = 2k + r (Hutch++)
    low_rank: float | None = None  # Hutch++: tr(QᵀHQ), exact given Q
    sketch: int = 0  # Hutch++: k, the columns of S and Q


def rademacher(key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """Entries ±1 with equal probability."""
    return jax.random.rademacher(key, shape, dtype)


def block_size(rows: int, batch: int) -> int:
    """Rows per block when ``rows`` are cut into ⌈rows/batch⌉ blocks of equal size (at most
    ``batch``): every block then runs one compiled program, and a short last one is padded
    by fewer rows than blocks."""
    return -(-rows // -(-rows // batch))


def in_blocks(fn: Callable[[jax.Array], jax.Array], rows: jax.Array, batch: int) -> jax.Array:
    """``fn`` of (k, n) ``rows`` applied at most ``batch`` rows at a time (bounded memory: each
    product keeps its own tangent activations), results stacked on axis 0. The blocks share
    one size (:func:`block_size`), the last padded with zero rows whose results are dropped:
    one compilation, where a short last block would cost another."""
    k = rows.shape[0]
    size = block_size(k, batch)
    padded = jnp.concatenate([rows, jnp.zeros((-k % size, *rows.shape[1:]), rows.dtype)])
    return jnp.concatenate([fn(padded[i:i + size]) for i in range(0, k, size)])[:k]


def _check(name: str, value: int, least: int, why: str) -> None:
    if value < least:
        raise InputError(f"`{name}` (={value}) must be >= {least}{why}", param=name)


def hutchinson_trace(
    problem: HessianProblem,
    *,
    num_samples: int = 100,
    batch: int = 10,
    seed: int = 0,
) -> TraceEstimate:
    """Hutchinson estimate of tr H with ``num_samples`` Rademacher probes, ``batch`` at a time.

    ``stderr`` is the sample standard deviation of the S values zᵀHz over √S: an estimate of the
    estimator's standard deviation (its square is unbiased for the variance).

    Probes run side by side (vmapped), each with its own tangent activations: a few at a time
    keeps those in cache (on a 10-64-64-1 MLP with 2,000 samples, 10 at a time cost half as much
    per probe as 50), and memory grows with ``batch``.
    """
    _check("num_samples", num_samples, 2, " (for a standard error)")
    _check("batch", batch, 1, "")
    n = problem.num_params
    batch = min(batch, num_samples)
    keys = jax.random.split(jax.random.key(seed), -(-num_samples // batch))
    samples = []
    for key in keys:
        probes = rademacher(key, (batch, n), problem.params.dtype)
        forms = problem.quadratic_forms(probes)
        samples.append(np.asarray(forms))
    samples = np.concatenate(samples)[:num_samples].astype(np.float64)
    stderr = float(np.std(samples, ddof=1) / np.sqrt(num_samples))
    return TraceEstimate(float(np.mean(samples)), stderr, samples, "hutchinson", num_samples)


def hutchpp_trace(
    problem: HessianProblem,
    *,
    num_matvecs: int = 100,
    batch: int = 10,
    seed: int = 0,
) -> TraceEstimate:
    """Hutch++ estimate of tr H from ``num_matvecs`` = m products with H (module docstring):
    k = ⌊m/3⌋ Hessian-vector products for the sketch H S, k quadratic forms for tr(QᵀHQ), and
    r = m − 2k Rademacher probes of the residual P H P; ``batch`` products at a time.

    ``stderr`` is the residual part's sample standard error, std(gᵀPHPg)/√r: the low-rank part
    is exact given Q, so it measures the estimate's spread over the probes G for this sketch.
    Because the estimate is unbiased given any sketch (E[estimate | S] = tr H), its variance is
    E_S[Var(estimate | S)] and ``stderr²`` is an unbiased estimate of it; the spread from one
    sketch to the next enters only through that average. For a matrix of rank ≤ k it is 0 up
    to rounding (the estimate is exact).

    Memory: the sketch, Q and HQ hold 3·k·n numbers besides one block's products.
    """
    _check("num_matvecs", num_matvecs, 4,
           " (Hutch++: a third for the sketch, a third for its trace, and at least two "
           "residual probes for a standard error)")
    _check("batch", batch, 1, "")
    n, dtype = problem.num_params, problem.params.dtype
    k = min(num_matvecs // 3, n)
    r = num_matvecs - 2 * k
    sketch_key, residual_key = jax.random.split(jax.random.key(seed))
    sketch = rademacher(sketch_key, (k, n), dtype)
    q = _orthonormal_rows(in_blocks(problem.hvps, sketch, batch))
    low_rank = float(np.sum(np.asarray(in_blocks(problem.quadratic_forms, q, batch),
                                       np.float64)))
    projected = _projected_probes(residual_key, q, r)
    samples = np.asarray(in_blocks(problem.quadratic_forms, projected, batch), np.float64)
    stderr = float(np.std(samples, ddof=1) / np.sqrt(r))
    return TraceEstimate(low_rank + float(np.mean(samples)), stderr, samples, "hutch++",
                         2 * k + r, low_rank, k)


@jax.jit
def _orthonormal_rows(rows: jax.Array) -> jax.Array:
    """(k, n) → Q (k, n): orthonormal rows spanning the same space (reduced QR of rowsᵀ)."""
    return jnp.linalg.qr(rows.T, mode="reduced")[0].T


@functools.partial(jax.jit, static_argnums=(2,))
def _projected_probes(key: jax.Array, q: jax.Array, count: int) -> jax.Array:
    """``count`` Rademacher probes g projected off Q's rows: P g (gᵀPHPg = (Pg)ᵀ H (Pg))."""
    probes = rademacher(key, (count, q.shape[1]), q.dtype)
    return probes - (probes @ q.T) @ q


def estimate_trace(
    problem: HessianProblem,
    *,
    method: str = "hutchinson",
    num_matvecs: int = 100,
    batch: int = 10,
    seed: int = 0,
) -> TraceEstimate:
    """tr H by ``method`` (``"hutchinson"`` or ``"hutch++"``) from ``num_matvecs`` products
    with H: Hutchinson's probes, or Hutch++'s m."""
    if method not in TRACE_METHODS:
        raise InputError(f"`method` (={method!r}) must be one of {', '.join(TRACE_METHODS)}",
                         param="method")
    if method == "hutchinson":
        return hutchinson_trace(problem, num_samples=num_matvecs, batch=batch, seed=seed)
    return hutchpp_trace(problem, num_matvecs=num_matvecs, batch=batch, seed=seed)
