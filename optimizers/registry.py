"""Optimizers by name, for the CLI and for configuration files.

``get("adam", learning_rate=1e-3)`` builds ``optimizers.adam(1e-3)``; an omitted learning rate
takes :func:`default_learning_rate`. Lookahead wraps another suite optimizer named by ``inner``:
``get("lookahead", inner="adam", sync_period=5, slow_step_size=0.5, learning_rate=1e-3)`` — its own
hyperparameters (``sync_period``, ``slow_step_size``) stay with it, all others go to the inner one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import optax

from optimizers.adagrad import adagrad
from optimizers.adam import adam, adamw, radam
from optimizers.defaults import DEFAULT_LEARNING_RATES, ROSENBROCK
from optimizers.lamb import lamb
from optimizers.lars import lars
from optimizers.lookahead import lookahead, ranger
from optimizers.rangerlars import paratrooper, rangerlars
from optimizers.rmsprop import rmsprop
from optimizers.sgd import momentum, nesterov, sgd

__all__ = ["names", "get", "default_learning_rate", "rosenbrock_optimizer"]

_FACTORIES: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "radam": radam,
    "lookahead": lookahead,
    "ranger": ranger,
    "lars": lars,
    "lamb": lamb,
    "rangerlars": rangerlars,
    "paratrooper": paratrooper,
}

_LOOKAHEAD_OWN = ("sync_period", "slow_step_size")


def names() -> tuple[str, ...]:
    """Registry names, in the article's order."""
    return tuple(_FACTORIES)


def _canonical(name: str) -> str:
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _FACTORIES:
        raise ValueError(f"unknown optimizer `{name}`; valid names: {', '.join(_FACTORIES)}")
    return key


def _hyperparameter_names(factory: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(factory).parameters)


def default_learning_rate(name: str) -> float:
    """The tuned default learning rate of ``name`` (small-network training, see the docs)."""
    key = _canonical(name)
    if key == "lookahead":
        raise ValueError(
            "`lookahead` takes the learning rate of its `inner` optimizer: ask for that one"
        )
    return DEFAULT_LEARNING_RATES[key]


def get(name: str, **hyperparams: Any) -> optax.GradientTransformation:
    """Build the optimizer ``name`` with ``hyperparams``.

    Raises:
      ValueError: for an unknown name (listing the valid ones) or an unknown hyperparameter
        (naming it and listing the accepted ones); a ``HyperparameterError`` (a ``ValueError``)
        for a value out of range.
    """
    key = _canonical(name)
    if key == "lookahead":
        return _get_lookahead(hyperparams)
    factory = _FACTORIES[key]
    accepted = _hyperparameter_names(factory)
    unknown = [keyword for keyword in hyperparams if keyword not in accepted]
    if unknown:
        raise ValueError(
            f"`{unknown[0]}` is not a hyperparameter of `{key}`; accepted: {', '.join(accepted)}"
        )
    hyperparams.setdefault("learning_rate", DEFAULT_LEARNING_RATES[key])
    return factory(**hyperparams)


def _get_lookahead(hyperparams: dict[str, Any]) -> optax.GradientTransformation:
    hyperparams = dict(hyperparams)
    inner = hyperparams.pop("inner", None)
    own = {key: hyperparams.pop(key) for key in _LOOKAHEAD_OWN if key in hyperparams}
    if inner is None:
        raise ValueError(
            "`lookahead` needs `inner`: the name of the optimizer it wraps (one of "
            f"{', '.join(n for n in _FACTORIES if n != 'lookahead')}) or a GradientTransformation"
        )
    if isinstance(inner, optax.GradientTransformation):
        if hyperparams:
            raise ValueError(
                f"`{next(iter(hyperparams))}` is not a hyperparameter of `lookahead`; accepted: "
                f"inner, {', '.join(_LOOKAHEAD_OWN)} (hyperparameters of a named inner optimizer "
                "are accepted only when `inner` is a name)"
            )
        inner_transformation = inner
    else:
        if _canonical(inner) == "lookahead":
            raise ValueError("`inner` of `lookahead` must be another optimizer, not `lookahead`")
        inner_transformation = get(inner, **hyperparams)
    return lookahead(inner_transformation, **own)


def rosenbrock_optimizer(name: str) -> optax.GradientTransformation:
    """``name`` with its tuned Rosenbrock setting (:data:`optimizers.defaults.ROSENBROCK`)."""
    setting = ROSENBROCK[_canonical(name)]
    learning_rate = setting.learning_rate
    if setting.cosine_decay:
        learning_rate = optax.cosine_decay_schedule(learning_rate, setting.steps)
    return get(name, learning_rate=learning_rate, **setting.hyperparams)
