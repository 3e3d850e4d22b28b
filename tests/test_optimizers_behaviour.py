"""Behavioural properties stated by the papers and the article, checked on small constructed cases.

Expected values come from the equations evaluated independently here (NumPy / math), or from a
second optimizer that the property says must coincide (Lookahead with α = 1 is its inner one).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimizers

# Test programs run a few times: skip LLVM's expensive passes (compiles ~2x faster).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def rosenbrock(p):
    x, y = p["xy"][0], p["xy"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _trajectories(opts, params, loss, steps):
    """The params after each step of every optimizer in ``opts``, compiled as one program."""
    grad = jax.grad(loss)

    def trajectory(opt, params):
        def step(carry, _):
            params, state = carry
            updates, state = opt.update(grad(params), state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[1]

    run = jax.jit(lambda p: [trajectory(opt, p) for opt in opts], compiler_options=FAST_COMPILE)
    return run(params)


@pytest.mark.parametrize(
    "make_inner",
    [
        pytest.param(lambda: optimizers.adam(0.05), id="adam"),
        pytest.param(lambda: optimizers.nesterov(1e-3), id="nesterov"),
        pytest.param(lambda: optimizers.lamb(1e-2, weight_decay=1e-2), id="lamb"),
    ],
)
def test_lookahead_with_alpha_one_is_its_inner_optimizer(make_inner):
    wrapped_opt = optimizers.lookahead(make_inner(), sync_period=4, slow_step_size=1.0)
    with jax.enable_x64(True):
        start = {"xy": jnp.array([-1.5, 2.0])}
        wrapped, plain = _trajectories([wrapped_opt, make_inner()], start, rosenbrock, 100)
    wrapped, plain = np.asarray(wrapped["xy"]), np.asarray(plain["xy"])
    assert np.max(np.abs(plain[-1] - plain[0])) > 1e-2
    np.testing.assert_allclose(wrapped, plain, rtol=1e-10, atol=1e-12)


def test_lookahead_params_are_fast_weights_and_synced_every_k_steps():
    k, alpha = 3, 0.5
    inner = optimizers.adam(0.05)
    opt = optimizers.lookahead(inner, sync_period=k, slow_step_size=alpha)
    with jax.enable_x64(True):
        params = {"xy": jnp.array([-1.5, 2.0])}
        state = opt.init(params)
        inner_params, inner_state = params, inner.init(params)
        slow = np.asarray(params["xy"])
        grad = jax.grad(rosenbrock)
        for t in range(1, 3 * k + 1):
            updates, state = opt.update(grad(params), state, params)
            params = optax.apply_updates(params, updates)
            # The inner optimizer, run on the same fast weights, gives the fast step.
            inner_updates, inner_state = inner.update(grad(inner_params), inner_state, inner_params)
            fast = np.asarray(inner_params["xy"] + inner_updates["xy"])
            if t % k:
                np.testing.assert_allclose(params["xy"], fast, rtol=1e-14)
                np.testing.assert_array_equal(state.slow["xy"], slow)
            else:
                slow = slow + alpha * (fast - slow)
                np.testing.assert_allclose(params["xy"], slow, rtol=1e-14)
                np.testing.assert_allclose(state.slow["xy"], slow, rtol=1e-14)
            inner_params = params


def _radam_scalars(t, b1=0.9, b2=0.999):
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    b_t = math.sqrt(1 - b2**t) / (1 - b1**t)
    return r, b_t


def _state_at_step(opt, params, t):
    """opt's initial state with every step counter set to t (the moments stay as given)."""
    state = opt.init(params)
    return jax.tree.map(
        lambda x: jnp.asarray(t, x.dtype) if jnp.issubdtype(x.dtype, jnp.integer) else x, state
    )


