"""The suite's contract: registry, errors, schedules, pytrees and dtypes, jit, house style."""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimizers

# Test programs run a few times: skip LLVM's expensive passes (compiles ~2x faster).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

SUITE = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "radam",
    "lookahead",
    "ranger",
    "lars",
    "lamb",
    "rangerlars",
    "paratrooper",
)


def build(name: str, **hyperparams) -> optax.GradientTransformation:
    if name == "lookahead":
        hyperparams.setdefault("inner", "adam")
    return optimizers.get(name, **hyperparams)


# --- registry -------------------------------------------------------------------------------


def test_names_are_the_suite_in_the_articles_order():
    assert optimizers.names() == SUITE


def test_get_rejects_an_unknown_name_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown optimizer `adamax`") as error:
        optimizers.get("adamax")
    for name in SUITE:
        assert name in str(error.value)


def test_get_rejects_an_unknown_hyperparameter_by_name():
    with pytest.raises(ValueError, match=r"`beta1` is not a hyperparameter of `adam`.*\bb1\b"):
        optimizers.get("adam", beta1=0.9)


def test_get_is_case_insensitive():
    assert isinstance(optimizers.get("RangerLARS"), optax.GradientTransformation)


def test_default_learning_rates_are_what_get_uses():
    # Adam's first step is −η g/(|g| + ε) = −η sign(g): it reads the learning rate back.
    opt = optimizers.get("adam")
    params = {"w": jnp.zeros(3)}
    updates, _ = opt.update({"w": jnp.array([2.0, -1.0, 4.0])}, opt.init(params), params)
    expected = optimizers.default_learning_rate("adam")
    np.testing.assert_allclose(updates["w"], [-expected, expected, -expected], rtol=1e-6)


@pytest.mark.parametrize("name", [n for n in SUITE if n != "lookahead"])
def test_every_optimizer_has_a_positive_default_learning_rate(name):
    assert optimizers.default_learning_rate(name) > 0


def test_lookahead_has_no_learning_rate_of_its_own():
    with pytest.raises(ValueError, match="`inner`"):
        optimizers.default_learning_rate("lookahead")


def _trajectory(opt, steps=8):
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    state = opt.init(params)
    out = []
    for t in range(steps):
        grads = {"w": params["w"] * (t + 1.0) - 0.3}
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(np.asarray(params["w"]))
    return np.asarray(out)


def test_get_lookahead_routes_its_own_and_the_inner_hyperparameters():
    via_registry = optimizers.get(
        "lookahead", inner="adam", learning_rate=0.1, b1=0.8, sync_period=3, slow_step_size=0.7
    )
    direct = optimizers.lookahead(optimizers.adam(0.1, b1=0.8), sync_period=3, slow_step_size=0.7)
    np.testing.assert_array_equal(_trajectory(via_registry), _trajectory(direct))
    # and with a transformation as inner
    wrapped = optimizers.get(
        "lookahead", inner=optimizers.adam(0.1, b1=0.8), sync_period=3, slow_step_size=0.7
    )
    np.testing.assert_array_equal(_trajectory(wrapped), _trajectory(direct))


@pytest.mark.parametrize("inner", [n for n in SUITE if n != "lookahead"])
def test_lookahead_wraps_every_other_optimizer_of_the_suite(inner):
    opt = optimizers.get("lookahead", inner=inner, sync_period=2)
    params = _mixed_params()
    grads = jax.tree.map(jnp.ones_like, params)
    state = opt.init(params)
    for _ in range(2):  # the second step synchronises
        updates, state = jax.eval_shape(opt.update, grads, state, params)
        assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "`lookahead` needs `inner`"),
        ({"inner": "adam", "momentum": 0.9}, "`momentum` is not a hyperparameter of `adam`"),
        ({"inner": "lookahead"}, "must be another optimizer"),
        ({"inner": "adamx"}, "unknown optimizer `adamx`"),
        ({"inner": optax.sgd(0.1), "b1": 0.9}, "`b1` is not a hyperparameter of `lookahead`"),
    ],
)
def test_get_lookahead_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        optimizers.get("lookahead", **kwargs)


# --- construction-time validation -----------------------------------------------------------

