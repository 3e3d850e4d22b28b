"""The optimizers without a library twin, against plain NumPy transcriptions of their equations.

Each transcription below is written from the equations (loops over steps and over leaves, norms
per leaf), not from the package's code, and runs in float64 on the same gradient oracle (a jitted
jax.grad: the gradient is not what is under test). float32 and bfloat16 behaviour of these
optimizers is covered by test_optimizers_api.py; float32 trajectories by
test_optimizers_reference.py for the optimizers with a library twin. Also here: the article's RMSProp start
σ_0 = |g_0|, and LARS / LAMB / Lookahead against optax where the formulas can be mapped.

Problems: a 3-8-1 tanh MLP with four leaves of different norms (so per-layer norms and masks
matter), and the Rosenbrock function from (-1.5, 2).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import optimizers

STEPS = 100
TOLERANCE = 1e-9  # float64; NumPy and XLA differ only by rounding order here
# Test programs are small and run once: skip LLVM's expensive passes (compiles ~2x faster).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

_rng = np.random.default_rng(1)
_X = _rng.normal(size=(32, 3))
_Y = np.sin(_X @ np.array([[1.0], [-2.0], [0.5]]))
PROBLEM_INIT = {
    "mlp": {
        "w1": _rng.normal(size=(3, 8)),
        "b1": 0.1 * _rng.normal(size=(8,)),
        "w2": _rng.normal(size=(8, 1)) / np.sqrt(8),
        "b2": np.array([0.3]),
    },
    "rosenbrock": {"xy": np.array([-1.5, 2.0])},
}
# Leaf norms spread wide (‖W1‖ ≈ 47, ‖b1‖ ≈ 0.03) so that Paratrooper's trust ratio hits both of
# its bounds, not only the free ratio ‖θ‖/‖D‖.
PROBLEM_INIT["mlp_wide_norms"] = dict(
    PROBLEM_INIT["mlp"], w1=10 * PROBLEM_INIT["mlp"]["w1"], b1=0.1 * PROBLEM_INIT["mlp"]["b1"]
)


def _loss(problem: str, p):
    if problem == "rosenbrock":
        x, y = p["xy"][0], p["xy"][1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2
    dtype = p["w1"].dtype  # both MLP problems
    h = jnp.tanh(jnp.asarray(_X, dtype) @ p["w1"] + p["b1"])
    return jnp.mean((h @ p["w2"] + p["b2"] - jnp.asarray(_Y, dtype)) ** 2)


IS_MATRIX = {"w1": True, "b1": False, "w2": True, "b2": False, "xy": True}


def matrix_mask(params):
    """Weight decay and trust ratios on the weights (and Rosenbrock's xy), not on the biases."""
    return {k: IS_MATRIX[k] for k in params}


# --------------------------------------------------------------------------------------------
# NumPy transcriptions. State is a dict per leaf; `step(t, grads, params) -> new params`, t ≥ 1.
# --------------------------------------------------------------------------------------------


def norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


class NumpyRAdam:
    """RAdam direction D_t (no learning rate), Liu et al. Algorithm 2, threshold ρ_t ≥ 5."""

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8, threshold=5.0):
        self.b1, self.b2, self.eps, self.threshold = b1, b2, eps, threshold
        self.m, self.v = {}, {}

    def rectifier(self, t: int) -> tuple[bool, float]:
        rho_inf = 2 / (1 - self.b2) - 1
        rho = rho_inf - 2 * t * self.b2**t / (1 - self.b2**t)
        if rho < self.threshold:
            return False, math.nan
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return True, r

    def direction(self, t: int, name: str, g: np.ndarray) -> np.ndarray:
        m = self.b1 * self.m.get(name, 0.0) + (1 - self.b1) * g
        v = self.b2 * self.v.get(name, 0.0) + (1 - self.b2) * g * g
        self.m[name], self.v[name] = m, v
        m_hat = m / (1 - self.b1**t)
        rectified, r = self.rectifier(t)
        if not rectified:
            return m_hat
        v_hat = v / (1 - self.b2**t)
        return r * m_hat / (np.sqrt(v_hat) + self.eps)


