"""``optimizers.numerics.widen_low_precision``: optax's state in float32 for low-precision leaves,
and nothing at all for float32 leaves."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optimizers.numerics import widen_low_precision


def _params():
    return {"half": jnp.array([0.5, -1.25, 3.0], jnp.bfloat16), "full": jnp.array([2.0, -0.1])}


def test_optax_state_of_a_bfloat16_leaf_is_float32_and_updates_keep_the_gradients_dtype():
    plain, widened = optax.trace(0.9), widen_low_precision(optax.trace(0.9))
    params = _params()
    assert plain.init(params).trace["half"].dtype == jnp.bfloat16  # what is being fixed
    state = widened.init(params)
    assert state.trace["half"].dtype == jnp.float32 and state.trace["full"].dtype == jnp.float32
    # 1 + 2^-10 is not a bfloat16: a float32 velocity keeps it, a bfloat16 one would round it off.
    grads = {"half": jnp.full(3, 1 + 2.0**-10, jnp.bfloat16), "full": jnp.ones(2)}
    exact = {"half": jnp.full(3, 1 + 2.0**-10, jnp.float32), "full": jnp.ones(2)}
    updates, state = widened.update(grads, state, params)
    assert updates["half"].dtype == jnp.bfloat16 and updates["full"].dtype == jnp.float32
    _, state = widened.update(exact, state, params)
    np.testing.assert_array_equal(state.trace["half"], 0.9 * np.float32(1.0) + (1 + 2.0**-10))


def test_float32_leaves_pass_through_untouched():
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    inner = optax.chain(optax.scale_by_learning_rate(0.1), optax.trace(0.9, nesterov=True))
    widened = widen_low_precision(inner)
    state_i, state_w = inner.init(params), widened.init(params)
    for k in range(3):
        grads = jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)), params)
        u_i, state_i = inner.update(grads, state_i, params)
        u_w, state_w = widened.update(grads, state_w, params)
        np.testing.assert_array_equal(u_w["w"], u_i["w"])
    assert jax.tree.structure(state_w) == jax.tree.structure(state_i)
