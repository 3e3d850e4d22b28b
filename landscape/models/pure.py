"""NNX modules reduced to pure functions over plain dict pytrees (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
from flax import nnx

from landscape.workload import Params, State

InitFn = Callable[[jax.Array], tuple[Params, State]]
ApplyFn = Callable[[Params, State, jax.Array], jax.Array]
TrainApplyFn = Callable[[Params, State, jax.Array], tuple[jax.Array, State]]

class PureModel(NamedTuple):
    """A model as pure functions over plain dicts (see :func:`pure_modes`)."""

    init: InitFn  # init(key) -> (params, state)
    apply: ApplyFn  # evaluation mode: apply(params, state, x) -> y
    apply_train: TrainApplyFn  # training mode: apply_train(params, state, x) -> (y, new_state)


def pure_modes(build: Callable[[nnx.Rngs], nnx.Module]) -> PureModel:
    """Turn an NNX module constructor into ``init``, an evaluation-mode ``apply`` and a
    training-mode ``apply_train``.

    Evaluation mode sets ``use_running_average=True, deterministic=True`` on the modules that
    have them (BatchNorm uses its running statistics, the state is not changed); training mode
    sets ``use_running_average=False`` (batch statistics; ``apply_train`` returns the updated
    running statistics as the new state). Both graphs are fixed here, once, with ``nnx.view``,
    so nothing about the mode is decided inside a trace.
    """
    template = nnx.eval_shape(lambda: build(nnx.Rngs(0)))  # structure only: no compute
    eval_graph, *_ = nnx.split(
        nnx.view(template, use_running_average=True, deterministic=True, raise_if_not_found=False),
        nnx.Param, ...,
    )
    train_graph, *_ = nnx.split(
        nnx.view(template, use_running_average=False, deterministic=True, raise_if_not_found=False),
        nnx.Param, ...,
    )

    @jax.jit  # one compiled program instead of one eager dispatch per initializer
    def init(key: jax.Array) -> tuple[Params, State]:
        _, params, state = nnx.split(build(nnx.Rngs(key)), nnx.Param, ...)
        return nnx.to_pure_dict(params), nnx.to_pure_dict(state)

    def apply(params: Params, state: State, x: jax.Array) -> jax.Array:
        return nnx.merge(eval_graph, params, state)(x)

    def apply_train(params: Params, state: State, x: jax.Array) -> tuple[jax.Array, State]:
        module = nnx.merge(train_graph, params, state)
        y = module(x)
        _, _, new_state = nnx.split(module, nnx.Param, ...)
        return y, nnx.to_pure_dict(new_state)

    return PureModel(init, apply, apply_train)


def pure_model(build: Callable[[nnx.Rngs], nnx.Module]) -> tuple[InitFn, ApplyFn]:
    """``init(key) -> (params, state)`` and the evaluation-mode ``apply(params, state, x) -> y``
    of an NNX module constructor (see :func:`pure_modes` for the training mode too)."""
    model = pure_modes(build)
    return model.init, model.apply