def numpy_adam_step(state, t, g, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * state.get("m", 0.0) + (1 - b1) * g
    v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    state["m"], state["v"] = m, v
    return (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)


def numpy_rmsprop_article(lr, decay, eps):
    sigma2 = {}

    def step(t, grads, params):
        out = {}
        for k, g in grads.items():
            # σ_0 = |g_0| (t = 1 here is the article's step 0), then the running average.
            sigma2[k] = g * g if t == 1 else decay * sigma2[k] + (1 - decay) * g * g
            out[k] = params[k] - lr * g / (np.sqrt(sigma2[k]) + eps)
        return out

    return step


def numpy_lars(lr, momentum, weight_decay, trust_coefficient, decay_leaves, trust_leaves):
    buf = {}

    def step(t, grads, params):
        out = {}
        for k, g in grads.items():
            theta = params[k]
            delta = weight_decay if k in decay_leaves else 0.0
            buf[k] = momentum * buf.get(k, 0.0) + (1 - momentum) * (g + delta * theta)
            if k in trust_leaves and norm(theta) > 0:
                local_lr = trust_coefficient * norm(theta) / (norm(g) + delta * norm(theta))
            else:
                local_lr = 1.0
            out[k] = theta - lr * local_lr * buf[k]
        return out

    return step


def numpy_lamb(lr, weight_decay, decay_leaves, trust_leaves, eps=1e-6):
    states = {}

    def step(t, grads, params):
        out = {}
        for k, g in grads.items():
            theta = params[k]
            r = numpy_adam_step(states.setdefault(k, {}), t, g, eps=eps)
            d = r + (weight_decay * theta if k in decay_leaves else 0.0)
            ratio = norm(theta) / norm(d) if (k in trust_leaves and norm(theta) > 0) else 1.0
            out[k] = theta - lr * ratio * d
        return out

    return step


def numpy_radamw(lr, weight_decay, b1, eps):
    radam = NumpyRAdam(b1=b1, eps=eps)

    def step(t, grads, params):
        return {
            k: params[k] - lr * (radam.direction(t, k, g) + weight_decay * params[k])
            for k, g in grads.items()
        }

    return step


def numpy_ranger_reference(lr, weight_decay, b1=0.95, b2=0.999, eps=1e-5, k=6, alpha=0.5,
                           threshold=5.0):
    """Ranger as its reference implementation steps (L. Wright, ranger.py, version 9.3.19; the
    gradient centralization of 20.4.11 left out), per parameter:
    step_size = r_t √(1−β2^t)/(1−β1^t) (1/(1−β1^t) while ρ_t ≤ 5), θ ← θ − η λ θ, then
    θ ← θ − η step_size m/(√v + ε) — ε on √v, not on √v̂ — and every k steps the slow weights
    φ ← φ + α(θ − φ), θ ← φ."""
    m, v, slow = {}, {}, {}

    def step(t, grads, params):
        beta2_t = b2**t
        n_sma_max = 2 / (1 - b2) - 1
        n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
        if n_sma > threshold:
            step_size = math.sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2)
                                  / n_sma * n_sma_max / (n_sma_max - 2)) / (1 - b1**t)
        else:
            step_size = 1.0 / (1 - b1**t)
        out = {}
        for name, g in grads.items():
            if name not in slow:
                slow[name] = params[name].copy()
            v[name] = b2 * v.get(name, 0.0) + (1 - b2) * g * g
            m[name] = b1 * m.get(name, 0.0) + (1 - b1) * g
            theta = params[name] - weight_decay * lr * params[name]
            if n_sma > threshold:
                theta = theta - step_size * lr * m[name] / (np.sqrt(v[name]) + eps)
            else:
                theta = theta - step_size * lr * m[name]
            if t % k == 0:
                slow[name] = slow[name] + alpha * (theta - slow[name])
                theta = slow[name].copy()
            out[name] = theta
        return out

    return step


