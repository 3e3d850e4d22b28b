"""An optimizer suite as optax ``GradientTransformation``s (standalone: knows nothing of landscape).

Every optimizer is a function returning an ``optax.GradientTransformation`` over any params
pytree: ``updates, state = opt.update(grads, state, params)``, then
``params = optax.apply_updates(params, updates)``. Each family lives in its own module, its
user-facing ``X(learning_rate, ...)`` written as optax writes its aliases: a chain of optax's
transformations (SGD, momentum and Nesterov are optax's alone), with a ``scale_by_X`` of ours only
where optax's differs from the article's definition (docs/optimizers.md lists which and why).
"""

from optimizers.adagrad import AdagradState, adagrad, scale_by_adagrad
from optimizers.adam import (
    AdamState,
    RAdamState,
    adam,
    adamw,
    radam,
    radam_rectification,
    scale_by_adam,
    scale_by_radam,
)
from optimizers.defaults import (
    DEFAULT_LEARNING_RATES,
    ROSENBROCK,
    ROSENBROCK_START,
    ROSENBROCK_TARGET_LOSS,
    RosenbrockSetting,
)
from optimizers.lamb import lamb
from optimizers.lars import LarsState, lars, scale_by_lars
from optimizers.lookahead import LookaheadState, lookahead, ranger
from optimizers.masks import mask_per_leaf, no_decay_for_vectors
from optimizers.rangerlars import (
    ParatrooperTrustRatioState,
    paratrooper,
    rangerlars,
    scale_by_paratrooper,
    scale_by_paratrooper_trust_ratio,
    scale_by_rangerlars,
)
from optimizers.registry import default_learning_rate, get, names, rosenbrock_optimizer
from optimizers.rmsprop import RMSPropState, rmsprop, scale_by_rmsprop
from optimizers.sgd import momentum, nesterov, sgd
from optimizers.trust_ratio import scale_by_trust_ratio
from optimizers.validation import HyperparameterError

__all__ = [
    "AdagradState",
    "AdamState",
    "DEFAULT_LEARNING_RATES",
    "HyperparameterError",
    "LarsState",
    "LookaheadState",
    "ParatrooperTrustRatioState",
    "RAdamState",
    "RMSPropState",
    "ROSENBROCK",
    "ROSENBROCK_START",
    "ROSENBROCK_TARGET_LOSS",
    "RosenbrockSetting",
    "adagrad",
    "adam",
    "adamw",
    "default_learning_rate",
    "get",
    "lamb",
    "lars",
    "lookahead",
    "mask_per_leaf",
    "momentum",
    "names",
    "nesterov",
    "no_decay_for_vectors",
    "paratrooper",
    "radam",
    "radam_rectification",
    "ranger",
    "rangerlars",
    "rmsprop",
    "rosenbrock_optimizer",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_lars",
    "scale_by_paratrooper",
    "scale_by_paratrooper_trust_ratio",
    "scale_by_radam",
    "scale_by_rangerlars",
    "scale_by_rmsprop",
    "scale_by_trust_ratio",
    "sgd",
]
