"""The Hessian of a workload's full-dataset mean loss as a matrix-free operator on flat vectors.

With θ = unravel(w) the parameters as a flat vector w ∈ ℝⁿ (``jax.flatten_util.ravel_pytree``),

.. math::

    L(w) = \\frac{1}{N} \\sum_{i=1}^{N} \\ell(\\theta; x_i, y_i), \\qquad
    H v = \\frac{d}{dt} \\nabla L(w + t v) \\Big|_{t=0}
    \\qquad \\text{(forward-over-reverse: ``jax.jvp`` of ``jax.grad``)},

    v^\\top H v = \\frac{d^2}{dt^2} L(w + t v) \\Big|_{t=0}
    \\qquad \\text{(forward-over-forward: no reverse pass, used for traces)}.

L is the *exact* dataset mean (:func:`landscape.workload.dataset_mean`: batches scanned, a short
last batch weighted by its size). Li et al.'s ``loss-landscape`` sums per-batch HVPs, which scales
every eigenvalue by the number of batches; here the batch size changes nothing but memory.

The data travel as an argument (``problem.data``) of every jitted function rather than being
closed over, so they are never baked into a compiled program as constants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from landscape.workload import Params, State, Workload, dataset_mean

FlatLoss = Callable[[jax.Array, Any], jax.Array]
"""``loss(w (n,), data) -> scalar``: the mean loss at flat parameters ``w``."""

Matvec = Callable[[jax.Array, Any], jax.Array]
"""``matvec(v (n,), operands) -> (n,)``: a symmetric linear operator; ``operands`` (arrays) are
passed through jit as arguments."""


def hvp_of(loss: FlatLoss) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    """``hvp(w, v, data) -> H(w) v`` for ``loss(w, data)``, by ``jax.jvp`` of ``jax.grad``."""

    def hvp(w: jax.Array, v: jax.Array, data: Any) -> jax.Array:
        return jax.jvp(lambda u: jax.grad(loss)(u, data), (w,), (v,))[1]

    return hvp


def quadratic_form_of(loss: FlatLoss) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    """``vhv(w, v, data) -> vᵀ H(w) v`` as a second directional derivative (forward-over-forward:
    cheaper than an HVP followed by a dot product, and it stores no activations for a backward
    pass)."""

    def vhv(w: jax.Array, v: jax.Array, data: Any) -> jax.Array:
        first = lambda u: jax.jvp(lambda z: loss(z, data), (u,), (v,))[1]  # noqa: E731
        return jax.jvp(first, (w,), (v,))[1]

    return vhv


@dataclasses.dataclass(frozen=True, eq=False)
class HessianProblem:
    """The loss, the point and the data that define one Hessian.

    Attributes:
      loss: ``loss(w, data) -> scalar`` full-dataset mean loss at flat parameters ``w``.
      params: (n,) the flat parameters at which the Hessian is taken.
      unravel: flat vector (n,) → params pytree.
      data: ``(state, full batches, short batch)``, the second argument of ``loss``.
      matvec: ``matvec(v, (w, data)) -> H(w) v``.
      vhv: ``vhv(w, v, data) -> vᵀ H(w) v`` (forward-over-forward).

    ``matvec`` and ``vhv`` are made once per problem: jitted algorithms take them as static
    arguments, so repeated calls on one problem compile once.
    """

    loss: FlatLoss
    params: jax.Array
    unravel: Callable[[jax.Array], Params]
    data: Any
    matvec: Matvec
    vhv: Callable[[jax.Array, jax.Array, Any], jax.Array]

    @property
    def num_params(self) -> int:
        return int(self.params.size)

    @property
    def operands(self) -> tuple[jax.Array, Any]:
        """The operands of :attr:`matvec`: ``(w, data)``."""
        return self.params, self.data

    def hvp(self, v: jax.Array) -> jax.Array:
        """``H v`` at :attr:`params` (not jitted: for tests and one-off use)."""
        return self.matvec(v, self.operands)


def hessian_problem(
    workload: Workload,
    params: Params,
    state: State,
    *,
    split: str = "train",
    batch_size: int | None = None,
) -> HessianProblem:
    """The Hessian of ``workload``'s mean ``split`` loss at ``params``.

    ``batch_size`` (default ``workload.batch_size``) bounds memory only: the loss is the exact
    mean over every sample whatever it is. Parameters keep their dtype (use float64 params and
    data under ``jax.enable_x64`` for reference-quality results).
    """
    flat, unravel = ravel_pytree(params)
    full, rest = workload.dataset(split).split_batches(batch_size or workload.batch_size)
    data = jax.device_put((state, full, rest))

    def loss(w: jax.Array, data: Any) -> jax.Array:
        state, full, rest = data
        return dataset_mean(workload.loss, unravel(w), state, full, rest)["loss"]

    hvp = hvp_of(loss)

    def matvec(v: jax.Array, operands: tuple[jax.Array, Any]) -> jax.Array:
        w, data = operands
        return hvp(w, v, data)

    return HessianProblem(loss, jnp.asarray(flat), unravel, data, matvec, quadratic_form_of(loss))
