"""Eigenvalue spectral density by stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao,
"An Investigation into Neural Network Optimization via Hessian Eigenvalue Density", ICML 2019).

The density φ(t) = (1/n) Σ_i δ(t − λ_i) is smoothed with a Gaussian g_σ and estimated from
n_v random unit probes v: m Lanczos steps from v give T = Y diag(θ) Yᵀ, and Gauss quadrature
with nodes θ_j and weights τ_j = Y_{0j}² integrates any f with vᵀ f(H) v ≈ Σ_j τ_j f(θ_j)
(exactly for polynomials of degree < 2m). Since E[vᵀ f(H) v] = tr f(H)/n,

.. math::

    \\hat\\phi_\\sigma(t) = \\frac{1}{n_v} \\sum_{v} \\sum_{j=1}^{m} \\tau_j^{(v)}\\,
    g_\\sigma(t - \\theta_j^{(v)}), \\qquad
    g_\\sigma(x) = \\frac{e^{-x^2 / 2\\sigma^2}}{\\sigma \\sqrt{2\\pi}}.

Optional deflation (a variance reduction, not in Ghorbani et al.): a Hessian's few outlier
eigenvalues dominate the probe-to-probe variance. Given k converged eigenpairs (λ_i, u_i), they
enter exactly with weight 1/n each, and the probes run on P H P restricted to the complement
(P = I − U Uᵀ) with total weight (n − k)/n:

.. math::

    \\hat\\phi_\\sigma(t) = \\frac{1}{n} \\sum_{i=1}^{k} g_\\sigma(t - \\lambda_i)
    + \\frac{n-k}{n} \\cdot \\frac{1}{n_v} \\sum_v \\sum_j \\tau_j^{(v)} g_\\sigma(t - \\theta_j^{(v)}).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.curvature.eigen import Eigenpairs
from landscape.curvature.host_loop import settled
from landscape.curvature.lanczos import (
    check_basis_fits,
    lanczos_init,
    lanczos_tridiagonal,
    lanczos_update,
)
from landscape.curvature.linear import LinearOperator
from landscape.curvature.operator import HessianProblem

# σ = SIGMA_REL × spectrum width: σ² = 1e-5 on the spectrum rescaled to [-1, 1], the smoothing
# scale PyHessian's density plots use (σ² = 1e-5, scaled with the width).
SIGMA_REL = float(np.sqrt(1e-5) / 2)
_PAD_SIGMAS = 5.0  # the grid extends 5σ beyond the extreme nodes


class SpectralDensity(NamedTuple):
    grid: np.ndarray  # (num_bins,) eigenvalue axis, ascending
    density: np.ndarray  # (num_bins,) ∫ density dλ = 1 (trapezoid rule on ``grid``)
    nodes: np.ndarray  # (N,) quadrature nodes: Ritz values (and deflated eigenvalues)
    weights: np.ndarray  # (N,) their weights, summing to 1
    sigma: float  # Gaussian smoothing width

    def moment(self, order: int) -> float:
        """∫ λ^order φ_σ(λ) dλ on the grid."""
        return _trapezoid(self.grid**order * self.density, self.grid)


@functools.partial(jax.jit, static_argnames=("matvec", "num_steps"))
def _tridiagonals(operands, deflated, probes, keys, *, matvec, num_steps):
    """Lanczos coefficients (alphas, betas), each (num_probes, num_steps), for a batch of probes."""

    def project(x):
        return x - deflated.T @ (deflated @ x)

    def projected(v, ops):
        return project(matvec(project(v), ops))

    def one(v0, key):
        state = lanczos_tridiagonal(projected, operands, project(v0), num_steps, key)
        return state.alphas, state.betas

    return jax.vmap(one)(probes, keys)


@functools.partial(jax.jit, donate_argnums=(1,))
def _update_all(j, states, aqs, deflated, keys):
    """Step ``j`` of every probe's Lanczos run given A Q (vmapped), for the host-driven loop;
    and the next basis vectors, projected."""
    project = lambda x: x - deflated.T @ (deflated @ x)  # noqa: E731
    states = jax.vmap(lambda state, aq, key: lanczos_update(j, state, project(aq), key))(
        states, aqs, keys)
    rows = states.basis[:, jnp.minimum(j + 1, states.basis.shape[1] - 1)]
    return states, jax.vmap(project)(rows)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _start_all(probes, deflated, *, num_steps):
    project = lambda x: x - deflated.T @ (deflated @ x)  # noqa: E731
    states = jax.vmap(lambda v0: lanczos_init(project(v0), num_steps))(probes)
    return states, jax.vmap(project)(states.basis[:, 0])


def _tridiagonals_on_host(op: LinearOperator, deflated, probes, keys, *, num_steps):
    """:func:`_tridiagonals` with the loop over steps on the host, each step's products
    A Q from ``op.apply_many`` (streamed data; convolutions on the CPU: see
    :mod:`landscape.curvature.linear`)."""
    states, qs = _start_all(probes, deflated, num_steps=num_steps)
    for j in range(num_steps):
        states, qs = _update_all(jnp.asarray(j, jnp.int32), states, op.apply_many(qs),
                                 deflated, keys)
        qs = settled(qs)  # see host_loop.settled
    return states.alphas, states.betas


def _gauss_quadrature(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes θ (eigenvalues of T) and weights τ = (first components of its eigenvectors)²,
    on the host (the matrices are small; see ``ritz_values`` on batched eigh in jit)."""
    m = alphas.shape[-1]
    t = np.zeros((*alphas.shape, m))
    index = np.arange(m)
    t[..., index, index] = alphas
    t[..., index[:-1], index[1:]] = betas[..., :-1]
    t[..., index[1:], index[:-1]] = betas[..., :-1]
    theta, y = np.linalg.eigh(t)
    return theta, y[..., 0, :] ** 2


