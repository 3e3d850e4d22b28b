import jax
import numpy as np
import pytest

import landscape
from landscape.directions import random_plane
from landscape.errors import InputError
from landscape.grid import Grid, evaluate_surface, point_params
from landscape.workload import dataset_mean


def _direct(workload, state, plane, grid):
    """Per-point reference: loop over points, build θ, evaluate the full-dataset loss."""
    full, rest = workload.train.split_batches(workload.batch_size)
    loss = jax.jit(lambda p: dataset_mean(workload.loss, p, state, full, rest)["loss"])
    z = np.empty(grid.num_points)
    for i, (a, b) in enumerate(grid.coordinates()):
        z[i] = float(loss(point_params(plane, np.float32(a), np.float32(b))))
    return z.reshape(grid.shape)


@pytest.mark.parametrize("chunk, use_stem", [(None, True), (5, True), (5, False)])
def test_surface_equals_direct_per_point_evaluation(small_sine, trained_small_sine, chunk, use_stem,
                                                    monkeypatch):
    from landscape import grid as grid_module

    assert small_sine.stem is not None  # the shared-first-layer path is the one under test
    # Its single input makes the stem not worth it by default: forced here, so it is tested.
    monkeypatch.setattr(grid_module, "STEM_MIN_FAN_IN", 1)
    plane = random_plane(trained_small_sine.params, seed=1, ignore="none")
    grid = Grid.from_specs("-1:1:7", "-0.5:1:4")  # non-square on purpose
    got = evaluate_surface(small_sine, trained_small_sine.state, plane, grid, chunk=chunk,
                           use_stem=use_stem)
    want = _direct(small_sine, trained_small_sine.state, plane, grid)
    assert got["train_loss"].shape == (4, 7)
    np.testing.assert_allclose(got["train_loss"], want, rtol=1e-5, atol=1e-7)


def test_non_square_orientation_is_ny_nx(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=2)
    grid = Grid(np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.5]))
    z = evaluate_surface(small_sine, trained_small_sine.state, plane, grid)["train_loss"]
    assert z.shape == (2, 3)
    # Z[iy, ix] is the point (x[ix], y[iy]): Z[0, 1] is the origin itself.
    np.testing.assert_allclose(z[0, 1], trained_small_sine.losses[-1], rtol=1e-5)
    theta = point_params(plane, np.float32(1.0), np.float32(0.5))
    full, rest = small_sine.train.split_batches(small_sine.batch_size)
    np.testing.assert_allclose(
        z[1, 2], float(dataset_mean(small_sine.loss, theta, {}, full, rest)["loss"]), rtol=1e-5
    )


def test_one_dimensional_line(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=3, dims=1)
    grid = Grid.from_specs("-1:1:5")
    got = evaluate_surface(small_sine, trained_small_sine.state, plane, grid)["train_loss"]
    np.testing.assert_allclose(got, _direct(small_sine, {}, plane, grid), rtol=1e-5)


def test_done_points_are_skipped_and_reported(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=1)
    grid = Grid.from_specs("-1:1:4", "-1:1:3")
    done = np.zeros(grid.shape, bool)
    done[0] = True
    seen = []
    got = evaluate_surface(small_sine, {}, plane, grid, done=done, chunk=4,
                           on_chunk=lambda index, values: seen.extend(index.tolist()))
    assert sorted(seen) == list(range(4, 12))
    assert np.all(np.isnan(got["train_loss"][0])) and np.all(np.isfinite(got["train_loss"][1:]))


def test_unknown_metric_and_split_are_refused(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params)
    grid = Grid.from_specs("-1:1:3", "-1:1:3")
    with pytest.raises(InputError, match="available: loss"):
        evaluate_surface(small_sine, {}, plane, grid, metrics=("acc",))
    with pytest.raises(InputError, match="train, test"):
        evaluate_surface(small_sine, {}, plane, grid, splits=("valid",))


