"""The grid engine (``landscape.engine``) against a direct per-point evaluation: every strategy,
with and without the shared first layer, on an MLP, a CNN, a BatchNorm ResNet and a small
attention model; streamed batches; resume masks, devices, chunk sizing, compile counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from landscape.batches import Batch, Batches, Dataset
from landscape.directions import random_plane
from landscape.engine import chunks, evaluate_points, evaluate_surface, point_params, sizing
from landscape.engine.stem import split_at_stem
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.models import ResNet, SmallCNN, pure_modes
from landscape.objective import Objective, dataset_mean

STRATEGIES = ("vmap", "map")


def _direct(objective, plane, grid, metric="loss"):
    """Per-point reference: loop over points, build θ, evaluate the full-dataset loss."""
    full, rest = objective.data["train"].split_batches(objective.batch_size)
    loss = jax.jit(lambda p: dataset_mean(objective.loss, p, objective.state, full, rest)[metric])
    z = np.empty(grid.num_points)
    for i, (a, b) in enumerate(grid.coordinates()):
        z[i] = float(loss(point_params(plane, np.float32(a), np.float32(b))))
    return z.reshape(grid.shape)


def _classifier(module_fn, inputs, labels, batch_size):
    model = pure_modes(module_fn)
    params, state = model.init(jax.random.key(0))

    def loss(params, state, batch):
        logits = model.apply(params, state, batch.inputs)
        value = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits),
                                              batch.targets[:, None], axis=1))
        return value, {"acc": jnp.mean(jnp.argmax(logits, -1) == batch.targets)}

    objective = Objective(loss, {"train": Dataset(inputs, labels)}, state, batch_size,
                          ("acc",), "test-model")
    return objective, params


def _models():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(24, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 10, 24).astype(np.int32)
    from landscape.models import MLP

    yield "mlp", _classifier(lambda r: MLP((12, 16, 10), rngs=r),
                             rng.normal(size=(50, 12)).astype(np.float32),
                             rng.integers(0, 10, 50).astype(np.int32), 20)
    yield "cnn", _classifier(lambda r: SmallCNN((8, 8, 3), 10, channels=(4, 8), rngs=r),
                             images, labels, 10)
    resnet = _classifier(lambda r: ResNet(8, 4, 10, rngs=r), images, labels, 10)
    objective, params = resnet  # non-trivial running statistics: BatchNorm really normalizes
    state = jax.tree.map(lambda s: s + 0.3 * np.ones_like(s), objective.state)
    yield "resnet", (objective.replace(state=state), params)
    from landscape.data.text import text_gpt

    gpt = text_gpt(num_train=12, num_test=0, context=8, d_model=8, layers=1, heads=2,
                   batch_size=5)  # the built-in GPT, tiny, on the standard library's bytes
    params, state = gpt.init(jax.random.key(0))
    yield "gpt", (gpt.objective(state), params)


MODELS = dict(_models())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_gives_the_direct_per_point_values(name, strategy):
    objective, params = MODELS[name]
    plane = random_plane(params, seed=1, ignore="none")
    grid = Grid.from_specs("-1:1:3", "-0.5:1:2")  # non-square on purpose
    got = evaluate_surface(objective, plane, grid, strategy=strategy, chunk=4)["train_loss"]
    np.testing.assert_allclose(got, _direct(objective, plane, grid), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_the_first_layer_found_in_the_jaxpr_is_the_plain_forward_pass(name):
    objective, params = MODELS[name]
    batch = next(objective.data["train"].batches(objective.batch_size))
    split = split_at_stem(objective.loss, params, objective.state, batch)
    path = jax.tree_util.tree_flatten_with_path(params)[0][split.leaf][0]
    first = {"mlp": "dense0", "cnn": "conv0", "resnet": "stem_conv"}[name]
    assert path[0].key == first and path[-1].key == "kernel"
    kernel = jax.tree.leaves(params)[split.leaf]
    value, metrics = split.finish(params, objective.state, batch,
                                  split.products(kernel, objective.state, batch))
    want, want_metrics = objective.loss(params, objective.state, batch)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    # Linear in the kernel: the product of a sum is the sum of the products.
    other = jax.random.normal(jax.random.key(3), kernel.shape)
    both = split.products(kernel + 2.0 * other, objective.state, batch)
    parts = (split.products(kernel, objective.state, batch)
             + 2.0 * split.products(other, objective.state, batch))
    np.testing.assert_allclose(both, parts, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stem", [True, False])
def test_the_shared_first_layer_changes_nothing_but_rounding(stem):
    objective, params = MODELS["cnn"]
    plane = random_plane(params, seed=2)
    grid = Grid.from_specs("-1:1:3", "-1:1:3")
    plans = []
    got = evaluate_surface(objective, plane, grid, strategy="map", stem=stem,
                           on_plan=plans.append)["train_loss"]
    assert plans[0].stem == ("conv0/kernel" if stem else None)
    np.testing.assert_allclose(got, _direct(objective, plane, grid), rtol=1e-5)


def test_a_one_input_first_layer_is_not_shared(small_sine, trained_small_sine):
    plans = []
    evaluate_surface(small_sine.objective(trained_small_sine.state),
                     random_plane(trained_small_sine.params, dims=1), Grid.from_specs("-1:1:3"),
                     on_plan=plans.append)
    assert plans[0].stem is None  # sine's 1-input layer: a combine costs more than its product


def test_streamed_batches_equal_the_data_in_memory():
    """A re-iterable of batches (a DataLoader, a tf.data pipeline ...) read batch by batch,
    larger than a chunk's working set, gives the resident data's values."""
    objective, params = MODELS["cnn"]
    data = objective.data["train"]
    stream = Batches([Batch(data.inputs[i:i + 7], data.targets[i:i + 7])
                      for i in range(0, len(data), 7)])  # batches of 7, 7, 7, 3
    streamed = objective.replace(data={"train": stream})
    plane = random_plane(params, seed=4)
    grid = Grid.from_specs("-1:1:4", "-1:1:3")
    for strategy in STRATEGIES:
        got = evaluate_surface(streamed, plane, grid, strategy=strategy,
                               metrics=("loss", "acc"))
        np.testing.assert_allclose(got["train_loss"], _direct(objective, plane, grid), rtol=1e-5)
        np.testing.assert_allclose(got["train_acc"], 100 * _direct(objective, plane, grid, "acc"),
                                   rtol=1e-5)


def test_a_second_identical_call_compiles_nothing():
    objective, params = MODELS["mlp"]
    plane, grid = random_plane(params, seed=5), Grid.from_specs("-1:1:5", "-1:1:3")
    evaluate_surface(objective, plane, grid, strategy="vmap")
    compiles = []
    listener = lambda event, duration, **kw: (  # noqa: E731
        compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        other = random_plane(params, seed=6)  # another plane of the same shapes: same program
        got = evaluate_surface(objective, other, grid, strategy="vmap")
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    np.testing.assert_allclose(got["train_loss"], _direct(objective, other, grid), rtol=1e-5)


def test_the_probe_times_each_strategy_and_is_remembered(monkeypatch):
    from landscape.engine import strategy

    monkeypatch.setattr(strategy, "PROBE_WORTH_S", 0.0)  # probe even a scan this short
    objective, params = MODELS["cnn"]
    plane, grid = random_plane(params, seed=7), Grid.from_specs("-1:1:9", "-1:1:9")
    choices, plans = {}, []
    got = evaluate_surface(objective, plane, grid, chunk=4, choices=choices, on_plan=plans.append)
    # Each strategy on all four devices and on one (whose ops then use every core).
    assert plans[0].source == "probe"
    assert set(plans[0].rates) == {f"{s}/{n}" for s in STRATEGIES for n in (4, 1)}
    assert all(rate > 0 for rate in plans[0].rates.values())
    (entry,) = choices.values()
    assert (entry["strategy"], entry["devices"]) == (plans[0].strategy, plans[0].devices)
    np.testing.assert_allclose(got["train_loss"], _direct(objective, plane, grid), rtol=1e-5)
    evaluate_surface(objective, plane, grid, chunk=4, choices=choices, on_plan=plans.append)
    assert plans[1].source == "cache" and plans[1].strategy == plans[0].strategy
    assert plans[1].devices == plans[0].devices


def test_a_scan_the_rule_of_thumb_finishes_soon_is_not_probed():
    objective, params = MODELS["mlp"]
    plans = []
    evaluate_surface(objective, random_plane(params), Grid.from_specs("-1:1:9", "-1:1:9"),
                     chunk=4, on_plan=plans.append)
    assert plans[0].source == "rule" and list(plans[0].rates) == ["vmap/4"]  # timed, alone


def test_a_short_scan_takes_the_rule_of_thumb():
    plans = []
    for name, want in (("mlp", "vmap"), ("cnn", "map")):
        objective, params = MODELS[name]
        evaluate_surface(objective, random_plane(params, dims=1), Grid.from_specs("-1:1:2"),
                         on_plan=plans.append)
        assert (plans[-1].strategy, plans[-1].source) == (want, "rule")


def test_non_square_orientation_is_ny_nx(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=2)
    grid = Grid(np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.5]))
    z = evaluate_surface(small_sine.objective(trained_small_sine.state), plane, grid)["train_loss"]
    assert z.shape == (2, 3)
    # Z[iy, ix] is the point (x[ix], y[iy]): Z[0, 1] is the origin itself.
    np.testing.assert_allclose(z[0, 1], trained_small_sine.losses[-1], rtol=1e-5)
    theta = point_params(plane, np.float32(1.0), np.float32(0.5))
    full, rest = small_sine.train.split_batches(small_sine.batch_size)
    np.testing.assert_allclose(
        z[1, 2], float(dataset_mean(small_sine.loss, theta, {}, full, rest)["loss"]), rtol=1e-5)


def test_one_dimensional_line(small_sine, trained_small_sine):
    objective = small_sine.objective(trained_small_sine.state)
    plane = random_plane(trained_small_sine.params, seed=3, dims=1)
    grid = Grid.from_specs("-1:1:5")
    got = evaluate_surface(objective, plane, grid)["train_loss"]
    np.testing.assert_allclose(got, _direct(objective, plane, grid), rtol=1e-5)


def test_done_points_are_skipped_and_reported(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=1)
    grid = Grid.from_specs("-1:1:4", "-1:1:3")
    done = np.zeros(grid.shape, bool)
    done[0] = True
    seen = []
    got = evaluate_surface(small_sine.objective({}), plane, grid, done=done, chunk=4,
                           on_chunk=lambda index, values: seen.extend(index.tolist()))
    assert sorted(seen) == list(range(4, 12))
    assert np.all(np.isnan(got["train_loss"][0])) and np.all(np.isfinite(got["train_loss"][1:]))


def test_unknown_metric_split_and_strategy_are_refused(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params)
    grid = Grid.from_specs("-1:1:3", "-1:1:3")
    objective = small_sine.objective({})
    with pytest.raises(InputError, match="`metrics` .*available: loss"):
        evaluate_surface(objective, plane, grid, metrics=("acc",))
    with pytest.raises(InputError, match="`split` .*train"):
        evaluate_surface(objective, plane, grid, splits=("valid",))
    with pytest.raises(InputError, match="`strategy` .*auto, vmap, map"):
        evaluate_surface(objective, plane, grid, strategy="pmap")


def test_four_devices_equal_one_device(small_sine, trained_small_sine):
    assert len(jax.devices()) == 4  # tests/conftest.py
    plane = random_plane(trained_small_sine.params, seed=4)
    grid = Grid.from_specs("-1:1:5", "-1:1:3")
    one = jax.make_mesh((1,), ("points",), axis_types=(jax.sharding.AxisType.Auto,),
                        devices=jax.devices()[:1])
    objective = small_sine.objective({})
    got1 = evaluate_surface(objective, plane, grid, mesh=one, chunk=4)
    got4 = evaluate_surface(objective, plane, grid, chunk=4)  # all four devices
    np.testing.assert_allclose(got4["train_loss"], got1["train_loss"], rtol=1e-6)


def test_evaluate_points_runs_any_point_function(trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=5)
    grid = Grid.from_specs("-1:1:3", "0:1:2")
    norms = evaluate_points(
        lambda theta, data: {"sq": sum(jnp.sum(w**2) for w in jax.tree.leaves(theta)) * data},
        2.0, plane, grid)
    for (a, b), value in zip(grid.coordinates(), norms["sq"].ravel()):
        theta = point_params(plane, a, b)
        want = 2.0 * sum(float(np.sum(np.asarray(w, np.float64) ** 2)) for w in jax.tree.leaves(theta))
        np.testing.assert_allclose(value, want, rtol=1e-5)


def test_huge_grid_is_refused_up_front_with_the_estimate(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params)
    with pytest.raises(InputError, match=r"needs about .* GiB .* available"):
        evaluate_surface(small_sine.objective({}), plane,
                         Grid.from_specs("-1:1:200000", "-1:1:200000"))


def _largest_chunk(objective, plane, grid, **options) -> int:
    sizes = []
    evaluate_surface(objective, plane, grid, strategy="vmap",
                     on_chunk=lambda index, _: sizes.append(index.size), **options)
    assert sum(sizes) == grid.num_points
    return max(sizes)


def test_default_chunk_keeps_the_working_set_in_cache_and_memory(small_sine, trained_small_sine,
                                                                  monkeypatch):
    monkeypatch.setattr(chunks, "_programs", type(chunks._programs)())  # size afresh each time
    objective = small_sine.objective({})
    plane = random_plane(trained_small_sine.params)
    grid = Grid.from_specs("-1:1:30", "-1:1:20")
    devices = jax.device_count()
    assert _largest_chunk(objective, plane, grid) == sizing.MAX_CHUNK_CPU
    monkeypatch.setattr(sizing, "CPU_WORKING_SET_BYTES", 1)  # nothing fits in cache: one each
    chunks._programs.clear()
    assert _largest_chunk(objective, plane, grid) == devices
    monkeypatch.setattr(sizing, "CPU_WORKING_SET_BYTES", 2**40)
    monkeypatch.setattr(sizing, "HOST_MEMORY_FRACTION", 1e-12)  # memory beats the cache rule
    chunks._programs.clear()
    assert _largest_chunk(objective, plane, grid) == devices


def test_an_accelerator_sizes_chunks_from_its_free_memory():
    class Device:
        platform = "gpu"

        def __init__(self, limit, used):
            self.stats = {"bytes_limit": limit, "bytes_in_use": used}

        def memory_stats(self):
            return self.stats

    devices = [Device(8 * 2**30, 2**30), Device(8 * 2**30, 3 * 2**30)]  # the fuller one decides
    per_point = 2**20
    want = int(5 * 2**30 * sizing.ACCELERATOR_MEMORY_FRACTION / per_point) * 2
    assert sizing.best_chunk(per_point, devices, todo=10**6) == min(want, sizing.MAX_CHUNK_ACCELERATOR)
    assert sizing.best_chunk(2**32, devices, todo=10**6) == 2  # at least one point per device
    assert sizing.best_chunk(per_point, devices, todo=10**6, max_per_device=8) == 16
