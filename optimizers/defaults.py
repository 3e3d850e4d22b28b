"""Tuned settings: the CLI's default learning rates and the Rosenbrock table of the docs.

Both tables are data, read by the registry, the tests and ``docs/optimizers.md`` (a test checks
that the docs table matches :data:`ROSENBROCK`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "RosenbrockSetting",
    "ROSENBROCK",
    "ROSENBROCK_START",
    "ROSENBROCK_TARGET_LOSS",
]

#: Learning rates for training small networks, the defaults of ``optimizers.get`` and of the CLI.
#: Tuned on full-batch sine regression (1-16-16-1 ReLU MLP, 1000 steps, three seeds): the largest
#: rate of a 3x grid that trained every seed without blowing up. ``lookahead`` takes its inner
#: optimizer's.
DEFAULT_LEARNING_RATES = MappingProxyType(
    {
        "sgd": 0.03,
        "momentum": 0.01,
        "nesterov": 0.01,
        "adagrad": 0.03,
        "rmsprop": 1e-3,
        "adam": 3e-3,
        "adamw": 3e-3,
        "radam": 1e-2,
        "ranger": 1e-2,
        "lars": 3.0,
        "lamb": 1e-2,
        "rangerlars": 1e-2,
        "paratrooper": 1e-2,
    }
)


class RosenbrockSetting(NamedTuple):
    """How an optimizer is run on f(x, y) = (1 − x)² + 100 (y − x²)² from (−1.5, 2)."""

    learning_rate: float  # η, or the peak of the cosine decay
    steps: int
    cosine_decay: bool = False  # η_t = optax.cosine_decay_schedule(η, steps)
    hyperparams: Mapping[str, Any] = MappingProxyType({})


#: The start point of the Rosenbrock runs; the minimum is f(1, 1) = 0.
ROSENBROCK_START = (-1.5, 2.0)

#: Every tuned run ends below this loss (float32; the start has f = 12.5).
ROSENBROCK_TARGET_LOSS = 1e-4

#: Tuned Rosenbrock settings (``lookahead`` wraps Adam). Methods whose steps scale with ‖θ‖ (LARS,
#: LAMB, RangerLARS) crawl where the valley passes the origin and bounce at a fixed relative step
#: size near the minimum: they need a large peak rate and a decaying schedule. RAdam-based ones
#: take un-normalised momentum steps η·m̂ for their first five steps (|g| ≈ 160 at the start), so
#: their rate must stay small.
ROSENBROCK = MappingProxyType(
    {
        "sgd": RosenbrockSetting(2e-3, 5000),
        "momentum": RosenbrockSetting(1e-3, 2000),
        "nesterov": RosenbrockSetting(1e-3, 2000),
        "adagrad": RosenbrockSetting(1.0, 10000),
        "rmsprop": RosenbrockSetting(1e-2, 5000, cosine_decay=True),
        "adam": RosenbrockSetting(0.1, 1000),
        "adamw": RosenbrockSetting(0.1, 2000, hyperparams=MappingProxyType({"weight_decay": 1e-3})),
        "radam": RosenbrockSetting(5e-3, 20000),
        "lookahead": RosenbrockSetting(0.1, 2000, hyperparams=MappingProxyType({"inner": "adam"})),
        "ranger": RosenbrockSetting(5e-3, 20000),
        "lars": RosenbrockSetting(20.0, 20000, cosine_decay=True),
        "lamb": RosenbrockSetting(1e-2, 5000, cosine_decay=True),
        "rangerlars": RosenbrockSetting(2e-2, 5000, cosine_decay=True),
        "paratrooper": RosenbrockSetting(1e-2, 20000, cosine_decay=True),
    }
)

