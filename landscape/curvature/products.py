"""The three curvature matrices a probe may take, as per-batch products: the Hessian, the
generalized Gauss–Newton matrix (GGN) and the empirical Fisher.

For a batch b of n_b samples with mean loss ℓ_b(w) = L(f_b(w)) — f_b the network's outputs on
the batch, L the mean loss of those outputs — and per-sample losses ℓ_i (gradients g_i):

.. math::

    H_b v = \\frac{d}{dt} \\nabla \\ell_b(w + t v) \\Big|_{t=0}, \\qquad
    G_b v = J^\\top H_L J v, \\qquad
    F_b v = \\frac{1}{n_b} \\sum_{i \\in b} g_i\\, (g_i^\\top v) = \\frac{1}{n_b} J_\\ell^\\top J_\\ell v,

with J = ∂f_b/∂w, H_L = ∂²L/∂f² (for softmax cross-entropy, diag(p) − ppᵀ per sample, over
n_b), and J_ℓ = ∂(ℓ_1 … ℓ_{n_b})/∂w the Jacobian of the per-sample losses. G_b v is a ``jvp``
of the outputs, an HVP of L in output space and a ``vjp`` — no second derivative of the
network, so G is positive semi-definite wherever L is convex in the outputs. F_b v is a
``jvp`` of the per-sample losses (``jax.vmap`` of the batch loss over one-sample batches) and
a ``vjp``: the per-sample gradients are never held. Each ``jvp``/``vjp`` pair shares one
forward pass (``jax.linearize`` and its transpose). The data set's matrix is Σ_b (n_b/N) · the
batch's, as for the Hessian (:mod:`landscape.curvature.operator`), so F = (1/N) Σ_i g_i g_iᵀ.

Quadratic forms (Hutchinson traces) are forward-only: zᵀG_b z = (Jz)ᵀ H_L (Jz), a ``jvp`` and
a second directional derivative of L; zᵀF_b z = mean_i (g_iᵀ z)², one ``jvp``.

The GGN needs the model split into ``outputs(params, state, batch)`` and
``output_loss(outputs, batch)`` with ``output_loss(outputs(params, state, batch), batch)`` the
batch's mean loss: a :class:`~landscape.workload.Workload` gives them as ``apply`` and
``output_loss`` (the built-in workloads do).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from landscape.errors import InputError

OPERATORS = ("hessian", "ggn", "fisher")
OPERATOR_NAMES = {"hessian": "Hessian", "ggn": "Gauss–Newton", "fisher": "empirical Fisher"}

Outputs = Callable[[Any, Any, Any], Any]
"""``outputs(params, state, batch)``: the network's outputs (logits, predictions) on a batch."""
OutputLoss = Callable[[Any, Any], Any]
"""``output_loss(outputs, batch)``: the batch's mean loss of those outputs."""


class CurvatureSpec(NamedTuple):
    """Which curvature matrix, and what it needs beyond the loss (hashable: a key of the
    compiled products' cache, so pass the same functions to share compilations)."""

    kind: str = "hessian"  # one of OPERATORS
    outputs: Outputs | None = None  # the GGN's network part
    output_loss: OutputLoss | None = None  # the GGN's loss of the outputs

    @property
    def name(self) -> str:
        """What to call it in titles: Hessian, Gauss–Newton, empirical Fisher."""
        return OPERATOR_NAMES[self.kind]


HESSIAN = CurvatureSpec()


def curvature_spec(operator: str | CurvatureSpec = "hessian", *, outputs: Outputs | None = None,
                   output_loss: OutputLoss | None = None) -> CurvatureSpec:
    """The checked :class:`CurvatureSpec` of ``operator`` (a name or a spec already made)."""
    if isinstance(operator, CurvatureSpec):
        outputs = operator.outputs if outputs is None else outputs
        output_loss = operator.output_loss if output_loss is None else output_loss
        operator = operator.kind
    if operator not in OPERATORS:
        raise InputError(f"`operator` (={operator!r}) must be one of {', '.join(OPERATORS)}",
                         param="operator")
    if operator == "ggn" and (outputs is None or output_loss is None):
        missing = " and ".join(name for name, fn in (("`outputs`", outputs),
                                                     ("`output_loss`", output_loss))
                               if fn is None)
        raise InputError(f"`operator` (='ggn') needs the model split into outputs and a loss of "
                         f"them: give {missing}", param="operator")
    if operator != "ggn":
        return CurvatureSpec(operator)  # what a GGN would need changes nothing else
    return CurvatureSpec(operator, outputs, output_loss)


