"""Trajectories of the suite against optax and torch.optim where they implement the same algorithm.

100 steps on the Rosenbrock function from (-1.5, 2) and on a small tanh MLP with fixed random
data; the metric is the largest over steps of ‖θ_ours − θ_ref‖∞ / ‖θ_ref‖∞. float64 must agree to
1e-5 (it agrees to ~1e-12, RAdam to ~2e-6 against torch because of its ε placement); float32 to the
looser tolerances below, which only absorb rounding that the dynamics amplify. Learning rates keep
the 100 steps out of the chaotic regime: RMSProp at η = 1e-2 turns a 1e-16 difference into 1e-3
within 60 steps on either problem, whatever the implementation.

Hyperparameter mappings (the formulas are made identical, not just similar):

* momentum / Nesterov: ours keeps v ← αv − ηg (the article's form); optax ``sgd(momentum=)`` does
  the same; torch keeps buf ← μ buf + g and steps −η buf (v = −η buf), Nesterov −η(g + μ buf).
  With a constant η all three trajectories coincide, which these tests show.
* Adagrad: optax starts the sum at 0.1 and puts ε inside the root -> optax
  ``initial_accumulator_value=0, eps=0`` against ours ``eps=0``; torch starts at 0 with ε = 1e-10
  outside the root, exactly ours.
* RMSProp: the zero-initialised option (``zero_init=True``) against optax
  ``eps_in_sqrt=False`` and torch (α = 0.9 passed to both); the article's σ_0 = |g_0| has no
  library equivalent and is checked against a NumPy transcription in
  ``test_optimizers_transcriptions.py``.
* AdamW: the same λ = 1e-2 passed to all three (defaults differ: optax 1e-4, torch 1e-2).
* RAdam: optax rectifies when ρ_t ≥ 5 and puts ε on √v̂; torch when ρ_t > 5 with ε on √v. With
  β2 = 0.999 ρ_5 ≈ 4.996 and ρ_6 ≈ 5.994, so the decisions agree; the ε placements differ by
  ε(1/√(1−β2^t) − 1)/√v̂, far below the tolerance for these gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import optimizers

torch = pytest.importorskip("torch")

STEPS = 100
# Test programs are small and run once: skip LLVM's expensive passes (compiles ~2x faster).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# float32: measured worst cases are ~1.1e-4 (Nesterov on Rosenbrock vs torch) and ~6e-5 (RAdam on
# the MLP vs optax, whose float32 bias corrections 1 - 0.999**t lose digits that ours keep).
TOLERANCE = {"float64": 1e-5, "float32": {"rosenbrock": 2e-4, "mlp": 1e-4}}


class Problem(NamedTuple):
    name: str
    init: dict  # leaf name -> float64 numpy array
    jax_loss: Callable
    torch_loss: Callable


def _rosenbrock_jax(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _rosenbrock_torch(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


_rng = np.random.default_rng(0)
_X = _rng.normal(size=(32, 3))
_Y = np.sin(_X @ np.array([[1.0], [-2.0], [0.5]]))
_MLP_INIT = {
    "w1": _rng.normal(size=(3, 8)) / np.sqrt(3),
    "b1": 0.1 * _rng.normal(size=(8,)),
    "w2": _rng.normal(size=(8, 1)) / np.sqrt(8),
    "b2": np.zeros(1),
}


def _mlp_jax(p):
    x, y = jnp.asarray(_X, p["w1"].dtype), jnp.asarray(_Y, p["w1"].dtype)
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    return jnp.mean((h @ p["w2"] + p["b2"] - y) ** 2)


def _mlp_torch(p):
    x = torch.tensor(_X, dtype=p["w1"].dtype)
    y = torch.tensor(_Y, dtype=p["w1"].dtype)
    h = torch.tanh(x @ p["w1"] + p["b1"])
    return torch.mean((h @ p["w2"] + p["b2"] - y) ** 2)


PROBLEMS = {
    "rosenbrock": Problem(
        "rosenbrock", {"xy": np.array([-1.5, 2.0])}, _rosenbrock_jax, _rosenbrock_torch
    ),
    "mlp": Problem("mlp", _MLP_INIT, _mlp_jax, _mlp_torch),
}


class Case(NamedTuple):
    ours: Callable[[float], optax.GradientTransformation]
    optax: Callable[[float], optax.GradientTransformation] | None
    torch: Callable[[list, float], object] | None
    lr: dict  # problem name -> learning rate


CASES = {
    "sgd": Case(
        lambda lr: optimizers.sgd(lr),
        lambda lr: optax.sgd(lr),
        lambda params, lr: torch.optim.SGD(params, lr=lr),
        {"rosenbrock": 1e-3, "mlp": 0.1},
    ),
    "momentum": Case(
        lambda lr: optimizers.momentum(lr, momentum=0.9),
        lambda lr: optax.sgd(lr, momentum=0.9),
        lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
        {"rosenbrock": 1e-3, "mlp": 0.05},
    ),
    "nesterov": Case(
        lambda lr: optimizers.nesterov(lr, momentum=0.9),
        lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
        lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
        {"rosenbrock": 1e-3, "mlp": 0.05},
    ),
    "adagrad_vs_optax": Case(
        lambda lr: optimizers.adagrad(lr, eps=0.0),
        lambda lr: optax.adagrad(lr, initial_accumulator_value=0.0, eps=0.0),
        None,
        {"rosenbrock": 0.1, "mlp": 0.1},
    ),
    "adagrad_vs_torch": Case(
        lambda lr: optimizers.adagrad(lr, eps=1e-10),
        None,
        lambda params, lr: torch.optim.Adagrad(params, lr=lr, eps=1e-10),
        {"rosenbrock": 0.1, "mlp": 0.1},
    ),
    "rmsprop_zero_init": Case(
        lambda lr: optimizers.rmsprop(lr, decay=0.9, eps=1e-8, zero_init=True),
        lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-8, eps_in_sqrt=False),
        lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-8),
        {"rosenbrock": 1e-3, "mlp": 1e-3},
    ),
    "adam": Case(
        lambda lr: optimizers.adam(lr),
        lambda lr: optax.adam(lr),
        lambda params, lr: torch.optim.Adam(params, lr=lr),
        {"rosenbrock": 0.05, "mlp": 1e-2},
    ),
    "adamw": Case(
        lambda lr: optimizers.adamw(lr, weight_decay=1e-2),
        lambda lr: optax.adamw(lr, weight_decay=1e-2),
        lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
        {"rosenbrock": 0.05, "mlp": 1e-2},
    ),
    "radam": Case(
        lambda lr: optimizers.radam(lr),
        lambda lr: optax.radam(lr),
        lambda params, lr: torch.optim.RAdam(params, lr=lr),
        {"rosenbrock": 5e-3, "mlp": 1e-2},
    ),
    "radamw": Case(
        lambda lr: optimizers.radam(lr, weight_decay=1e-2),
        lambda lr: optax.chain(
            optax.scale_by_radam(),
            optax.add_decayed_weights(1e-2),
            optax.scale_by_learning_rate(lr),
        ),
        lambda params, lr: torch.optim.RAdam(
            params, lr=lr, weight_decay=1e-2, decoupled_weight_decay=True
        ),
        {"rosenbrock": 5e-3, "mlp": 1e-2},
    ),
}


def _scan_trajectory(opt: optax.GradientTransformation, grad, params):
    """(STEPS, n) parameters after each step, flattened in sorted-leaf-name order."""

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), ravel_pytree(params)[0]

    return jax.lax.scan(step, (params, opt.init(params)), None, length=STEPS)[1]


def jax_trajectory(opt: optax.GradientTransformation, problem: Problem, dtype) -> np.ndarray:
    params = {k: jnp.asarray(v, dtype) for k, v in problem.init.items()}
    run = jax.jit(
        lambda params: _scan_trajectory(opt, jax.grad(problem.jax_loss), params),
        compiler_options=FAST_COMPILE,
    )
    return np.asarray(run(params), np.float64)


@functools.lru_cache(maxsize=None)
def suite_trajectories(problem_name: str, dtype: str) -> dict:
    """{case: (ours, optax reference or None)} for every case, compiled as one program.

    One jit over all cases compiles ~3x faster than one jit per trajectory.
    """
    problem = PROBLEMS[problem_name]
    grad = jax.grad(problem.jax_loss)
    optimizers_by_case = {}
    for name, case in CASES.items():
        lr = case.lr[problem_name]
        optimizers_by_case[name] = (case.ours(lr), None if case.optax is None else case.optax(lr))

    def run_all(params):
        return {
            name: tuple(
                None if opt is None else _scan_trajectory(opt, grad, params) for opt in pair
            )
            for name, pair in optimizers_by_case.items()
        }

    def compute(jnp_dtype):
        params = {k: jnp.asarray(v, jnp_dtype) for k, v in problem.init.items()}
        result = jax.jit(run_all, compiler_options=FAST_COMPILE)(params)
        return jax.tree.map(lambda x: np.asarray(x, np.float64), result)

    return _run(dtype, compute)


def torch_trajectory(make_opt, lr: float, problem: Problem, dtype) -> np.ndarray:
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    params = {
        k: torch.tensor(problem.init[k], dtype=torch_dtype, requires_grad=True)
        for k in sorted(problem.init)
    }
    opt = make_opt(list(params.values()), lr)
    rows = []
    for _ in range(STEPS):
        opt.zero_grad()
        problem.torch_loss(params).backward()
        opt.step()
        rows.append(np.concatenate([p.detach().numpy().ravel() for p in params.values()]))
    return np.asarray(rows, np.float64)


def max_relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape
    assert np.all(np.isfinite(reference))
    scale = np.max(np.abs(reference), axis=1)
    return float(np.max(np.max(np.abs(ours - reference), axis=1) / scale))


def _tolerance(dtype: str, problem: str) -> float:
    tolerance = TOLERANCE[dtype]
    return tolerance if isinstance(tolerance, float) else tolerance[problem]


def _run(dtype: str, fn):
    if dtype == "float64":
        with jax.enable_x64(True):
            return fn(jnp.float64)
    return fn(jnp.float32)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("case_name", list(CASES))
def test_trajectory_matches_optax_and_torch(case_name, problem_name, dtype):
    case, problem = CASES[case_name], PROBLEMS[problem_name]
    ours, optax_reference = suite_trajectories(problem_name, dtype)[case_name]
    tolerance = _tolerance(dtype, problem_name)
    # The run must actually move: a frozen trajectory would match trivially.
    start = np.concatenate([problem.init[k].ravel() for k in sorted(problem.init)])
    assert np.max(np.abs(ours[-1] - start)) > 1e-2
    if optax_reference is not None:
        assert max_relative_difference(ours, optax_reference) <= tolerance
    if case.torch is not None:
        torch_reference = torch_trajectory(case.torch, case.lr[problem_name], problem, dtype)
        assert max_relative_difference(ours, torch_reference) <= tolerance


def test_torch_momentum_form_differs_from_the_article_form_only_under_a_schedule():
    """v ← αv − η_t g and torch's buf ← μ buf + g, θ ← θ − η_t buf agree for constant η only."""
    problem = PROBLEMS["rosenbrock"]
    schedule = optax.exponential_decay(1e-3, transition_steps=10, decay_rate=0.5)
    with jax.enable_x64(True):
        ours = jax_trajectory(optimizers.momentum(schedule, momentum=0.9), problem, jnp.float64)

    def torch_with_schedule(params, lr):
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
        return _ScheduledTorch(opt, schedule)

    reference = torch_trajectory(torch_with_schedule, 1e-3, problem, "float64")
    # Same first step (buf = g, v = −η_0 g), then the histories weight old gradients differently.
    assert max_relative_difference(ours[:1], reference[:1]) <= 1e-12
    assert max_relative_difference(ours, reference) > 1e-3


class _ScheduledTorch:
    """torch optimizer whose lr follows an optax schedule of the step count."""

    def __init__(self, opt, schedule):
        self.opt, self.schedule, self.count = opt, schedule, 0

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        for group in self.opt.param_groups:
            group["lr"] = float(self.schedule(self.count))
        self.opt.step()
        self.count += 1
