"""Extreme eigenpairs of a symmetric operator by Lanczos (on the device or stepped from the
host), the Hessian's, and the plane its top eigenvectors span."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.directions import Plane, normalize_direction
from landscape.errors import InputError
from landscape.curvature.host_loop import extremes_on_host
from landscape.curvature.lanczos import STOP_RULES, check_basis_fits, extremes_on_device
from landscape.curvature.linear import LinearOperator, Matvec
from landscape.curvature.operator import HessianProblem, hessian_problem
from landscape.workload import Params, State, Workload


class Eigenpairs(NamedTuple):
    """Converged (or best) Ritz pairs at one end of the spectrum."""

    values: np.ndarray  # (k,): top: descending; bottom: ascending
    vectors: jax.Array | None  # (k, n) unit vectors, or None when not requested
    residuals: np.ndarray  # (k,): ‖A x − θ x‖, a bound on the distance to an eigenvalue
    converged: np.ndarray  # (k,) bool: the stopping rule passed for this pair


class ExtremeEigenpairs(NamedTuple):
    """The top-k and bottom-k eigenpairs from one Lanczos run."""

    top: Eigenpairs
    bottom: Eigenpairs
    iterations: int  # matrix-vector products used


def lanczos_extremes(
    matvec: Matvec | LinearOperator,
    operands: Any,
    v0: jax.Array,
    *,
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    check_every: int = 1,
    min_steps: int = 1,
    key: jax.Array | None = None,
    return_vectors: bool = False,
    loop: str = "auto",
) -> ExtremeEigenpairs:
    """The ``top_k`` largest and ``bottom_k`` smallest eigenpairs of a symmetric operator.

    Lanczos (full reorthogonalization) from ``v0`` until every wanted Ritz pair passes the
    ``stop`` rule, or until ``max_iter`` steps (capped at n, where the Krylov space is the whole
    space and the pairs are exact). With tolerance b_i = max(tol·|θ_i|, atol):

    - ``"residual"`` (default): ‖A x_i − θ_i x_i‖ = β_{m-1} |Y_{m-1,i}| ≤ b_i, so each θ_i is
      within b_i of an eigenvalue of A (a guarantee);
    - ``"relative-change"``: |θ_i^{(m)} − θ_i^{(m')}| ≤ b_i between two successive tests (m' =
      m − ``check_every``), or the residual test: PyHessian's rule (a heuristic; Lanczos Ritz
      values converge faster than power iteration's, so the last change overstates the error).

    The whole loop, tests included, runs on the device in one compiled call, or from the host
    (``loop``). The basis buffer holds ``max_iter`` × n numbers (refused up front when that
    would not fit in memory). Eigenvalues near zero relative to the spectrum converge
    slowly under a relative ``tol``; ``atol`` gives them an absolute floor.

    Args:
      matvec, operands: the operator, ``matvec(v, operands)``; ``matvec`` is a static argument
        of the compiled loop (pass the same object to reuse the compilation). Or a
        :class:`~landscape.curvature.linear.LinearOperator` (``operands`` None), which says itself
        whether it steps from the host (a Hessian's ``problem.operator``).
      check_every: steps between convergence tests (each is an eigendecomposition of the padded
        T, at most ``max_iter`` square).
      min_steps: no test before this many steps. For warm starts: from a vector close to an
        eigenvector the first Ritz pair already has a tiny residual, and the test would accept
        that eigenvalue before the Krylov space has seen a larger one (the residual rule bounds
        the distance to *some* eigenvalue, not to the extreme one).
      key: seeds restart vectors after a breakdown (default: key 0).
      loop: for a ``matvec``: ``"device"`` (the whole loop in one compiled call), ``"host"``
        (one compiled call per step, tests every ``check_every`` steps) or ``"auto"``: the host
        where XLA would run the operator slowly inside a compiled loop
        (:mod:`landscape.curvature.linear`).
    """
    n = int(v0.size)
    for name, k in (("top_k", top_k), ("bottom_k", bottom_k)):
        if k < 0:
            raise InputError(f"`{name}` (={k}) must be >= 0")
    if top_k + bottom_k < 1:
        raise InputError("ask for at least one eigenvalue: `top_k` + `bottom_k` must be >= 1")
    if top_k + bottom_k > n:
        raise InputError(
            f"`top_k` + `bottom_k` (={top_k + bottom_k}) must be <= the operator size ({n})"
        )
    if not tol >= 0 or not atol >= 0 or tol + atol == 0:
        raise InputError(f"`tol` (={tol}) and `atol` (={atol}) must be >= 0, not both 0")
    if stop not in STOP_RULES:
        raise InputError(f"`stop` (={stop!r}) must be one of {', '.join(STOP_RULES)}")
    if max_iter < top_k + bottom_k:
        raise InputError(
            f"`max_iter` (={max_iter}) must be >= top_k + bottom_k ({top_k + bottom_k})"
        )
    if check_every < 1:
        raise InputError(f"`check_every` (={check_every}) must be >= 1")
    if min_steps < 1:
        raise InputError(f"`min_steps` (={min_steps}) must be >= 1")
    op = (matvec if isinstance(matvec, LinearOperator)
          else LinearOperator.from_matvec(matvec, operands, v0, loop=loop))
    num_steps = min(max_iter, n)
    check_basis_fits(num_steps, n, v0.dtype, param="max_iter")
    key = jax.random.key(0) if key is None else key
    options = dict(num_steps=num_steps, top_k=top_k, bottom_k=bottom_k, stop=stop,
                   check_every=check_every, return_vectors=return_vectors)
    first = jnp.asarray(min(min_steps, max_iter, n), jnp.int32)
    if op.on_host:
        out = extremes_on_host(op, v0, key, tol, atol, first, **options)
    else:
        out = extremes_on_device(v0, op.operands, key, tol, atol, first, matvec=op.matvec,
                                 **options)
    count, values, residuals, converged, vectors = out
    count, values, residuals, converged = jax.device_get((count, values, residuals, converged))
    values, residuals = values.astype(np.float64), residuals.astype(np.float64)

    def end(sl: slice) -> Eigenpairs:
        return Eigenpairs(values[sl], None if vectors is None else vectors[sl], residuals[sl],
                          converged[sl])

    return ExtremeEigenpairs(end(slice(0, top_k)), end(slice(top_k, None)), int(count))



def hessian_eigenpairs(
    problem: HessianProblem,
    *,
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    seed: int = 0,
    return_vectors: bool = False,
) -> ExtremeEigenpairs:
    """Top-k (largest algebraic) and bottom-k (smallest algebraic) eigenpairs of the Hessian of
    the full-dataset mean loss (or of the problem's GGN, Fisher or block of one: whatever
    ``problem`` multiplies by), by Lanczos with full reorthogonalization from a Gaussian start.

    Unlike power iteration (PyHessian) this finds the largest *algebraic* eigenvalues and the
    most negative ones in the same run, without shifts (Li et al. shift by 0.51·λ_max and rerun).
    See :func:`landscape.curvature.lanczos.lanczos_extremes` for ``tol``, ``atol``, ``stop``
    (``"residual"``: each value within ``tol`` of an eigenvalue, guaranteed; ``"relative-change"``:
    PyHessian's rule, fewer HVPs, no guarantee) and ``max_iter``.
    Vectors, when returned, are flat (k, n); ``problem.unravel`` turns one into a params pytree.
    """
    v0, restart_key = _start_vector(seed, (problem.num_params,), problem.params.dtype)
    v0 = jax.device_put(v0, problem.params.sharding)  # one placement, one compilation
    return lanczos_extremes(
        problem.operator, None, v0, top_k=top_k, bottom_k=bottom_k, tol=tol, atol=atol,
        stop=stop, max_iter=max_iter, key=restart_key, return_vectors=return_vectors,
    )


@functools.partial(jax.jit, static_argnums=(1, 2))
def _start_vector(seed: int, shape: tuple[int, ...], dtype) -> tuple[jax.Array, jax.Array]:
    """A Gaussian start vector and a key for restart vectors (one compiled call)."""
    start_key, restart_key = jax.random.split(jax.random.key(seed))
    return jax.random.normal(start_key, shape, dtype), restart_key


def _fix_sign(v: jax.Array) -> jax.Array:
    """Eigenvectors are defined up to sign: make the largest-magnitude entry positive, so the
    same model gives the same plane on every run."""
    return v * jnp.sign(v[jnp.argmax(jnp.abs(v))])


def hessian_plane(
    workload: Workload,
    params: Params,
    state: State,
    *,
    dims: int = 2,
    split: str = "train",
    normalization: str = "none",
    ignore: str = "none",
    tol: float = 1e-4,
    max_iter: int = 200,
    seed: int = 0,
    problem: HessianProblem | None = None,
) -> Plane:
    """A plane through ``params`` spanned by the Hessian's top-2 eigenvectors (top-1 if
    ``dims=1``), unit vectors in the flat parameter space, unflattened to the params pytree.

    ``d1`` belongs to λ₁ ≥ ``d2``'s λ₂ (largest algebraic); each is signed so that its
    largest-magnitude entry is positive. With ``normalization``/``ignore`` other than "none",
    the eigenvectors are rescaled as random directions are (they are then no longer
    eigenvectors); with ``ignore="none"`` alone, 1-D leaves would copy the weights (Li et al.'s
    rule), so leave both at "none" to keep true eigenvectors.

    ``problem``: the Hessian at ``params`` if already built (its compiled loops are reused);
    ``workload``, ``state`` and ``split`` then go unused.

    Raises:
      InputError: if the eigenvectors did not converge to ``tol`` within ``max_iter`` steps.
    """
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2")
    problem = problem or hessian_problem(workload, params, state, split=split)
    pairs = hessian_eigenpairs(problem, top_k=dims, tol=tol, max_iter=max_iter, seed=seed,
                               return_vectors=True)
    if not pairs.top.converged.all():
        raise InputError(
            f"the top-{dims} Hessian eigenvectors did not converge to `tol` (={tol}) in "
            f"{pairs.iterations} Lanczos steps (residuals {pairs.top.residuals.tolist()}); "
            "raise `max_iter` or `tol`"
        )
    directions = []
    for vector in pairs.top.vectors:
        direction = problem.unravel(_fix_sign(vector))
        if normalization != "none" or ignore != "none":
            direction = normalize_direction(direction, params, normalization=normalization,
                                            ignore=ignore)
        directions.append(jax.tree.map(np.asarray, direction))
    return Plane(
        jax.tree.map(np.asarray, params), directions[0], directions[1] if dims == 2 else None,
        kind="hessian", normalization=normalization, ignore=ignore, seed=seed,
    )