def test_four_devices_equal_one_device(small_sine, trained_small_sine):
    assert len(jax.devices()) == 4  # tests/conftest.py
    plane = random_plane(trained_small_sine.params, seed=4)
    grid = Grid.from_specs("-1:1:5", "-1:1:3")
    one = jax.make_mesh((1,), ("points",), axis_types=(jax.sharding.AxisType.Auto,),
                        devices=jax.devices()[:1])
    got1 = evaluate_surface(small_sine, {}, plane, grid, mesh=one, chunk=4)
    got4 = evaluate_surface(small_sine, {}, plane, grid, chunk=4)  # all four devices
    np.testing.assert_allclose(got4["train_loss"], got1["train_loss"], rtol=1e-6)


def test_evaluate_points_runs_any_point_function(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params, seed=5)
    grid = Grid.from_specs("-1:1:3", "0:1:2")
    norms = landscape.grid.evaluate_points(
        lambda theta, data: {"sq": sum(jax.numpy.sum(w**2) for w in jax.tree.leaves(theta)) * data},
        2.0, plane, grid)
    for (a, b), value in zip(grid.coordinates(), norms["sq"].ravel()):
        theta = point_params(plane, a, b)
        want = 2.0 * sum(float(np.sum(np.asarray(w, np.float64) ** 2)) for w in jax.tree.leaves(theta))
        np.testing.assert_allclose(value, want, rtol=1e-5)


def test_huge_grid_is_refused_up_front_with_the_estimate(small_sine, trained_small_sine):
    plane = random_plane(trained_small_sine.params)
    with pytest.raises(InputError, match=r"needs about .* GiB .* available"):
        evaluate_surface(small_sine, {}, plane, Grid.from_specs("-1:1:200000", "-1:1:200000"))


def test_default_chunk_comes_from_memory_and_is_capped(small_sine, trained_small_sine):
    from landscape import grid as grid_module

    plane = random_plane(trained_small_sine.params)
    g = Grid.from_specs("-1:1:30", "-1:1:20")
    sizes = []
    evaluate_surface(small_sine, {}, plane, g, on_chunk=lambda index, values: sizes.append(index.size))
    assert max(sizes) == grid_module.MAX_CHUNK and sum(sizes) == g.num_points


def test_default_chunk_keeps_the_working_set_in_cache_and_memory(small_sine, trained_small_sine,
                                                                  monkeypatch):
    from landscape import grid as grid_module

    plane = random_plane(trained_small_sine.params)
    g = Grid.from_specs("-1:1:30", "-1:1:20")
    devices = jax.device_count()

    def chunk_sizes():
        sizes = []
        evaluate_surface(small_sine, {}, plane, g, on_chunk=lambda index, _: sizes.append(index.size))
        assert sum(sizes) == g.num_points
        return max(sizes)

    monkeypatch.setattr(grid_module, "WORKING_SET_BYTES", 1)  # nothing fits in cache: one each
    assert chunk_sizes() == devices
    monkeypatch.setattr(grid_module, "WORKING_SET_BYTES", 2**40)
    assert chunk_sizes() == grid_module.MAX_CHUNK
    monkeypatch.setattr(grid_module, "MEMORY_FRACTION", 1e-12)  # memory beats the cache rule
    assert chunk_sizes() == devices


def test_the_stem_is_used_only_where_it_saves_work(small_sine, trained_small_sine):
    from landscape.grid import STEM_MIN_FAN_IN, _stem_pays

    params = trained_small_sine.params
    assert np.shape(params["dense0"]["kernel"])[0] == 1 < STEM_MIN_FAN_IN
    assert not _stem_pays(small_sine.stem, params)
    wide = {**params, "dense0": {**params["dense0"], "kernel": np.zeros((64, 64), np.float32)}}
    assert _stem_pays(small_sine.stem, wide)
    assert not _stem_pays(None, wide)
