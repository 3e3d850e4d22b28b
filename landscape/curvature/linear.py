"""A symmetric linear operator on flat vectors, as the Lanczos algorithms take it.

An operator is applied one of two ways:

- from the host, ``apply(v)`` / ``apply_many(V)``: whatever that takes (a Hessian of a data set
  sums one compiled call per batch, see :mod:`landscape.curvature.operator`), and the algorithm
  steps from the host, one compiled update per step;
- inside a compiled loop, ``matvec(v, operands)`` (jit- and vmap-able, ``operands`` arrays
  passed through jit): a whole Lanczos run is one program, with no host round trip per step.

:attr:`LinearOperator.on_host` says which the algorithms use. XLA:CPU runs a convolution's
gradient 20–40× slower inside any compiled loop than outside one (jax-ml/jax#12868: the loop
body keeps layouts the fast convolution kernels do not take; ``digits-cnn``'s HVP 0.12 s alone,
4.4 s per step inside a ``fori_loop``), so such operators step from the host
(:func:`slow_in_compiled_loops`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError

Matvec = Callable[[jax.Array, Any], jax.Array]
"""``matvec(v (n,), operands) -> (n,)``: a symmetric linear operator; ``operands`` (arrays) are
passed through jit as arguments."""

LOOPS = ("auto", "device", "host")


@dataclasses.dataclass(frozen=True, eq=False)
class LinearOperator:
    """A symmetric n × n operator.

    Attributes:
      size, dtype: n and the vectors' dtype.
      apply: ``A v`` for v (n,), called from the host.
      apply_many: ``A V`` for a (k, n) block of vectors side by side.
      matvec, operands: the jit-able form (None where the operator is only applied from the
        host: data streamed batch by batch).
      on_host: whether the algorithms step from the host (calling ``apply``) rather than run
        compiled loops around ``matvec``.
    """

    size: int
    dtype: Any
    apply: Callable[[jax.Array], jax.Array]
    apply_many: Callable[[jax.Array], jax.Array]
    matvec: Matvec | None = None
    operands: Any = None
    on_host: bool = True

    @classmethod
    def from_matvec(cls, matvec: Matvec, operands: Any, v0: jax.Array, *,
                    loop: str = "auto") -> LinearOperator:
        """The operator ``matvec(·, operands)``; ``loop``: ``"device"``, ``"host"`` or
        ``"auto"`` (the host where :func:`slow_in_compiled_loops`)."""
        if loop not in LOOPS:
            raise InputError(f"`loop` (={loop!r}) must be one of {', '.join(LOOPS)}")
        on_host = loop == "host" or (loop == "auto" and slow_in_compiled_loops(
            matvec, (v0, operands), _devices(v0, operands)))
        return cls(int(v0.size), v0.dtype,
                   apply=lambda v: _apply(v, operands, matvec=matvec),
                   apply_many=lambda vs: _apply_many(vs, operands, matvec=matvec),
                   matvec=matvec, operands=operands, on_host=on_host)


@functools.partial(jax.jit, static_argnames=("matvec",))
def _apply(v, operands, *, matvec):
    return matvec(v, operands)


@functools.partial(jax.jit, static_argnames=("matvec",))
def _apply_many(vs, operands, *, matvec):
    return jax.vmap(lambda v: matvec(v, operands))(vs)


def _devices(*trees: Any) -> list[jax.Device]:
    found = {d for leaf in jax.tree.leaves(trees) if isinstance(leaf, jax.Array)
             for d in leaf.devices()}
    return list(found) or jax.local_devices()


_CONVOLUTIONS = ("conv_general_dilated",)


def has_convolution(jaxpr: Any) -> bool:
    """Whether a convolution appears anywhere in ``jaxpr`` (inner jaxprs included)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _CONVOLUTIONS:
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns") and has_convolution(sub):
                    return True
    return False


def slow_in_compiled_loops(fn: Callable, args: tuple, devices: Sequence[jax.Device]) -> bool:
    """Whether ``fn(*args)`` should be looped over from the host rather than inside a compiled
    loop: it contains a convolution and runs on the CPU (jax-ml/jax#12868). Traced once per
    function and argument layout."""
    if {d.platform for d in devices} != {"cpu"}:
        return False
    leaves, treedef = jax.tree.flatten(args)
    if not all(hasattr(leaf, "shape") for leaf in leaves):
        return False
    shapes = tuple((tuple(np.shape(leaf)), jnp.result_type(leaf)) for leaf in leaves)
    return _has_convolution_cached(fn, treedef, shapes)


@functools.lru_cache(maxsize=64)
def _has_convolution_cached(fn: Callable, treedef: Any, shapes: tuple) -> bool:
    args = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in shapes])
    return has_convolution(jax.make_jaxpr(fn)(*args).jaxpr)