BAD_HYPERPARAMETERS = [
    ("sgd", {"learning_rate": -0.1}, "learning_rate", "-0.1"),
    ("adam", {"learning_rate": -1e-3}, "learning_rate", "-0.001"),
    ("adam", {"b1": 1.0}, "b1", "1.0"),
    ("adam", {"b2": -0.1}, "b2", "-0.1"),
    ("adamw", {"b2": 1.5}, "b2", "1.5"),
    ("radam", {"b1": -0.5}, "b1", "-0.5"),
    ("radam", {"threshold": 3.0}, "threshold", "3.0"),
    ("momentum", {"momentum": 1.0}, "momentum", "1.0"),
    ("nesterov", {"momentum": -0.2}, "momentum", "-0.2"),
    ("rmsprop", {"decay": 1.0}, "decay", "1.0"),
    ("adagrad", {"eps": -1.0}, "eps", "-1.0"),
    ("adamw", {"weight_decay": -0.01}, "weight_decay", "-0.01"),
    ("lars", {"momentum": 1.2}, "momentum", "1.2"),
    ("lars", {"trust_coefficient": -1.0}, "trust_coefficient", "-1.0"),
    ("lamb", {"b1": 1.0}, "b1", "1.0"),
    ("ranger", {"sync_period": 0}, "sync_period", "0"),
    ("ranger", {"slow_step_size": 0.0}, "slow_step_size", "0.0"),
    ("rangerlars", {"slow_step_size": 1.5}, "slow_step_size", "1.5"),
    ("paratrooper", {"b2": 1.0}, "b2", "1.0"),
    ("paratrooper", {"sync_period": 2.5}, "sync_period", "2.5"),
    ("lookahead", {"inner": "sgd", "sync_period": -3}, "sync_period", "-3"),
    ("lookahead", {"inner": "sgd", "slow_step_size": 2.0}, "slow_step_size", "2.0"),
]


@pytest.mark.parametrize("name, kwargs, argument, value", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_fail_at_construction_naming_argument_and_value(
    name, kwargs, argument, value
):
    with pytest.raises(ValueError, match=re.escape(f"`{argument}` (={value})")):
        optimizers.get(name, **kwargs)


@settings(max_examples=80, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_decay_rates_are_accepted_exactly_on_zero_to_one(value):
    if 0.0 <= value < 1.0:
        optimizers.adam(1e-3, b1=value)
        optimizers.momentum(1e-3, momentum=value)
    else:
        with pytest.raises(ValueError, match=re.escape(f"`b1` (={value!r})")):
            optimizers.adam(1e-3, b1=value)
        with pytest.raises(ValueError, match="`momentum`"):
            optimizers.momentum(1e-3, momentum=value)


@settings(max_examples=80, deadline=None)
@given(alpha=st.floats(allow_nan=True, allow_infinity=True), k=st.integers(-5, 50))
def test_lookahead_accepts_alpha_in_zero_one_and_k_at_least_one(alpha, k):
    valid = 0.0 < alpha <= 1.0 and k >= 1
    if valid:
        optimizers.lookahead(optimizers.sgd(0.1), sync_period=k, slow_step_size=alpha)
    else:
        with pytest.raises(ValueError, match="`sync_period`|`slow_step_size`"):
            optimizers.lookahead(optimizers.sgd(0.1), sync_period=k, slow_step_size=alpha)


def test_validation_error_is_a_value_error_subclass_exported():
    assert issubclass(optimizers.HyperparameterError, ValueError)


def test_traced_hyperparameters_are_not_validated_at_construction():
    # inject_hyperparams passes arrays; the factories must accept them.
    opt = optax.inject_hyperparams(optimizers.adam)(learning_rate=1e-3, b1=0.9)
    params = {"w": jnp.ones(2)}
    updates, _ = jax.jit(opt.update)({"w": jnp.ones(2)}, opt.init(params), params)
    np.testing.assert_allclose(updates["w"], -1e-3, rtol=1e-5)


# --- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUITE)
def test_learning_rate_schedules_are_honoured(name):
    """A schedule that is 0 at step 0 freezes the first step only; a constant schedule
    reproduces the float learning rate exactly."""
    lr = 0.5 if name == "lars" else 1e-2
    delayed = build(name, learning_rate=lambda count: jnp.where(count < 1, 0.0, lr))
    params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(0.3)}
    grads = {"w": jnp.array([0.4, -1.0, 2.0]), "b": jnp.array(-0.7)}
    state = delayed.init(params)
    first, state = delayed.update(grads, state, params)
    second, _ = delayed.update(grads, state, params)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree.leaves(first))
    assert all(float(jnp.max(jnp.abs(u))) > 0.0 for u in jax.tree.leaves(second))

    scheduled = _trajectory(build(name, learning_rate=optax.constant_schedule(lr)))
    plain = _trajectory(build(name, learning_rate=lr))
    np.testing.assert_allclose(scheduled, plain, rtol=1e-6)


# --- pytrees, dtypes, jit -------------------------------------------------------------------


def _mixed_params():
    return {
        "dense": {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.zeros(4)},
        "scale": jnp.array(1.5, jnp.float32),  # a scalar leaf
        "half": {"w": jnp.linspace(0.5, 2.0, 6, dtype=jnp.bfloat16).reshape(2, 3)},
        "pair": (jnp.array(0.25, jnp.bfloat16), [jnp.ones(2, jnp.float32)]),
    }


def _quadratic(params):
    leaves = jax.tree.leaves(params)
    return sum(jnp.sum((leaf.astype(jnp.float32) - 0.1) ** 2) for leaf in leaves)