def numpy_trust_radam(lr, weight_decay, trust_rule, log=None):
    """RAdam + decay, scaled per leaf by trust_rule(t, rectified, r_t, ‖θ‖, ‖D‖)."""
    radam = NumpyRAdam()

    def step(t, grads, params):
        out = {}
        rectified, r = radam.rectifier(t)
        for k, g in grads.items():
            theta = params[k]
            d = radam.direction(t, k, g) + weight_decay * theta
            trust = trust_rule(t, rectified, r, norm(theta), norm(d))
            if log is not None:
                log.append(trust)
            out[k] = theta - lr * trust * d
        return out

    return step


def rangerlars_rule(max_param_norm):
    def rule(t, rectified, r, theta_norm, d_norm):
        clamped = min(theta_norm, max_param_norm)
        return clamped / d_norm if clamped > 0 and d_norm > 0 else 1.0

    return rule


def paratrooper_rule(b1=0.9, b2=0.999):
    def rule(t, rectified, r, theta_norm, d_norm):
        if not rectified:
            return 1.0
        b_t = math.sqrt(1 - b2**t) / (1 - b1**t)
        ratio = theta_norm / d_norm if theta_norm > 0 and d_norm > 0 else 1.0
        return max(1.0, min(1.0 / (r * b_t), ratio))

    return rule


def numpy_lookahead(inner_step, k, alpha):
    slow = {}

    def step(t, grads, params):
        if not slow:
            slow.update({name: value.copy() for name, value in params.items()})
        fast = inner_step(t, grads, params)
        if t % k == 0:
            for name in fast:
                slow[name] = slow[name] + alpha * (fast[name] - slow[name])
            fast = {name: value.copy() for name, value in slow.items()}
        return fast

    return step


@functools.lru_cache(maxsize=None)
def _grad_fn(problem: str):
    return jax.jit(jax.grad(functools.partial(_loss, problem)))


def numpy_trajectory(problem: str, step: Callable) -> np.ndarray:
    params = {k: v.copy() for k, v in PROBLEM_INIT[problem].items()}
    rows = []
    with jax.enable_x64(True):
        grad = _grad_fn(problem)
        for t in range(1, STEPS + 1):
            grads = {k: np.asarray(v) for k, v in grad(params).items()}
            params = step(t, grads, params)
            rows.append(np.concatenate([params[k].ravel() for k in sorted(params)]))
    return np.asarray(rows)


def scan_trajectory(opt: optax.GradientTransformation, grad, params, *, fast=lambda p: p):
    """(STEPS, n) flattened parameters (``fast(params)``) after each step of ``opt``."""

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(grad(fast(params)), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), ravel_pytree(fast(params))[0]

    return jax.lax.scan(step, (params, opt.init(params)), None, length=STEPS)[1]


def float64_trajectories(problem: str, *opts: optax.GradientTransformation) -> list[np.ndarray]:
    """float64 trajectories of ``opts`` from the problem's start, compiled as one program."""
    grad = jax.grad(functools.partial(_loss, problem))
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v, jnp.float64) for k, v in PROBLEM_INIT[problem].items()}
        run = jax.jit(
            lambda p: [scan_trajectory(opt, grad, p) for opt in opts], compiler_options=FAST_COMPILE
        )
        return [np.asarray(x) for x in run(params)]


def max_relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape and np.all(np.isfinite(reference))
    scale = np.max(np.abs(reference), axis=1)
    return float(np.max(np.max(np.abs(ours - reference), axis=1) / scale))


def moved(trajectory: np.ndarray, problem: str) -> float:
    init = PROBLEM_INIT[problem]
    start = np.concatenate([init[k].ravel() for k in sorted(init)])
    return float(np.max(np.abs(trajectory[-1] - start)))


def _masked_leaves(problem):
    return {k for k in PROBLEM_INIT[problem] if IS_MATRIX[k]}


