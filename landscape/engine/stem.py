r"""The first layer of a loss, found in its jaxpr, shared by every point of a plane.

A network's first layer is linear in its kernel: for a dense or convolutional layer ``f``,

.. math::

    f(x, W + αD_1 + βD_2) = f(x, W) + α f(x, D_1) + β f(x, D_2),

so the three products on the right, computed once per data batch, serve every grid point (α, β);
each point only combines them. The result equals the plain forward pass up to float rounding.

Nothing is declared by the model: :func:`split_at_stem` traces the loss to a jaxpr (with jit
disabled, so the layers lie at its top level) and looks for a ``dot_general`` or
``conv_general_dilated`` whose one operand is a parameter leaf (possibly reshaped, transposed or
cast) and whose other operand depends on no parameter — the data's first contact with the
weights. Of several, the one with the most multiply-adds is taken. The jaxpr is then cut in two:
``products`` (the data's path into that op, applied to one kernel) and ``finish`` (everything
else, with the op's output as an input).

**When sharing pays, per backend** (:func:`shares_first_layer`, :func:`first_layer_plan`). Per
output element of the layer and per grid point, computing the layer costs ``2·fan_in`` FLOPs;
combining ``k`` kept products (3 on a plane, 2 on a line) costs ``2(k-1)`` FLOPs and reading
``k`` values of ``b`` bytes. With the device's FLOP/s ``F`` and memory bandwidth ``B``
(:func:`landscape.engine.sizing.device_numbers`), the products are shared only where

.. math::

    \frac{2\,\mathrm{fan\_in}}{F} > \frac{2(k-1)}{F} + \frac{k\,b}{B},

and kept on the devices for the whole scan only where they also fit the memory budget (else
they are computed once per batch and chunk). On the CPU (``F/B`` ≈ 0.2 FLOP/byte: XLA:CPU's
first convolutions are slow) a plane shares any layer of 4 or more inputs per output, as
measured there (a 1-input dense stem is 5-15 % slower than the plain product). On an H100
(``F/B`` ≈ 20) it takes about 120: CIFAR-10's 3×3×3 first convolution (fan-in 27) is recomputed
by every point rather than re-reading 9.16 GiB of products to save about a millisecond.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore

from landscape.engine.sizing import DeviceNumbers

PyTree = Any

# Ops through which a kernel stays a linear function of one parameter leaf alone.
LINEAR_IN_ONE = frozenset({
    "reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims",
    "convert_element_type", "copy", "copy_p",
})
LAYERS = ("dot_general", "conv_general_dilated")


@dataclasses.dataclass(frozen=True, eq=False)
class StemSplit:
    """A loss cut at its first layer, for one batch shape.

    Attributes:
      leaf: index of the layer's kernel among the flattened parameter leaves.
      fan_in: multiply-adds per output element of the layer (its contraction size).
      products: ``products(kernel, state, batch) -> layer output`` for that kernel leaf.
      finish: ``finish(params, state, batch, output) -> loss(params, state, batch)`` given the
        layer's output.
      output: the layer's output (shape and dtype) for one batch.
    """

    leaf: int
    fan_in: int
    products: Callable[[jax.Array, PyTree, PyTree], jax.Array]
    finish: Callable[[PyTree, PyTree, PyTree, jax.Array], Any]
    output: jax.ShapeDtypeStruct


def shares_first_layer(split: StemSplit, numbers: DeviceNumbers, *, products: int = 3) -> bool:
    """Whether combining ``products`` kept outputs of the layer is faster than computing it, on
    a device of these ``numbers`` (the rule in the module's docstring)."""
    itemsize = np.dtype(split.output.dtype).itemsize
    compute = 2 * split.fan_in / numbers.flops
    combine = 2 * (products - 1) / numbers.flops + products * itemsize / numbers.bandwidth
    return compute > combine


def first_layer_plan(split: StemSplit | None, numbers: DeviceNumbers, *, products: int,
                     nbytes: int, budget: int) -> str:
    """What to do with the first layer's products on a device of these ``numbers``:
    ``"kept"`` (computed once, kept for the whole scan: they pay and their ``nbytes`` fit the
    ``budget``), ``"per batch"`` (they pay but do not fit: computed once per batch and chunk)
    or ``"none"`` (no layer, or recomputing it per point is cheaper)."""
    if split is None or not shares_first_layer(split, numbers, products=products):
        return "none"
    return "kept" if nbytes <= budget else "per batch"


def split_at_stem(loss: Callable, params: PyTree, state: PyTree, batch: PyTree) -> StemSplit | None:
    """``loss(params, state, batch)`` cut at its first layer, or None where there is none (no
    dense/conv op meets the data first, or the jaxpr has side effects). Arguments may be arrays
    or ``jax.ShapeDtypeStruct``s of the shapes the parts will be called with."""
    with jax.disable_jit():
        closed, out_shape = jax.make_jaxpr(loss, return_shape=True)(params, state, batch)
    jaxpr = closed.jaxpr
    if jaxpr.effects:
        return None
    num_params = len(jax.tree.leaves(params))
    num_state = len(jax.tree.leaves(state))
    param_vars = jaxpr.invars[:num_params]
    found = _first_layer(jaxpr, param_vars)
    if found is None:
        return None
    layer, leaf, fan_in = found
    output = layer.outvars[0]
    out_tree = jax.tree.structure(out_shape)
    state_vars = jaxpr.invars[num_params:num_params + num_state]
    batch_vars = jaxpr.invars[num_params + num_state:]

    product_eqns = _live(jaxpr.eqns[: jaxpr.eqns.index(layer) + 1], [output])
    product_jaxpr = _new_jaxpr(jaxpr, [param_vars[leaf], *state_vars, *batch_vars], [output],
                               product_eqns)
    finish_eqns = _live([eqn for eqn in jaxpr.eqns if eqn is not layer], jaxpr.outvars)
    finish_jaxpr = _new_jaxpr(jaxpr, [*jaxpr.invars, output], jaxpr.outvars, finish_eqns)
    consts = closed.consts

    def products(kernel: jax.Array, state: PyTree, batch: PyTree) -> jax.Array:
        args = [kernel, *jax.tree.leaves(state), *jax.tree.leaves(batch)]
        return jax.core.eval_jaxpr(product_jaxpr, consts, *args)[0]

    def finish(params: PyTree, state: PyTree, batch: PyTree, pre: jax.Array) -> Any:
        args = [*jax.tree.leaves(params), *jax.tree.leaves(state), *jax.tree.leaves(batch), pre]
        return jax.tree.unflatten(out_tree, jax.core.eval_jaxpr(finish_jaxpr, consts, *args))

    aval = output.aval
    return StemSplit(leaf, fan_in, products, finish, jax.ShapeDtypeStruct(aval.shape, aval.dtype))


def _first_layer(jaxpr, param_vars) -> tuple[Any, int, int] | None:
    """The layer eqn (with the kernel's leaf index and fan-in) that has the most multiply-adds
    among those whose kernel is one parameter leaf and whose input depends on no parameter."""
    depends = set(param_vars)  # vars computed from some parameter
    chain = {var: i for i, var in enumerate(param_vars)}  # vars linear in one leaf alone
    best = None
    for eqn in jaxpr.eqns:
        inputs = [v for v in eqn.invars if isinstance(v, jcore.Var)]
        name = eqn.primitive.name
        if name in LINEAR_IN_ONE and len(inputs) == 1 and inputs[0] in chain:
            chain[eqn.outvars[0]] = chain[inputs[0]]
        if name in LAYERS and all(isinstance(v, jcore.Var) for v in eqn.invars[:2]):
            lhs, rhs = eqn.invars[:2]
            # A conv is taken linear in its kernel (rhs) only; a dot in either operand.
            options = [(rhs, lhs, 1)] + ([(lhs, rhs, 0)] if name == "dot_general" else [])
            for kernel, data, side in options:
                if kernel in chain and data not in depends:
                    fan_in = _fan_in(eqn, side)
                    macs = math.prod(eqn.outvars[0].aval.shape) * fan_in
                    if best is None or macs > best[0]:
                        best = (macs, eqn, chain[kernel], fan_in)
        if any(v in depends for v in inputs):
            depends.update(eqn.outvars)
    return None if best is None else best[1:]


def _fan_in(eqn, side: int) -> int:
    """Multiply-adds per output element of a dot or conv (its contraction size)."""
    kernel_shape = eqn.invars[side].aval.shape
    if eqn.primitive.name == "dot_general":
        (contract_lhs, contract_rhs), _ = eqn.params["dimension_numbers"]
        dims = contract_rhs if side == 1 else contract_lhs
        return int(math.prod(kernel_shape[d] for d in dims))
    out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    return int(math.prod(kernel_shape) // kernel_shape[out_feature_dim])


def _live(eqns: list, outputs: list) -> list:
    """The eqns that ``outputs`` depend on (dead code removed), in order."""
    needed = {v for v in outputs if isinstance(v, jcore.Var)}
    kept = []
    for eqn in reversed(eqns):
        if any(v in needed for v in eqn.outvars if isinstance(v, jcore.Var)):
            kept.append(eqn)
            needed.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    return kept[::-1]


def _new_jaxpr(base, invars: list, outvars: list, eqns: list):
    debug = base.debug_info._replace(arg_names=tuple(f"in{i}" for i in range(len(invars))),
                                     result_paths=tuple(f"out{i}" for i in range(len(outvars))))
    return jcore.Jaxpr(base.constvars, invars, outvars, eqns, jcore.no_effects, debug)


def shapes_of(tree: PyTree) -> PyTree:
    """``tree``'s leaves as ``jax.ShapeDtypeStruct`` (no sharding), to trace with."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)