@pytest.mark.parametrize("t", [100, 10_000])
def test_paratrooper_trust_ratio_is_bounded_by_one_and_one_over_r_b(t):
    rng = np.random.default_rng(0)
    r, b_t = _radam_scalars(t + 1)
    upper = 1 / (r * b_t)
    update = {"big": rng.normal(size=(4, 4)), "small": rng.normal(size=(4, 4)), "mid": np.ones(3)}
    params = {
        "big": 1e3 * rng.normal(size=(4, 4)),  # ‖θ‖/‖D‖ ≈ 1e3 > upper: clamped to upper
        "small": 1e-3 * rng.normal(size=(4, 4)),  # ratio ≈ 1e-3 < 1: clamped to 1
        "mid": np.full(3, 1.0 + 0.5 * (upper - 1.0)),  # ratio inside [1, upper]
    }
    trust = optimizers.scale_by_paratrooper_trust_ratio()
    with jax.enable_x64(True):
        state = _state_at_step(trust, params, t)
        scaled, _ = trust.update(update, state, params)
    ratio = {k: np.linalg.norm(scaled[k]) / np.linalg.norm(update[k]) for k in update}
    assert ratio["big"] == pytest.approx(upper, rel=1e-12)
    assert ratio["small"] == pytest.approx(1.0, rel=1e-12)
    mid_expected = np.linalg.norm(params["mid"]) / np.linalg.norm(update["mid"])
    assert 1.0 < mid_expected < upper
    assert ratio["mid"] == pytest.approx(mid_expected, rel=1e-12)


def test_paratrooper_step_tends_to_rangers_step():
    """Late in training r_t b_t → 1, so max(1, min(1/(r_t b_t), ·)) → 1: Paratrooper's inner
    step becomes RAdamW's (Ranger's), whatever the weight and step norms."""
    rng = np.random.default_rng(1)
    params = {"w": 50 * rng.normal(size=(8, 8)), "b": rng.normal(size=(8,))}
    grads = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    moments = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    second = jax.tree.map(lambda p: rng.uniform(0.5, 2.0, size=p.shape), params)

    def relative_gap(t):
        para = optimizers.scale_by_paratrooper(weight_decay=1e-2)
        ranger_direction = optax.chain(
            optimizers.scale_by_radam(), optax.add_decayed_weights(1e-2)
        )
        with jax.enable_x64(True):
            states = []
            for opt in (para, ranger_direction):
                state = _state_at_step(opt, params, t)
                radam_state = state[0]._replace(mu=moments, nu=second)
                states.append((radam_state,) + tuple(state[1:]))
            ours, _ = para.update(grads, states[0], params)
            reference, _ = ranger_direction.update(grads, states[1], params)
        return max(
            np.linalg.norm(ours[k] - reference[k]) / np.linalg.norm(reference[k]) for k in params
        )

    early, late = relative_gap(10), relative_gap(20_000)
    r, b_t = _radam_scalars(20_001)
    assert early > 1.0  # the trust ratio matters early (‖W‖/‖D‖ ≫ 1, capped at 1/(r b) ≈ 80)
    assert late <= 1 / (r * b_t) - 1 + 1e-12
    assert late < 1e-4


def test_rangerlars_trust_ratio_clamps_the_weight_norm_at_ten():
    trust = optimizers.scale_by_trust_ratio(max_param_norm=10.0)
    update = {"large": np.full(4, 2.0), "small": np.full(4, 2.0), "zero": np.zeros(4) + 0.5}
    params = {"large": np.full(4, 20.0), "small": np.full(4, 1.5), "zero": np.zeros(4)}
    with jax.enable_x64(True):
        scaled, _ = trust.update(update, trust.init(params), params)
    assert np.linalg.norm(scaled["large"]) == pytest.approx(10.0, rel=1e-12)  # ‖θ‖ = 40 → 10
    assert np.linalg.norm(scaled["small"]) == pytest.approx(3.0, rel=1e-12)  # ‖θ‖ = 3
    np.testing.assert_array_equal(scaled["zero"], update["zero"])  # ‖θ‖ = 0 → ratio 1