# name -> (ours(problem), numpy step(problem), learning rate per problem)
CASES = {
    "rmsprop_article_init": (
        lambda p, lr: optimizers.rmsprop(lr, decay=0.9, eps=1e-8),
        lambda p, lr: numpy_rmsprop_article(lr, 0.9, 1e-8),
        {"rosenbrock": 1e-3, "mlp": 1e-3},
    ),
    "lars": (
        lambda p, lr: optimizers.lars(
            lr,
            momentum=0.9,
            weight_decay=1e-2,
            trust_coefficient=0.02,
            weight_decay_mask=matrix_mask,
            trust_ratio_mask=matrix_mask,
        ),
        lambda p, lr: numpy_lars(lr, 0.9, 1e-2, 0.02, _masked_leaves(p), _masked_leaves(p)),
        {"rosenbrock": 0.02, "mlp": 0.5},
    ),
    "lamb": (
        lambda p, lr: optimizers.lamb(
            lr,
            weight_decay=1e-2,
            weight_decay_mask=matrix_mask,
            trust_ratio_mask=matrix_mask,
        ),
        lambda p, lr: numpy_lamb(lr, 1e-2, _masked_leaves(p), _masked_leaves(p)),
        {"rosenbrock": 1e-2, "mlp": 1e-2},
    ),
    "lookahead_adam": (
        lambda p, lr: optimizers.lookahead(optimizers.adam(lr), sync_period=3, slow_step_size=0.6),
        lambda p, lr: numpy_lookahead(
            _per_leaf(lambda state, t, g: numpy_adam_step(state, t, g), lr), 3, 0.6
        ),
        {"rosenbrock": 0.05, "mlp": 1e-2},
    ),
    "ranger": (
        lambda p, lr: optimizers.ranger(lr, weight_decay=1e-2),
        lambda p, lr: numpy_ranger_reference(lr, 1e-2),
        {"rosenbrock": 5e-3, "mlp": 1e-2},
    ),
    "rangerlars": (
        lambda p, lr: optimizers.rangerlars(lr, weight_decay=1e-2, max_param_norm=1.0),
        lambda p, lr: numpy_lookahead(numpy_trust_radam(lr, 1e-2, rangerlars_rule(1.0)), 6, 0.5),
        {"rosenbrock": 1e-2, "mlp": 1e-2},
    ),
    "paratrooper": (
        lambda p, lr: optimizers.paratrooper(lr, weight_decay=1e-2),
        lambda p, lr: numpy_lookahead(numpy_trust_radam(lr, 1e-2, paratrooper_rule()), 6, 0.5),
        {"rosenbrock": 5e-3, "mlp": 1e-2, "mlp_wide_norms": 1e-2},
    ),
}


def _per_leaf(direction, lr):
    states = {}

    def step(t, grads, params):
        return {
            k: params[k] - lr * direction(states.setdefault(k, {}), t, g) for k, g in grads.items()
        }

    return step


@functools.lru_cache(maxsize=None)
def suite_trajectories(problem: str) -> dict:
    """Our float64 trajectory of every case, compiled as one program per problem."""
    opts = {
        name: make(problem, lrs[problem])
        for name, (make, _, lrs) in CASES.items()
        if problem in lrs
    }
    names = list(opts)
    return dict(zip(names, float64_trajectories(problem, *(opts[n] for n in names))))


@pytest.mark.parametrize(
    "name, problem", [(name, problem) for name, case in CASES.items() for problem in case[2]]
)
def test_matches_numpy_transcription(name, problem):
    _, make_numpy, lrs = CASES[name]
    reference = numpy_trajectory(problem, make_numpy(problem, lrs[problem]))
    assert moved(reference, problem) > 1e-2
    ours = suite_trajectories(problem)[name]
    assert max_relative_difference(ours, reference) <= TOLERANCE


def test_paratrooper_transcription_visits_both_bounds_and_the_free_ratio():
    """Guard against a vacuous comparison: on the wide-norm MLP the trust ratio is 1 (early steps
    and the lower clamp), 1/(r_t b_t) (the upper clamp) and ‖θ‖/‖D‖ (in between), each at least
    once."""
    log: list[tuple[str, float]] = []
    step = numpy_lookahead(numpy_trust_radam(1e-2, 1e-2, _logged(log)), 6, 0.5)
    numpy_trajectory("mlp_wide_norms", step)
    kinds = {kind for kind, _ in log}
    assert {"unrectified", "lower", "upper", "ratio"} <= kinds


