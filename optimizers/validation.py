"""Construction-time checks of hyperparameters.

Every optimizer factory checks its plain-number hyperparameters when it is built, so that a typo
like ``b2=1.0`` or ``learning_rate=-0.1`` fails at once with a message naming the argument and its
value, instead of producing NaNs a thousand steps later. Schedules (callables) and traced or
non-scalar arrays (e.g. under ``optax.inject_hyperparams``) are left alone: they have no value at
construction time.
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np

__all__ = [
    "HyperparameterError",
    "check_learning_rate",
    "check_non_negative",
    "check_decay_rate",
    "check_interpolation_rate",
    "check_positive_int",
    "check_at_least",
]


class HyperparameterError(ValueError):
    """A hyperparameter outside its allowed range (a ``ValueError``)."""


def _concrete_number(value) -> float | None:
    """``value`` as a float if it is a concrete scalar known now, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (numbers.Real, np.floating, np.integer)):
        return float(value)
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        try:
            return float(value)
        except jax.errors.ConcretizationTypeError:  # traced: no value at construction
            return None
    return None


def _fail(name: str, value, expected: str) -> None:
    raise HyperparameterError(f"`{name}` (={value!r}) must be {expected}")


def check_learning_rate(value, name: str = "learning_rate") -> None:
    """η: a number ≥ 0 or an optax schedule (a callable of the step count)."""
    if callable(value):
        return
    number = _concrete_number(value)
    if number is not None and not number >= 0.0:
        _fail(name, value, ">= 0 (a float or an optax schedule)")


def check_non_negative(value, name: str) -> None:
    """ε, weight decay, trust coefficients: a finite number ≥ 0 (schedules allowed)."""
    if callable(value):
        return
    number = _concrete_number(value)
    if number is not None and not (number >= 0.0 and math.isfinite(number)):
        _fail(name, value, "a finite number >= 0")


def check_decay_rate(value, name: str) -> None:
    """β, α (momentum), ρ (RMSProp decay): an exponential decay rate in [0, 1)."""
    number = _concrete_number(value)
    if number is not None and not 0.0 <= number < 1.0:
        _fail(name, value, "in [0, 1)")


def check_interpolation_rate(value, name: str) -> None:
    """Lookahead's α: the slow weights' step toward the fast weights, in (0, 1]."""
    number = _concrete_number(value)
    if number is not None and not 0.0 < number <= 1.0:
        _fail(name, value, "in (0, 1]")


def check_positive_int(value, name: str) -> None:
    """Lookahead's k: a whole number of steps ≥ 1 — a Python/NumPy int, or a 0-d integer array
    (``optax.inject_hyperparams`` passes it so; a traced one has no value yet and is left
    alone)."""
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0 and (
            jax.numpy.issubdtype(value.dtype, jax.numpy.integer)):
        try:
            value = int(value)
        except jax.errors.ConcretizationTypeError:
            return
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        _fail(name, value, "an int >= 1")
    if value < 1:
        _fail(name, value, "an int >= 1")


def check_at_least(value, name: str, bound: float) -> None:
    """A number ≥ ``bound`` (e.g. RAdam's tractability threshold ≥ 4)."""
    number = _concrete_number(value)
    if number is not None and not number >= bound:
        _fail(name, value, f">= {bound}")