def test_rmsprop_first_step_is_a_sign_step_with_the_article_init():
    grads = {"w": jnp.array([3.0, -0.5, 1e-3])}
    params = {"w": jnp.zeros(3)}
    article = optimizers.rmsprop(0.1, decay=0.9, eps=0.0)
    common = optimizers.rmsprop(0.1, decay=0.9, eps=0.0, zero_init=True)
    step_article, _ = article.update(grads, article.init(params), params)
    step_common, _ = common.update(grads, common.init(params), params)
    np.testing.assert_allclose(step_article["w"], -0.1 * np.sign(grads["w"]), rtol=1e-6)
    np.testing.assert_allclose(
        step_common["w"], -0.1 * np.sign(grads["w"]) / math.sqrt(1 - 0.9), rtol=1e-6
    )


def test_adamw_decay_is_added_to_the_update_not_to_the_gradient():
    """With a zero gradient AdamW moves by −ηλθ and its moments stay 0 (L2 would fill them)."""
    opt = optimizers.adamw(0.1, weight_decay=0.5)
    params = {"w": jnp.array([2.0, -4.0])}
    zero = {"w": jnp.zeros(2)}
    updates, state = opt.update(zero, opt.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * params["w"], rtol=1e-6)
    adam_state = state[0]
    np.testing.assert_array_equal(adam_state.mu["w"], 0.0)
    np.testing.assert_array_equal(adam_state.nu["w"], 0.0)


def test_weight_decay_mask_exempts_the_masked_leaves():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = {"w": jnp.full((2, 2), 0.3), "b": jnp.full(2, 0.3)}
    decayed = optimizers.adamw(0.1, weight_decay=0.5, mask=optimizers.no_decay_for_vectors)
    plain = optimizers.adam(0.1)
    u_decayed, _ = decayed.update(grads, decayed.init(params), params)
    u_plain, _ = plain.update(grads, plain.init(params), params)
    np.testing.assert_array_equal(u_decayed["b"], u_plain["b"])
    np.testing.assert_allclose(u_decayed["w"], u_plain["w"] - 0.1 * 0.5, rtol=1e-6)


def test_trust_ratio_mask_leaves_the_plain_direction_on_masked_leaves():
    params = {"w": 5 * jnp.ones((2, 2)), "b": 5 * jnp.ones(2)}
    grads = {"w": jnp.full((2, 2), 0.3), "b": jnp.full(2, 0.3)}
    masked = optimizers.lamb(0.1, trust_ratio_mask=optimizers.no_decay_for_vectors)
    adam = optimizers.adam(0.1, eps=1e-6)
    u_masked, _ = masked.update(grads, masked.init(params), params)
    u_adam, _ = adam.update(grads, adam.init(params), params)
    np.testing.assert_allclose(u_masked["b"], u_adam["b"], rtol=1e-6)  # no trust ratio
    # Trust ratio on w: ‖Δ_w‖ = η‖θ_w‖ = 0.1 × 10.
    assert float(jnp.linalg.norm(u_masked["w"])) == pytest.approx(1.0, rel=1e-5)


def test_radam_takes_momentum_steps_until_the_variance_is_tractable():
    """β2 = 0.999: ρ_1..ρ_5 < 5, so the first five steps are −η m̂ (= −ηg for a constant g)."""
    opt = optimizers.radam(0.1)
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, -3.0])}
    state = opt.init(params)
    for t in range(1, 7):
        updates, state = opt.update(grads, state, params)
        if t <= 5:
            np.testing.assert_allclose(updates["w"], -0.1 * grads["w"], rtol=1e-5)
        else:
            r, _ = _radam_scalars(6)
            # m̂ = g and v̂ = g² for a constant gradient: the rectified step is −η r sign(g).
            np.testing.assert_allclose(updates["w"], -0.1 * r * np.sign(grads["w"]), rtol=1e-5)
