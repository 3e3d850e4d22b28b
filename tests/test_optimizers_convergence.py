"""Every optimizer of the suite minimises Rosenbrock and trains a small sine-regression MLP.

Rosenbrock uses the tuned table ``optimizers.ROSENBROCK`` (the same table docs/optimizers.md
shows); the MLP uses the registry's default learning rates (``optimizers.default_learning_rate``,
the CLI's defaults). Each problem is compiled once for the whole suite.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
import pytest

import optimizers

SINE_STEPS = 1000
# Test programs run once: skip LLVM's expensive passes (compiles ~2x faster).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
SINE_MIN_DROP = 20.0  # final loss at most 1/20 of the initial one


def rosenbrock(xy):
    x, y = xy[0], xy[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _minimise(opt, loss, params, steps):
    def step(carry, _):
        params, state = carry
        updates, state = opt.update(jax.grad(loss)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params


@functools.lru_cache(maxsize=None)
def rosenbrock_final_losses() -> dict:
    start = jnp.array(optimizers.ROSENBROCK_START)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(start):
        return {
            name: rosenbrock(
                _minimise(
                    optimizers.rosenbrock_optimizer(name),
                    rosenbrock,
                    start,
                    optimizers.ROSENBROCK[name].steps,
                )
            )
            for name in optimizers.names()
        }

    return {name: float(loss) for name, loss in run(start).items()}


def test_rosenbrock_table_covers_the_suite():
    assert set(optimizers.ROSENBROCK) == set(optimizers.names())


@pytest.mark.parametrize("name", optimizers.names())
def test_minimises_rosenbrock(name):
    assert rosenbrock(jnp.array(optimizers.ROSENBROCK_START)) == pytest.approx(12.5)
    assert rosenbrock_final_losses()[name] < optimizers.ROSENBROCK_TARGET_LOSS


# --- sine regression: 1-16-16-1 ReLU MLP, full batch ----------------------------------------

SINE_X = jnp.linspace(-jnp.pi, jnp.pi, 128)[:, None]
SINE_Y = jnp.sin(SINE_X)


def init_mlp(key):
    keys = jax.random.split(key, 3)
    sizes = [(1, 16), (16, 16), (16, 1)]
    return [
        {"w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), "b": jnp.zeros(n_out)}
        for k, (n_in, n_out) in zip(keys, sizes)
    ]


def mlp_loss(layers):
    h = SINE_X
    for i, layer in enumerate(layers):
        h = h @ layer["w"] + layer["b"]
        if i < len(layers) - 1:
            h = jax.nn.relu(h)
    return jnp.mean((h - SINE_Y) ** 2)


def _sine_optimizer(name):
    if name == "lookahead":
        return optimizers.get("lookahead", inner="adam")
    return optimizers.get(name)


@functools.lru_cache(maxsize=None)
def sine_losses() -> dict:
    params = init_mlp(jax.random.PRNGKey(0))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(params):
        return {
            name: mlp_loss(_minimise(_sine_optimizer(name), mlp_loss, params, SINE_STEPS))
            for name in optimizers.names()
        }

    initial = float(mlp_loss(params))
    return initial, {name: float(loss) for name, loss in run(params).items()}


@pytest.mark.parametrize("name", optimizers.names())
def test_trains_the_sine_mlp(name):
    initial, final = sine_losses()
    assert initial > 0.3  # an untrained network: sin has variance 0.5 on [-π, π]
    assert final[name] < initial / SINE_MIN_DROP