def _logged(log):
    base = paratrooper_rule()

    def rule(t, rectified, r, theta_norm, d_norm):
        value = base(t, rectified, r, theta_norm, d_norm)
        if not rectified:
            kind = "unrectified"
        elif value == 1.0:
            kind = "lower"
        elif value == theta_norm / d_norm:
            kind = "ratio"
        else:
            kind = "upper"
        log.append((kind, value))
        return value

    return rule


def test_rangerlars_transcription_exercises_the_norm_clamp():
    """With max_param_norm = 1 the MLP's W1 (‖W1‖ ≈ 4.7) is clamped, the biases are not."""
    log: list[bool] = []
    base = rangerlars_rule(1.0)

    def rule(t, rectified, r, theta_norm, d_norm):
        log.append(theta_norm > 1.0)
        return base(t, rectified, r, theta_norm, d_norm)

    numpy_trajectory("mlp", numpy_lookahead(numpy_trust_radam(1e-2, 1e-2, rule), 6, 0.5))
    assert any(log) and not all(log)


# --- optax, where the formulas can be mapped ------------------------------------------------


@pytest.mark.parametrize("problem", ["rosenbrock", "mlp"])
def test_lamb_matches_optax_lamb(problem):
    """Same formula: optax.lamb = scale_by_adam, add_decayed_weights, scale_by_trust_ratio."""
    ours, reference = float64_trajectories(
        problem, optimizers.lamb(1e-2, weight_decay=1e-2), optax.lamb(1e-2, weight_decay=1e-2)
    )
    assert moved(reference, problem) > 1e-2
    assert max_relative_difference(ours, reference) <= 1e-5


@pytest.mark.parametrize("problem", ["rosenbrock", "mlp"])
def test_lars_matches_optax_lars_where_the_formulas_coincide(problem):
    """optax.lars accumulates λ(g + δθ) undamped in its momentum and takes λ ∝ ‖θ‖/‖g + δθ‖;
    the article's LARS damps the momentum by (1 − β) and takes ‖θ‖/(‖g‖ + δ‖θ‖). Without
    momentum and decay both are θ ← θ − η η_tc ‖θ‖/‖g‖ g."""
    ours, reference = float64_trajectories(
        problem,
        optimizers.lars(0.5, momentum=0.0, trust_coefficient=0.02),
        optax.lars(0.5, trust_coefficient=0.02, momentum=0.0),
    )
    assert moved(reference, problem) > 1e-2
    assert max_relative_difference(ours, reference) <= 1e-5


@pytest.mark.parametrize(
    "inner",
    [
        pytest.param(lambda: (optimizers.adam(0.05), optax.adam(0.05)), id="adam"),
        pytest.param(lambda: (optimizers.momentum(1e-3), optax.sgd(1e-3, 0.9)), id="momentum"),
    ],
)
def test_lookahead_matches_optax_lookahead_on_rosenbrock(inner):
    """optax.lookahead needs LookaheadParams(fast, slow); ours keeps φ in its state. The params
    our loop holds must follow optax's fast weights."""
    ours_inner, optax_inner = inner()
    ours_opt = optimizers.lookahead(ours_inner, sync_period=5, slow_step_size=0.5)
    optax_opt = optax.lookahead(optax_inner, sync_period=5, slow_step_size=0.5)
    grad = jax.grad(functools.partial(_loss, "rosenbrock"))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(params):
        return (
            scan_trajectory(ours_opt, grad, params),
            scan_trajectory(
                optax_opt,
                grad,
                optax.LookaheadParams.init_synced(params),
                fast=lambda p: p.fast,
            ),
        )

    with jax.enable_x64(True):
        ours, reference = run({"xy": jnp.asarray(PROBLEM_INIT["rosenbrock"]["xy"])})
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert moved(reference, "rosenbrock") > 1e-2
    assert max_relative_difference(ours, reference) <= 1e-10
