"""The training loop: one compilation, determinism, recording, shared starts, BatchNorm state."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import landscape
from landscape.data.classification import classification_workload
from landscape.data.spirals import spirals
from landscape.errors import InputError
from landscape.models import pure_modes
from landscape.train_loop import OptimizerSpec, make_train_step, train
from landscape.workload import Batch, dataset_mean


@pytest.fixture(scope="module")
def tiny():
    """Spirals with 64 training samples and an 8-unit MLP: 4 batches of 16 per epoch."""
    return spirals(num_train=64, num_test=32, hidden=(8,))


class BatchNormMLP(nnx.Module):
    def __init__(self, rngs):
        self.dense0 = nnx.Linear(2, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, momentum=0.9, rngs=rngs)
        self.dense1 = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.dense1(jax.nn.relu(self.bn(self.dense0(x))))


@pytest.fixture(scope="module")
def tiny_bn(tiny):
    return classification_workload("tiny-bn", pure_modes(BatchNormMLP), tiny.train, tiny.test,
                                   input_shape=(2,), batch_size=64, has_state=True)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_step_compiles_once(tiny):
    traces = []

    def counting_loss(params, state, batch):
        traces.append(1)  # runs only while JAX traces the step
        value, metrics = tiny.loss(params, state, batch)
        return value, (metrics, state)

    wl = dataclasses.replace(tiny, train_loss=counting_loss)
    run = train(wl, optax.sgd(0.1), steps=25, batch_size=16, record_every=10)
    assert len(traces) == 1 and run.num_steps == 25  # 25 steps over 7 epochs, one trace

    traces.clear()
    step = make_train_step(wl, optax.sgd(0.1))
    params, state = wl.init(jax.random.key(0))
    opt_state = optax.sgd(0.1).init(params)
    data = Batch(jnp.asarray(wl.train.inputs), jnp.asarray(wl.train.targets))
    order = jnp.arange(64).reshape(4, 16)
    params, opt_state, state, _ = step(params, opt_state, state, data, order, 0)
    params, opt_state, state, _ = step(params, opt_state, state, data, order, 1)
    assert len(traces) == 1 and step._cache_size() == 1


def test_same_seed_gives_a_bit_identical_trajectory(tiny):
    runs = [train(tiny, "adam", steps=12, batch_size=16, seed=seed, record_every=3)
            for seed in (5, 5, 6)]
    first, again, other = (run.trajectory for run in runs)
    for name in ("step", "epoch", "train_loss", "test_loss", "train_acc", "test_acc"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert_trees_equal(first.params, again.params)
    assert not np.array_equal(first.params["dense0"]["kernel"], other.params["dense0"]["kernel"])


def test_full_batch_sgd_matches_a_plain_gradient_descent_loop(small_sine):
    lr, steps = 0.05, 6
    run = train(small_sine, optax.sgd(lr), steps=steps, batch_size=len(small_sine.train),
                seed=3, record_every=1)
    params, state = small_sine.init(jax.random.split(jax.random.key(3))[0])
    batch = Batch(small_sine.train.inputs, small_sine.train.targets)
    grad = jax.jit(jax.grad(lambda p: small_sine.loss(p, state, batch)[0]))
    for step in range(steps + 1):
        for got, want in zip(jax.tree.leaves(run.params_at(step)), jax.tree.leaves(params)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        params = jax.tree.map(lambda p, g: p - lr * g, params, grad(params))


def test_recorded_steps_epochs_and_metrics(tiny):
    seen_steps, records = [], []
    run = train(tiny, "sgd", steps=25, batch_size=16, record_every=10,
                callback=lambda step, loss: seen_steps.append(step), on_record=records.append)
    trajectory = run.trajectory
    assert trajectory.step.tolist() == [0, 10, 20, 25]
    assert trajectory.epoch.tolist() == [step // 4 for step in (0, 10, 20, 25)]
    assert seen_steps == list(range(1, 26)) and [r["step"] for r in records] == [0, 10, 20, 25]
    assert all(0.0 <= a <= 1.0 for a in (*trajectory.train_acc, *trajectory.test_acc))
    # The recorded metrics are exact full-dataset means at the recorded params.
    final = run.params_at(25)
    assert_trees_equal(final, run.params)
    exact = dataset_mean(tiny.loss, final, run.state, *tiny.test.split_batches(7))
    np.testing.assert_allclose(trajectory.test_loss[-1], exact["loss"], rtol=1e-5)
    np.testing.assert_allclose(trajectory.test_acc[-1], exact["acc"], rtol=1e-6)
    assert run.final_metrics["test_acc"] == trajectory.test_acc[-1]
    # The leaves carry a leading step axis.
    assert trajectory.params["dense0"]["kernel"].shape == (4, 2, 8)
    with pytest.raises(InputError, match=r"`step` \(=7\) was not recorded"):
        run.params_at(7)


def test_regression_has_no_accuracy(trained_small_sine):
    assert np.isnan(trained_small_sine.trajectory.train_acc).all()
    assert trained_small_sine.trajectory.step.tolist() == [0, 100, 200, 300]
    assert trained_small_sine.losses[-1] < trained_small_sine.losses[0]
    assert trained_small_sine.optimizer["name"] == "custom"


def test_every_optimizer_starts_from_the_given_point(tiny):
    init = tiny.init(jax.random.key(11))
    kept = jax.tree.map(np.array, init)
    runs = [train(tiny, name, steps=3, batch_size=16, init=init) for name in ("sgd", "ranger")]
    for run in runs:
        assert_trees_equal(run.params_at(0), kept[0])
    assert_trees_equal(init, kept)  # the caller's arrays survive the donated steps
    assert not np.array_equal(runs[0].params["dense0"]["kernel"], runs[1].params["dense0"]["kernel"])


def test_batchnorm_state_is_trained_beside_the_params(tiny_bn):
    run = train(tiny_bn, "adam", steps=8, batch_size=16, record_every=4)
    _, initial_state = tiny_bn.init(jax.random.split(jax.random.key(0))[0])
    assert "mean" not in run.params["bn"] and set(run.state["bn"]) == {"mean", "var"}
    assert run.trajectory.state["bn"]["mean"].shape == (3, 8)
    assert not np.allclose(run.state["bn"]["mean"], initial_state["bn"]["mean"])
    assert_trees_equal(run.state_at(8), run.state)
    # Metrics are evaluation mode: running averages of the recorded state.
    exact = dataset_mean(tiny_bn.loss, run.params, run.state, *tiny_bn.train.split_batches(64))
    np.testing.assert_allclose(run.trajectory.train_loss[-1], exact["loss"], rtol=1e-5)


def test_optimizer_by_name_records_its_hyperparameters():
    import optimizers

    spec = OptimizerSpec("adam").resolved()
    assert spec["learning_rate"] == optimizers.default_learning_rate("adam")
    assert {"b1", "b2", "eps"} <= set(spec["hyperparams"])
    spec = OptimizerSpec("momentum", 0.5, {"momentum": 0.8})
    assert spec.resolved()["hyperparams"]["momentum"] == 0.8 and spec.build() is not None
    with pytest.raises(InputError) as info:
        OptimizerSpec("adamm").build()
    assert "`--optimizer` (='adamm')" in str(info.value)
    assert all(name in str(info.value) for name in ("sgd", "adam", "ranger"))
    with pytest.raises(InputError, match="b2"):
        OptimizerSpec("adam", hyperparams={"b2": 1.5}).build()


@pytest.mark.parametrize("kwargs, message", [
    ({"record_every": 0}, r"`record_every` \(=0\) must be >= 1"),
    ({"steps": 0}, r"`steps` \(=0\) must be >= 1"),
    ({"batch_size": 0}, r"`batch_size` \(=0\) must be >= 1"),
])
def test_bad_arguments_are_refused(tiny, kwargs, message):
    with pytest.raises(InputError, match=message):
        train(tiny, "sgd", **{"steps": 2, **kwargs})


def test_the_old_call_still_works(small_sine):
    losses = []
    result = landscape.train(small_sine, optax.adam(1e-2), steps=4, seed=0, record_every=4,
                             callback=lambda step, loss: losses.append(float(loss)))
    assert len(losses) == 4 and result.losses[-1] > 0 and result.state == {}
    assert isinstance(result, landscape.TrainResult)


def test_host_copies_are_not_views_of_donated_buffers(tiny):
    # If a recorded snapshot aliased a device buffer, the next (donating) step would change it.
    run = train(tiny, "sgd", steps=4, batch_size=16, record_every=1)
    kernels = run.trajectory.params["dense0"]["kernel"]
    assert all(not np.array_equal(kernels[i], kernels[i + 1]) for i in range(4))
