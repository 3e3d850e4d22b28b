"""A user's model and loss as an :class:`~landscape.objective.Objective` over plain parameters.

What the one-call API accepts:

- ``params`` any pytree, with ``loss_fn(params, batch)`` — or ``loss_fn(params, state, batch)``
  when a ``state`` (untrained model state) is given; its floating-point leaves are the
  parameters, its integer and boolean leaves buffers passed to ``loss_fn`` unperturbed (a
  leaf that is not an array of numbers is refused, by name);
- a Flax NNX module, with ``loss_fn(model, batch)``: split into its ``nnx.Param`` leaves (the
  parameters) and everything else (BatchNorm statistics: state, never perturbed), evaluated in
  evaluation mode (``use_running_average=True, deterministic=True``);
- an Equinox module (when equinox is installed), with ``loss_fn(model, batch)`` (or
  ``loss_fn(model, state, batch)`` with an ``eqx.nn.State``): its inexact arrays are the
  parameters, evaluated in inference mode.

``loss_fn`` returns the batch's mean loss, or ``(mean loss, {name: batch mean})`` for metrics
(accuracy as a fraction). Data: ``(inputs, targets)`` arrays, a :class:`~landscape.Dataset`, or
any re-iterable of batches (:class:`~landscape.batches.Batches`).

The layout of the parameters (which axis of a kernel holds its output filters: filter
normalization's) comes from the framework, :func:`output_axis_of`: Flax's is the last axis,
Equinox's the first; a parameter pytree's cannot be known and counts as Flax's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from landscape.batches import Batches, Dataset, as_data
from landscape.errors import InputError, user_code
from landscape.objective import Objective, Params
from landscape.tree import leaf_path

DEFAULT_BATCH_SIZE = 1024


class _Same:
    """Hashes and compares by identity (and keeps the object alive while a cache holds it)."""

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value


def objective_from(loss_fn: Callable, model: Any, data: Any, *, state: Any = None,
                   test: Any = None, batch_size: int | None = None,
                   name: str | None = None) -> tuple[Objective, Params]:
    """The objective of ``loss_fn`` on ``data`` (and ``test``), and the parameters to scan
    around (see the module docstring for what ``model`` may be)."""
    if not callable(loss_fn):
        raise InputError(f"`loss_fn` must be a function, got {type(loss_fn).__name__}",
                         param="loss_fn")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1):  # 0 was taken for "the default"
        raise InputError(f"`batch_size` (={batch_size!r}) must be a whole number >= 1 (or None: "
                         "chosen for you)", param="batch_size")
    splits = {"train": as_data(data)}
    if test is not None:
        splits["test"] = as_data(test)
    loss, params, state, key = _pure_loss(loss_fn, model, state)
    name = name or getattr(loss_fn, "__name__", "loss")
    size = batch_size or DEFAULT_BATCH_SIZE
    metrics = _metric_names(loss, params, state, splits["train"], size, name)
    return Objective(loss=loss, data=splits, state=state, batch_size=size, metrics=metrics,
                     name=name, key=key), params


def pure_outputs(outputs: Callable, model: Any, state: Any = None) -> Callable:
    """``outputs(model, batch)`` (or ``outputs(params, state, batch)`` with a ``state``), the
    network part of a loss, as ``outputs(params, state, batch)`` over the parameters
    :func:`objective_from` takes from ``model`` (for the Gauss–Newton matrix)."""
    if not callable(outputs):
        raise InputError(f"`outputs` must be a function, got {type(outputs).__name__}",
                         param="outputs")
    pure = _pure_loss(outputs, model, state)[0]
    return lambda params, state, batch: pure(params, state, batch)[0]


def _pure_loss(loss_fn: Callable, model: Any, state: Any):
    """``(loss(params, state, batch) -> (value, metrics), params, state, cache key)``."""
    from flax import nnx

    if isinstance(model, nnx.Module):
        if state is not None:
            raise InputError("`state` is taken from the NNX module itself (its non-Param "
                             "variables); do not pass it", param="state")
        view = nnx.view(model, use_running_average=True, deterministic=True,
                        raise_if_not_found=False)
        graphdef, params, rest = nnx.split(view, nnx.Param, ...)
        params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)

        def loss(params, state, batch):
            return _value_and_metrics(loss_fn(nnx.merge(graphdef, params, state), batch))

        return loss, params, rest, ("nnx", loss_fn, graphdef)
    eqx = _equinox()
    if eqx is not None and isinstance(model, eqx.Module):
        params, static = eqx.partition(eqx.nn.inference_mode(model), eqx.is_inexact_array)
        with_state = state is not None

        def loss(params, state, batch):
            merged = eqx.combine(params, static)
            out = loss_fn(merged, state, batch) if with_state else loss_fn(merged, batch)
            return _value_and_metrics(out)

        return loss, params, ({} if state is None else state), ("equinox", loss_fn,
                                                                _Same(static), with_state)
    params, buffers = split_buffers(model)
    if buffers is not None:  # integer leaves: travel beside the params, never perturbed
        with_state = state is not None

        def loss_with_buffers(params, state, batch):
            user_state, kept = state
            merged = _combine(params, kept)
            out = loss_fn(merged, user_state, batch) if with_state else loss_fn(merged, batch)
            return _value_and_metrics(out)

        return (loss_with_buffers, params, ({} if state is None else state, buffers),
                ("function-buffers", loss_fn, with_state))
    if state is None:
        def loss(params, state, batch):
            return _value_and_metrics(loss_fn(params, batch))

        return loss, model, {}, ("function", loss_fn)

    def loss_with_state(params, state, batch):
        return _value_and_metrics(loss_fn(params, state, batch))

    return loss_with_state, model, state, ("function-state", loss_fn)


def params_of(model: Any, *, name: str = "model") -> Params:
    """The parameters of ``model`` as :func:`objective_from` scans them (its NNX ``Param``
    leaves, its Equinox inexact arrays, or a pytree's floating-point leaves), for comparing
    another model (an end point, a trajectory's step) with them."""
    from flax import nnx

    if isinstance(model, nnx.Module):
        return nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])
    eqx = _equinox()
    if eqx is not None and isinstance(model, eqx.Module):
        return eqx.partition(model, eqx.is_inexact_array)[0]
    return split_buffers(model, name=name)[0]


