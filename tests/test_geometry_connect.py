"""Mode connectivity against built landscapes, and BatchNorm re-estimation against numpy.

- a double well L(w) = (w₁² − 1)² + w₂²: minima (±1, 0), the linear path's barrier is L(0, 0) = 1;
- a curved valley L(w) = (w₂ − (1 − w₁²))²: zero along the parabola through (±1, 0) and (0, 1),
  which the quadratic Bezier with control (0, 2) traces exactly, while the straight line crosses
  a ridge of height 1;
- a Dense → BatchNorm → Dense model: the statistics re-estimated at a point are the
  sample-weighted means of the per-batch statistics (numpy, from the first layer's outputs), and
  the evaluation loss changes exactly where the stored statistics are stale.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from landscape.data.classification import classification_workload
from landscape.errors import InputError
from landscape.geometry import connect as cn
from landscape.geometry.batch_stats import recompute_batch_stats, state_momentum
from landscape.models import pure_modes
from landscape.projection import project_onto_plane
from landscape.workload import Batch, Dataset, dataset_mean

DUMMY = Batch(np.zeros((8, 1), np.float32), np.zeros((8, 1), np.float32))


def double_well(w):
    return (w["w"][0] ** 2 - 1) ** 2 + w["w"][1] ** 2


def valley(params, batch):
    x, y = params["w"][0], params["w"][1]
    return (y - (1 - x ** 2)) ** 2 + 0.0 * jnp.sum(batch.inputs)


A, B = {"w": np.array([-1.0, 0.0], np.float32)}, {"w": np.array([1.0, 0.0], np.float32)}


def test_linear_barrier_of_a_double_well_is_its_ridge():
    values = cn.evaluate_path(lambda p: {"train_loss": float(double_well(p))},
                              lambda t: cn.linear_point(A, B, t), np.linspace(0, 1, 21))
    assert values["train_loss"][0] == values["train_loss"][-1] == 0.0
    assert cn.barrier(values["train_loss"]) == pytest.approx(1.0)
    assert cn.barriers({"train_loss": values["train_loss"], "train_acc": [100, 40, 90]}) == {
        "train_loss": pytest.approx(1.0), "train_error": pytest.approx(55.0)}


def test_a_trained_bezier_curve_follows_a_curved_valley():
    control = cn.train_bezier(valley, A, B, DUMMY, steps=300, batch_size=8,
                              optimizer=__import__("optax").adam(0.05))
    ts = np.linspace(0, 1, 21)
    along = lambda point: [float(valley(point(t), DUMMY)) for t in ts]
    linear = cn.barrier(along(lambda t: cn.linear_point(A, B, t)))
    curved = cn.barrier(along(lambda t: cn.bezier_point(A, control, B, t)))
    assert linear == pytest.approx(1.0)
    assert curved < 0.01 * linear
    np.testing.assert_allclose(control["w"], [0.0, 2.0], atol=0.05)  # the valley's own curve


def test_the_curve_lies_on_its_plane_at_the_stated_coordinates():
    rng = np.random.default_rng(0)
    a, c, b = ({"k": rng.normal(size=(3, 4)), "b": rng.normal(size=4)} for _ in range(3))
    ts = np.linspace(0, 1, 7)
    plane = cn.curve_plane(a, c, b)
    projection = project_onto_plane([cn.bezier_point(a, c, b, t) for t in ts], plane)
    x, y = cn.curve_coordinates(ts)
    # (the projection flattens through float32: ravel_pytree without x64)
    np.testing.assert_allclose(projection.x, x, atol=1e-6)
    np.testing.assert_allclose(projection.y, y, atol=1e-6)
    assert projection.relative_residual.max() < 1e-6
    assert (x[0], y[0], x[-1], y[-1], x[3], y[3]) == (0, 0, 1, 0, 0, 1)


def test_identical_or_mismatched_endpoints_are_refused():
    with pytest.raises(InputError, match="the two endpoints are the same point"):
        cn.check_endpoints(A, A)
    with pytest.raises(InputError, match="different parameter layouts"):
        cn.check_endpoints(A, {"w": np.zeros(3, np.float32)})


class BatchNormNet(nnx.Module):
    def __init__(self, rngs):
        self.dense0 = nnx.Linear(3, 5, rngs=rngs)
        self.norm = nnx.BatchNorm(5, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.dense1 = nnx.Linear(5, 2, rngs=rngs)

    def __call__(self, x):
        return self.dense1(jax.nn.relu(self.norm(self.dense0(x))))


@pytest.fixture(scope="module")
def bn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32) * 2 + 1
    y = (x[:, 0] > 1).astype(np.int32)
    workload = classification_workload("bn", pure_modes(BatchNormNet), Dataset(x, y), None,
                                       input_shape=(3,), batch_size=16, has_state=True)
    params, state = workload.init(jax.random.key(0))
    other, _ = workload.init(jax.random.key(1))
    return workload, params, state, other


def test_recomputed_statistics_are_the_weighted_batch_means(bn):
    workload, params, state, _ = bn
    x = workload.train.inputs
    pre = x @ np.asarray(params["dense0"]["kernel"]) + np.asarray(params["dense0"]["bias"])
    batches = [pre[:16], pre[16:32], pre[32:]]  # batch size 16: two whole, one of 8
    weights = np.array([16, 16, 8]) / 40
    mean = sum(w * b.mean(0) for w, b in zip(weights, batches))
    var = sum(w * b.var(0) for w, b in zip(weights, batches))  # Flax: biased batch variance
    full, rest = workload.train.split_batches(16)
    new = recompute_batch_stats(workload.train_loss, params, state, full, rest)
    np.testing.assert_allclose(new["norm"]["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["norm"]["var"], var, rtol=1e-5, atol=1e-6)
    # Flax's momentum 0.9 is what was measured
    m = state_momentum(workload.train_loss, params, state, rest)
    np.testing.assert_allclose(m["norm"]["mean"], 0.9, rtol=1e-6)


def test_batchnorm_recomputation_changes_the_loss_where_it_must(bn):
    workload, params, state, other = bn
    full, rest = workload.train.split_batches(16)
    mean = jax.jit(lambda p, s: dataset_mean(workload.loss, p, s, full, rest)["loss"])
    loss = lambda p, s: float(mean(p, s))
    evaluate = cn.workload_evaluator(workload, state)
    stale = cn.workload_evaluator(workload, state, recompute_state=False)
    mid = cn.linear_point(params, other, 0.5)
    true_mid = loss(mid, recompute_batch_stats(workload.train_loss, mid, state, full, rest))
    # between the models the stored statistics are wrong, and the evaluator replaces them
    assert abs(stale(mid)["train_loss"] - true_mid) > 0.05
    assert evaluate(mid)["train_loss"] == pytest.approx(true_mid, rel=1e-6)
    # where the stored statistics are already the re-estimated ones, nothing changes
    fresh = recompute_batch_stats(workload.train_loss, params, state, full, rest)
    settled = cn.workload_evaluator(workload, fresh, recompute_state=False)
    assert evaluate(params)["train_loss"] == pytest.approx(settled(params)["train_loss"], rel=1e-6)


def test_a_state_that_is_not_a_running_average_is_refused(bn):
    workload, params, state, _ = bn

    def squaring(p, s, batch):  # new = old² : not m·old + (1 − m)·stat
        value, (metrics, _) = workload.train_loss(p, s, batch)
        return value, (metrics, jax.tree.map(lambda a: a * a, s))

    with pytest.raises(InputError, match="not a running average of batch statistics"):
        state_momentum(squaring, params, state, Batch(workload.train.inputs[:8],
                                                      workload.train.targets[:8]))


def test_connect_models_without_state_matches_direct_evaluation(bn):
    """A model without BatchNorm: both paths evaluated, curve trained, barriers from them."""
    workload, params, state, other = bn
    plain = dataclasses.replace(workload, train_loss=None)
    result = cn.connect_models(plain, params, other, state, points=5, curve_steps=20,
                               batch_size=8)
    assert result["t"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    full, rest = workload.train.split_batches(16)
    mean = jax.jit(lambda p: dataset_mean(workload.loss, p, state, full, rest)["loss"])
    expected = [float(mean(cn.linear_point(params, other, t))) for t in result["t"]]
    np.testing.assert_allclose(result["linear"]["train_loss"], expected, rtol=1e-5)
    assert set(result["barriers"]) == {"linear", "bezier"}
    assert result["barriers"]["linear"]["train_loss"] == pytest.approx(
        cn.barrier(expected), rel=1e-5)
    assert result["curve_loss"].shape == (20,) and np.isfinite(result["curve_loss"]).all()