def workload_curvature(workload: Any, operator: str | CurvatureSpec = "hessian"
                       ) -> CurvatureSpec:
    """The spec of ``operator`` for a workload (or anything with ``apply(params, state,
    inputs)`` and ``output_loss(outputs, batch)``, e.g. an objective that has them)."""
    if isinstance(operator, CurvatureSpec) and (operator.kind != "ggn"
                                                or operator.outputs is not None):
        return curvature_spec(operator)
    kind = operator.kind if isinstance(operator, CurvatureSpec) else operator
    if kind != "ggn":
        return curvature_spec(kind)
    apply = getattr(workload, "apply", None)
    output_loss = getattr(workload, "output_loss", None)
    if apply is None or output_loss is None:
        name = getattr(workload, "name", "this workload")
        missing = " and ".join(f"`{field}`" for field, fn in (("apply", apply),
                                                              ("output_loss", output_loss))
                               if fn is None)
        raise InputError(f"`operator` (='ggn') needs the model split into outputs and a loss of "
                         f"them: workload `{name}` has no {missing} (Workload fields)",
                         param="operator")
    return CurvatureSpec("ggn", _inputs_outputs(apply), output_loss)


@functools.lru_cache(maxsize=64)
def _inputs_outputs(apply: Callable) -> Outputs:
    """``outputs(params, state, batch) = apply(params, state, batch.inputs)``, one object per
    ``apply`` (so that problems of one workload share compiled products)."""
    return lambda params, state, batch: apply(params, state, batch.inputs)


def _scalar(out: Any) -> jax.Array:
    return out[0] if isinstance(out, tuple) else out


class BatchProducts(NamedTuple):
    """``product(w, v, state, batch)`` → the batch's matrix times v (n,), and
    ``form(w, z, state, batch)`` → zᵀ (batch's matrix) z."""

    product: Callable
    form: Callable


def batch_products(spec: CurvatureSpec, value: Callable, unravel: Callable) -> BatchProducts:
    """The per-batch product and quadratic form of ``spec``'s matrix, for ``value(w, state,
    batch)`` the batch's mean loss at flat ``w`` (``unravel``: flat → params)."""
    if spec.kind == "hessian":
        def product(w, v, state, batch):  # forward-over-reverse
            return jax.jvp(lambda u: jax.grad(value)(u, state, batch), (w,), (v,))[1]

        def form(w, z, state, batch):  # a second directional derivative: forward only
            first = lambda u: jax.jvp(lambda x: value(x, state, batch), (u,), (z,))[1]  # noqa: E731
            return jax.jvp(first, (w,), (z,))[1]

        return BatchProducts(product, form)
    if spec.kind == "ggn":
        outputs, output_loss = spec.outputs, spec.output_loss

        def loss_of(out, batch):
            return _scalar(output_loss(out, batch))

        def product(w, v, state, batch):
            out, jvp = jax.linearize(lambda u: outputs(unravel(u), state, batch), w)
            jv = jvp(v)
            hjv = jax.jvp(lambda o: jax.grad(loss_of)(o, batch), (out,), (jv,))[1]
            return jax.linear_transpose(jvp, w)(hjv)[0]

        def form(w, z, state, batch):
            out, jz = jax.jvp(lambda u: outputs(unravel(u), state, batch), (w,), (z,))
            first = lambda o: jax.jvp(lambda x: loss_of(x, batch), (o,), (jz,))[1]  # noqa: E731
            return jax.jvp(first, (out,), (jz,))[1]

        return BatchProducts(product, form)
    if spec.kind == "fisher":
        def per_sample(u, state, batch):  # (n_b,): the loss of each one-sample batch
            one = lambda sample: value(u, state, jax.tree.map(lambda a: a[None], sample))  # noqa: E731
            return jax.vmap(one)(batch)

        def product(w, v, state, batch):
            losses, jvp = jax.linearize(lambda u: per_sample(u, state, batch), w)
            return jax.linear_transpose(jvp, w)(jvp(v))[0] / losses.shape[0]

        def form(w, z, state, batch):
            return jnp.mean(jax.jvp(lambda u: per_sample(u, state, batch), (w,), (z,))[1] ** 2)

        return BatchProducts(product, form)
    raise InputError(f"`operator` (={spec.kind!r}) must be one of {', '.join(OPERATORS)}",
                     param="operator")