def output_axis_of(model: Any, params: Params) -> Any:
    """The output axis of each of ``params`` (the parameters :func:`objective_from` took from
    ``model``), as :func:`landscape.directions.output_axes` takes it:

    - a Flax NNX module: ``"last"`` (a ``Linear`` kernel is (in, out), a ``Conv`` kernel
      (h, w, in, out));
    - an Equinox module: the first axis (a ``Linear`` weight is (out, in), a ``Conv`` weight
      (out, in, h, w), as PyTorch's), and no output axis for a convolution's bias, which
      Equinox shapes (out, 1, 1) to broadcast where PyTorch's is 1-D: Li et al.'s rule for
      biases applies to it (``"first"`` when the model has none);
    - a parameter pytree: ``"last"``, Flax's layout (Flax Linen's params, the built-in
      workloads'). Its layout cannot be known from the arrays: pass ``output_axis="first"``
      for PyTorch-layout parameters.
    """
    eqx = _equinox()
    if eqx is None or not isinstance(model, eqx.Module):
        return "last"
    convolutions = (eqx.nn.Conv, eqx.nn.ConvTranspose)

    def axes(node: Any) -> list[int | None]:
        if isinstance(node, convolutions):
            return [None if leaf is node.bias else 0 for leaf in jax.tree.leaves(node)]
        return [0 for _ in jax.tree.leaves(node)]  # 1-D leaves and scalars: ignored

    nodes = jax.tree.leaves(params, is_leaf=lambda node: isinstance(node, convolutions))
    return jax.tree.unflatten(jax.tree.structure(params),
                              [axis for node in nodes for axis in axes(node)])


def split_buffers(tree: Any, *, name: str = "model") -> tuple[Params, Any | None]:
    """``(params, buffers)``: a pytree's floating-point leaves and its integer/boolean leaves
    (buffers: step counters, index tables ... kept as they are, never perturbed), each with
    None where the other has a leaf; ``buffers`` is None when there are none. A leaf that is
    not an array of numbers (a str, an object) is an :class:`InputError` naming it."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    params, buffers = [], []
    for path, leaf in flat:
        dtype = getattr(leaf, "dtype", None)
        try:
            dtype = np.dtype(dtype) if dtype is not None else np.asarray(leaf).dtype
        except (TypeError, ValueError):
            dtype = np.dtype(object)
        if dtype.kind not in "biufc":
            shown = repr(leaf)
            shown = shown if len(shown) <= 40 else shown[:39] + "…"
            raise InputError(f"`{name}` has a leaf {leaf_path(path)!r} that is not an array of "
                             f"numbers ({type(leaf).__name__} {shown}); parameters must be "
                             "arrays (integer arrays are kept as buffers)", param=name)
        inexact = dtype.kind in "fc"
        params.append(leaf if inexact else None)
        buffers.append(None if inexact else leaf)
    if all(buffer is None for buffer in buffers):
        return tree, None
    return treedef.unflatten(params), treedef.unflatten(buffers)


def _combine(params: Params, buffers: Any) -> Any:
    """The model's pytree again from :func:`split_buffers`' two halves."""
    return jax.tree.map(lambda kept, param: param if kept is None else kept, buffers, params,
                        is_leaf=lambda leaf: leaf is None)


def _is_pair(out: Any) -> bool:
    return isinstance(out, tuple) and len(out) == 2


def _value_and_metrics(out: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    if _is_pair(out) and isinstance(out[1], dict):
        return out[0], dict(out[1])
    return out, {}


def _metric_names(loss, params, state, data, batch_size: int, name: str) -> tuple[str, ...]:
    """The metrics ``loss`` returns, checked on the first batch (shapes only: nothing runs);
    a loss that fails, or returns no scalar, is an :class:`InputError` naming it."""
    batch = _first_batch(data, batch_size)
    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), batch)
    params_shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), params)
    with user_code(f"`{name}` on the first batch"):  # one line, not a traceback
        value, metrics = jax.eval_shape(loss, params_shapes, state, shapes)
    for key, shape in (("loss", value), *metrics.items()):
        if getattr(shape, "shape", None) != ():
            raise InputError(f"`{name}` must return a scalar batch mean (or (scalar, metrics "
                             f"dict) of scalars); its {key!r} has shape "
                             f"{getattr(shape, 'shape', type(shape).__name__)}", param="loss_fn")
    return tuple(metrics)


def _first_batch(data, batch_size: int):
    if isinstance(data, Dataset):
        return next(data.batches(batch_size))
    assert isinstance(data, Batches)
    for batch in data:
        return batch
    raise InputError("the data yielded no batch", param="data")


def _equinox():
    try:
        import equinox
    except ImportError:
        return None
    return equinox