@functools.lru_cache(maxsize=None)
def suite_on_mixed_pytree() -> dict:
    """Five jitted steps of every optimizer on the mixed pytree, in one compiled program.

    Each optimizer counts how often its update is traced; one program for the suite compiles
    ~5x faster than fourteen (a retrace of the program would show in every counter, and the
    aval test below names the optimizer responsible).
    """
    opts = {name: build(name, learning_rate=0.5 if name == "lars" else 1e-2) for name in SUITE}
    traces = dict.fromkeys(SUITE, 0)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def step(params, states):
        out = {}
        for name, opt in opts.items():
            traces[name] += 1  # runs only while tracing
            grads = jax.grad(_quadratic)(params[name])
            updates, state = opt.update(grads, states[name], params[name])
            out[name] = (optax.apply_updates(params[name], updates), state, updates)
        return out

    params = {name: _mixed_params() for name in SUITE}
    states = {name: opt.init(params[name]) for name, opt in opts.items()}
    steps = []
    for _ in range(5):
        out = step(params, states)
        steps.append({name: (out[name][2], params[name], out[name][0]) for name in SUITE})
        params = {name: out[name][0] for name in SUITE}
        states = {name: out[name][1] for name in SUITE}
    return {
        name: {
            "traces": traces[name],
            "steps": [step_[name] for step_ in steps],
            "state": states[name],
            "params": params[name],
        }
        for name in SUITE
    }


@pytest.mark.parametrize("name", SUITE)
def test_generic_over_pytrees_and_dtypes(name):
    run = suite_on_mixed_pytree()[name]
    for updates, params, new_params in run["steps"]:
        assert jax.tree.structure(updates) == jax.tree.structure(params)
        leaves = zip(jax.tree.leaves(updates), jax.tree.leaves(params), jax.tree.leaves(new_params))
        for u, p, q in leaves:
            assert u.dtype == p.dtype == q.dtype and u.shape == p.shape
            assert np.all(np.isfinite(np.asarray(u, np.float32)))
    assert float(_quadratic(run["params"])) < float(_quadratic(_mixed_params()))

    # State precision: moments of bfloat16 leaves are float32; only Lookahead's slow weights
    # (a copy of the params) keep the params' dtype.
    state = run["state"]
    slow = getattr(state, "slow", None)
    inner_state = state.inner_state if slow is not None else state
    for leaf in jax.tree.leaves(inner_state):
        assert leaf.dtype != jnp.bfloat16
    if slow is not None:
        dtypes = lambda tree: jax.tree.map(lambda x: x.dtype, tree)  # noqa: E731
        assert dtypes(slow) == dtypes(run["params"])


@pytest.mark.parametrize("name", SUITE)
def test_jitted_step_does_not_recompile_on_later_calls(name):
    assert suite_on_mixed_pytree()[name]["traces"] == 1


@pytest.mark.parametrize("name", SUITE)
def test_state_after_a_step_has_the_avals_of_the_initial_state(name):
    """What the trace counter relies on: same shapes, dtypes and weak types in and out."""
    opt = build(name, learning_rate=1e-2)
    params = _mixed_params()
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, new_state = jax.eval_shape(opt.update, grads, state, params)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for before, after in zip(jax.tree.leaves(state), jax.tree.leaves(new_state)):
        aval = jax.typeof(before)
        assert (after.shape, after.dtype, after.weak_type) == (
            aval.shape,
            aval.dtype,
            aval.weak_type,
        )


def test_lookahead_state_does_not_alias_the_params_so_a_step_can_donate_both():
    opt = optimizers.get("ranger")
    params = _mixed_params()
    state = opt.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1), compiler_options=FAST_COMPILE)
    def step(params, state):
        updates, state = opt.update(jax.grad(_quadratic)(params), state, params)
        return optax.apply_updates(params, updates), state

    params, state = step(params, state)  # raises if one buffer were donated twice
    assert jax.tree.structure(params) == jax.tree.structure(_mixed_params())


# --- house style ----------------------------------------------------------------------------

PUBLIC_FACTORIES = [
    getattr(optimizers, name)
    for name in optimizers.__all__
    if (name.startswith("scale_by_") or name in SUITE) and callable(getattr(optimizers, name))
]


@pytest.mark.parametrize("factory", PUBLIC_FACTORIES, ids=lambda f: f.__name__)
def test_flags_and_masks_are_keyword_only(factory):
    for parameter in inspect.signature(factory).parameters.values():
        is_flag = isinstance(parameter.default, bool) or parameter.name.endswith("mask")
        if is_flag:
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter.name


@pytest.mark.parametrize("factory", PUBLIC_FACTORIES, ids=lambda f: f.__name__)
def test_docstrings_give_the_update_as_math(factory):
    assert ".. math::" in (inspect.getdoc(factory) or "")


def test_docs_rosenbrock_table_is_the_code_table():
    """docs/optimizers.md shows optimizers.ROSENBROCK; the two must not drift apart."""
    text = (Path(__file__).parent.parent / "docs" / "optimizers.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|\s*([0-9.e+-]+)\s*\|\s*(\d+)\s*\|\s*(\w+)\s*\|", line)
        if match:
            rows[match[1]] = (float(match[2]), int(match[3]), match[4] == "cosine")
    expected = {
        name: (setting.learning_rate, setting.steps, setting.cosine_decay)
        for name, setting in optimizers.ROSENBROCK.items()
    }
    assert rows == expected