def slq_nodes(
    problem: HessianProblem,
    *,
    num_probes: int = 10,
    num_steps: int = 80,
    deflate: Eigenpairs | None = None,
    batch: int = 10,
    seed: int = 0,
    on_batch: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights of the spectral measure (flat (N,) arrays, weights sum to 1).

    ``deflate``: eigenpairs with vectors (e.g. ``hessian_eigenpairs(..., return_vectors=True)
    .top``) taken out exactly; see the module docstring. ``batch`` probes run side by side
    (each holds a ``num_steps`` × n basis). ``on_batch(count)`` after each batch, with the
    number of probes it finished (progress bars).
    """
    n = problem.num_params
    k = 0 if deflate is None else len(deflate.values)
    if deflate is not None and deflate.vectors is None:
        raise InputError("`deflate` needs eigenvectors (compute them with return_vectors=True)")
    if num_probes < 1:
        raise InputError(f"`num_probes` (={num_probes}) must be >= 1")
    if not 1 <= num_steps <= n - k:
        raise InputError(
            f"`num_steps` (={num_steps}) must be between 1 and the number of parameters "
            f"less the deflated eigenpairs ({n} - {k})"
        )
    if batch < 1:
        raise InputError(f"`batch` (={batch}) must be >= 1")
    dtype = problem.params.dtype
    deflated = jnp.zeros((0, n), dtype) if k == 0 else jnp.asarray(deflate.vectors, dtype)
    batch = min(batch, num_probes)
    check_basis_fits(num_steps, n, dtype, count=batch, param="num_steps")
    op = problem.operator
    nodes, weights = [], []
    key = jax.random.key(seed)
    for start in range(0, num_probes, batch):
        key, probe_key, restart_key = jax.random.split(key, 3)
        # placed as the parameters, as the host loop's updates return them: one program each
        probes = jax.device_put(jax.random.normal(probe_key, (batch, n), dtype),
                                problem.params.sharding)
        keys = jax.random.split(restart_key, batch)
        if op.on_host:
            alphas, betas = _tridiagonals_on_host(op, deflated, probes, keys,
                                                  num_steps=num_steps)
        else:
            alphas, betas = _tridiagonals(op.operands, deflated, probes, keys,
                                          matvec=op.matvec, num_steps=num_steps)
        take = min(batch, num_probes - start)
        theta, tau = _gauss_quadrature(np.asarray(alphas, np.float64)[:take],
                                       np.asarray(betas, np.float64)[:take])
        nodes.append(theta.ravel())
        weights.append(tau.ravel())
        if on_batch is not None:
            on_batch(take)
    nodes = np.concatenate(nodes)
    weights = np.concatenate(weights) * (n - k) / (n * num_probes)
    if k:
        nodes = np.concatenate([np.asarray(deflate.values, np.float64), nodes])
        weights = np.concatenate([np.full(k, 1.0 / n), weights])
    return nodes, weights / weights.sum()  # the sum is 1 up to rounding


def gaussian_density(
    nodes: np.ndarray, weights: np.ndarray, *, sigma: float | None = None, num_bins: int = 10_000
) -> SpectralDensity:
    """Σ_j w_j g_σ(t − θ_j) on a grid spanning the nodes ± 5σ, normalized to integrate to 1.

    Default ``sigma``: ``SIGMA_REL`` × the width of the nodes' range.
    """
    nodes = np.asarray(nodes, np.float64)
    weights = np.asarray(weights, np.float64)
    if num_bins < 2:
        raise InputError(f"`num_bins` (={num_bins}) must be >= 2")
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        width = hi - lo if hi > lo else max(abs(hi), 1.0)
        sigma = SIGMA_REL * width
    if not sigma > 0:
        raise InputError(f"`sigma` (={sigma}) must be > 0")
    grid = np.linspace(lo - _PAD_SIGMAS * sigma, hi + _PAD_SIGMAS * sigma, num_bins)
    density = np.zeros(num_bins)
    for start in range(0, nodes.size, 256):  # bounded memory: (256, num_bins) at a time
        theta, w = nodes[start : start + 256, None], weights[start : start + 256, None]
        density += np.sum(w * np.exp(-0.5 * ((grid - theta) / sigma) ** 2), axis=0)
    density /= sigma * np.sqrt(2 * np.pi)
    density /= _trapezoid(density, grid)  # the 5σ truncation and binning lose ~1e-6
    return SpectralDensity(grid, density, nodes, weights, float(sigma))


def slq_density(
    problem: HessianProblem,
    *,
    num_probes: int = 10,
    num_steps: int = 80,
    deflate: Eigenpairs | None = None,
    sigma: float | None = None,
    num_bins: int = 10_000,
    seed: int = 0,
    batch: int = 10,
    on_batch: Callable[[int], object] | None = None,
) -> SpectralDensity:
    """The Hessian's smoothed eigenvalue density by stochastic Lanczos quadrature.

    ``num_probes`` Gaussian probes, ``num_steps`` Lanczos steps each (moments of the density up
    to order 2·num_steps − 1 are exact per probe); ``deflate``, ``sigma``: see the module
    docstring and :func:`gaussian_density`; ``batch``, ``on_batch`` as in :func:`slq_nodes`.
    """
    nodes, weights = slq_nodes(problem, num_probes=num_probes, num_steps=num_steps,
                               deflate=deflate, seed=seed, batch=batch, on_batch=on_batch)
    return gaussian_density(nodes, weights, sigma=sigma, num_bins=num_bins)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """∫ y dx by the trapezoid rule (``np.trapezoid`` needs numpy >= 2)."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)
