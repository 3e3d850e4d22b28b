"""Tuned settings: the CLI's default learning rates and the Rosenbrock table of the docs.

Both tables are data, read by the registry, the tests and ``docs/optimizers.md`` (a test checks
that the docs table matches :data:`ROSENBROCK`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["DEFAULT_LEARNING_RATES", "RosenbrockSetting", "ROSENBROCK", "ROSENBROCK_START"]

#: Learning rates for training small networks (full-batch sine regression, 1-16-16-1 ReLU MLP),
#: the defaults of ``optimizers.get`` and of the CLI.
DEFAULT_LEARNING_RATES = MappingProxyType(
    {
        "sgd": 0.05,
        "momentum": 0.01,
        "nesterov": 0.01,
        "adagrad": 0.05,
        "rmsprop": 1e-3,
        "adam": 1e-3,
        "adamw": 1e-3,
        "radam": 1e-3,
        "ranger": 1e-3,
        "lars": 1.0,
        "lamb": 1e-3,
        "rangerlars": 1e-3,
        "paratrooper": 1e-3,
    }
)


class RosenbrockSetting(NamedTuple):
    """How an optimizer is run on f(x, y) = (1 − x)² + 100 (y − x²)² from (−1.5, 2)."""

    learning_rate: float
    steps: int
    hyperparams: dict[str, Any] = {}


#: The start point of the Rosenbrock runs.
ROSENBROCK_START = (-1.5, 2.0)

#: Tuned Rosenbrock settings; ``lookahead`` wraps Adam.
ROSENBROCK = MappingProxyType(
    {
        "sgd": RosenbrockSetting(1e-3, 5000),
    }
)
