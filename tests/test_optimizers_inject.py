"""``optax.inject_hyperparams`` works for every optimizer of the suite (issue 18: lookahead,
ranger, rangerlars and paratrooper failed at init, their ``sync_period`` arriving as an array):
the injected optimizer's updates equal the plain one's, with its numeric hyperparameters held
in the state where a schedule or a training loop can change them."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimizers


LOOKAHEAD_FAMILY = ("lookahead", "ranger", "rangerlars", "paratrooper")


def _factory_and_kwargs(name):
    kwargs = {"sync_period": 2} if name in LOOKAHEAD_FAMILY else {}  # a sync at step 2
    if name == "lookahead":  # wraps a transformation, which must stay static
        return (lambda learning_rate, sync_period=6, slow_step_size=0.5: optimizers.lookahead(
            optimizers.adam(learning_rate), sync_period, slow_step_size)), kwargs
    return getattr(optimizers, name), kwargs


@pytest.mark.parametrize("name", optimizers.names())
def test_inject_hyperparams_gives_the_plain_optimizers_updates(name):
    factory, kwargs = _factory_and_kwargs(name)
    rate = 0.01
    injected = optax.inject_hyperparams(factory)(learning_rate=rate, **kwargs)
    plain = factory(rate, **kwargs)
    params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, -0.2])}
    state_i, state_p = injected.init(params), plain.init(params)
    assert float(state_i.hyperparams["learning_rate"]) == pytest.approx(rate)
    if kwargs:
        assert int(state_i.hyperparams["sync_period"]) == 2
    for k in range(2):  # op by op (no jit): 14 compilations would cost more than they check
        grads = jax.tree.map(lambda p, k=k: jnp.sin(p * (k + 1)), params)
        u_i, state_i = injected.update(grads, state_i, params)
        u_p, state_p = plain.update(grads, state_p, params)
        # Injected hyperparameters are float32 arrays: RAdam's rectifier and the bias
        # corrections then use float32(β2), not β2 in double precision (optimizers.numerics).
        for a, b in zip(jax.tree.leaves(u_i), jax.tree.leaves(u_p)):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-9)
        params = optax.apply_updates(params, u_p)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_bad_sync_period_is_still_refused_concrete_or_as_an_array(bad):
    for value in (bad, np.asarray(bad)):
        with pytest.raises(optimizers.HyperparameterError, match="`sync_period`"):
            optimizers.lookahead(optimizers.sgd(0.1), sync_period=value)


def test_the_eps_placement_is_checked():
    """(Ranger adds ε to √v as its reference code does: the NumPy transcription of that code in
    test_optimizers_transcriptions.py checks its trajectory; RAdam keeps ε on √v̂.)"""
    for factory in (optimizers.scale_by_radam, lambda **kw: optimizers.radam(1e-3, **kw)):
        with pytest.raises(optimizers.HyperparameterError,
                           match="`eps_on` \\(='vhat'\\) must be one of v_hat, v"):
            factory(eps_on="vhat")
