r"""Edge of stability: the sharpness each optimizer cannot exceed, and the preconditioner that
defines it for adaptive methods.

On a quadratic with curvature λ, gradient descent with step η is stable iff λ < 2/η; heavy-ball
momentum β iff λ < 2(1+β)/η; Nesterov iff λ < (2+2β)/(η(1+2β)). Cohen et al. (2021, ICLR,
"Gradient descent on neural networks typically occurs at the edge of stability") find that
full-batch training drives λmax(H) up to that threshold and holds it there. For adaptive methods
the step is −η P⁻¹ m, and what hovers at the threshold is the *preconditioned* sharpness
λmax(P⁻¹H) = λmax(P^{-1/2} H P^{-1/2}); for Adam the threshold is (2+2β1)/((1−β1)η) (Cohen et
al. 2022, "Adaptive gradient methods at the edge of stability"), 38/η at β1 = 0.9, with

.. math::

    P_t = (1 - \beta_1^t)\, \operatorname{diag}\big(\sqrt{\hat v_t} + \varepsilon\big),

where the factor 1 − β1ᵗ is m's bias correction moved into P (Adam steps by
η m̂/(√v̂ + ε) = η m / ((1 − β1ᵗ)(√v̂ + ε)), and the threshold is that of the uncorrected average
m); it is 1 to within 0.5 % after 50 steps. RMSProp is the β1 = 0 case: 2/η, P = diag(√v + ε).

Optimizer names, hyperparameters and state layouts are those of the ``optimizers`` suite:
``momentum``'s β is ``momentum``, Adam's β1, β2, ε are ``b1``, ``b2``, ``eps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from landscape.workload import Params

PRECONDITIONED = ("adam", "rmsprop")


class StabilityThreshold(NamedTuple):
    """The largest stable sharpness of an optimizer at its learning rate."""

    value: float
    preconditioned: bool  # compare with λmax(P^{-1/2} H P^{-1/2}), not λmax(H)
    formula: str  # e.g. "2/η", "(2+2β1)/((1−β1)η)"


def stability_threshold(name: str, learning_rate: float | None,
                        hyperparams: Mapping[str, Any] | None = None) -> StabilityThreshold | None:
    """The edge-of-stability threshold of suite optimizer ``name`` (None when the optimizer has
    no known threshold, e.g. LAMB, or the learning rate is unknown or a schedule)."""
    hyperparams = dict(hyperparams or {})
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        return None
    eta = float(learning_rate)
    if name == "sgd":
        return StabilityThreshold(2 / eta, False, "2/η")
    if name == "momentum":
        beta = float(hyperparams.get("momentum", 0.9))
        return StabilityThreshold(2 * (1 + beta) / eta, False, "2(1+β)/η")
    if name == "nesterov":
        beta = float(hyperparams.get("momentum", 0.9))
        return StabilityThreshold((2 + 2 * beta) / (eta * (1 + 2 * beta)), False,
                                  "(2+2β)/(η(1+2β))")
    if name == "adam":
        b1 = float(hyperparams.get("b1", 0.9))
        return StabilityThreshold((2 + 2 * b1) / ((1 - b1) * eta), True, "(2+2β1)/((1−β1)η)")
    if name == "rmsprop":
        return StabilityThreshold(2 / eta, True, "2/η")
    return None


def preconditioner(name: str, hyperparams: Mapping[str, Any] | None, opt_state: Any,
                   params: Params) -> Params | None:
    """The diagonal P (a pytree shaped like ``params``) that an adaptive optimizer divides its
    step by, read from its state ``opt_state`` (the optimizer's own NamedTuples, or the nested
    dicts a trajectory file gives back: leaves are found by their key paths).

    Adam: P = (1 − β1ᵗ)(√v̂ + ε) with v̂ = v/(1 − β2ᵗ) (see the module docstring); RMSProp:
    P = √v + ε. None for other optimizers, and before the first step (t = 0: no second moment
    yet).

    Raises:
      ValueError: ``opt_state`` is not the state of optimizer ``name`` for these params.
    """
    hyperparams = dict(hyperparams or {})
    if name not in PRECONDITIONED:
        return None
    moment = "nu" if name == "adam" else "mean_square"
    flat = _by_path(opt_state)
    param_paths = list(_by_path(params))
    prefix = _state_prefix(flat, moment, param_paths)
    if prefix is None:
        raise ValueError(f"the optimizer state holds no {name} `{moment}` for every parameter")
    count = int(np.asarray(flat[prefix + "count"]))
    if count == 0:
        return None
    eps = float(hyperparams.get("eps", 1e-8))
    v_correction = m_correction = 1.0
    if name == "adam":
        v_correction = 1.0 - float(hyperparams.get("b2", 0.999)) ** count
        m_correction = 1.0 - float(hyperparams.get("b1", 0.9)) ** count
    leaves = [m_correction * (np.sqrt(np.asarray(flat[f"{prefix}{moment}/{path}"], np.float64)
                                      / v_correction) + eps)
              for path in param_paths]
    dtypes = [np.asarray(leaf).dtype for leaf in jax.tree.leaves(params)]
    return jax.tree.unflatten(jax.tree.structure(params),
                              [leaf.astype(dtype) for leaf, dtype in zip(leaves, dtypes)])


def _state_prefix(flat: Mapping[str, Any], moment: str, param_paths: list[str]) -> str | None:
    """The key-path prefix (``""`` or ``"0/"`` in a chain) under which ``count`` and one
    ``moment`` leaf per parameter sit."""
    for key in flat:
        if key == "count" or key.endswith("/count"):
            prefix = key[: -len("count")]
            if all(f"{prefix}{moment}/{path}" in flat for path in param_paths):
                return prefix
    return None


def _by_path(tree: Any) -> dict[str, Any]:
    from landscape.tree import named_leaves

    return named_leaves(tree)
