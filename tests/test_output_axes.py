"""Filter normalization along each framework's output axis (Li et al. 2018: per output filter,
‖d_f‖ = ‖w_f‖; 1-D tensors zeroed with `biasbn`), checked in numpy from the layouts the
frameworks document: Equinox's Conv2d weight (out, in, h, w) and Linear weight (out, in), Flax's
Conv kernel (h, w, in, out) and Linear kernel (in, out)."""

import json

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import landscape
from landscape.adapters import objective_from, output_axis_of
from landscape.check import check_surface
from landscape.directions import (layout_spec, normalize_direction, output_axes, pca_plane,
                                  random_plane)
from landscape.errors import InputError, ResumeMismatch
from landscape.scan import make_plane

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 2, 4, 4)).astype(np.float32)  # NCHW for Equinox
Y = np.arange(8) % 3


def filter_norms(a, output_axis):
    """‖a_f‖ for each output filter f along ``output_axis``, in float64."""
    a = np.moveaxis(np.asarray(a, np.float64), output_axis, 0)
    return np.linalg.norm(a.reshape(a.shape[0], -1), axis=1)


def assert_filters_normalized(d, w, output_axis):
    np.testing.assert_allclose(filter_norms(d, output_axis), filter_norms(w, output_axis),
                               rtol=1e-5)


class EqxNet(eqx.Module):
    conv: eqx.nn.Conv2d
    dense: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(2, 5, 3, key=k1)  # weight (5, 2, 3, 3), bias (5, 1, 1)
        self.dense = eqx.nn.Linear(5 * 2 * 2, 3, key=k2)  # weight (3, 20), bias (3,)

    def __call__(self, x):
        return self.dense(jnp.tanh(self.conv(x)).reshape(-1))


def eqx_loss(model, batch):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - jax.nn.one_hot(y, 3)) ** 2)


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 5, kernel_size=(3, 3), padding="VALID", rngs=rngs)  # (3,3,2,5)
        self.dense = nnx.Linear(5 * 2 * 2, 3, rngs=rngs)  # kernel (20, 3)

    def __call__(self, x):
        return self.dense(jnp.tanh(self.conv(x)).reshape(x.shape[0], -1))


def nnx_loss(model, batch):
    x, y = batch
    return jnp.mean((model(x) - jax.nn.one_hot(y, 3)) ** 2)


EQX_LAYOUT = {"conv/weight": 0, "conv/bias": None, "dense/weight": 0, "dense/bias": None}


@pytest.fixture(scope="module")
def eqx_scan(tmp_path_factory):
    """An Equinox model and its filter-normalized surface, written to a file."""
    model = EqxNet(jax.random.key(0))
    path = tmp_path_factory.mktemp("eqx") / "surface.h5"
    return model, path, landscape.surface(eqx_loss, model, (X, Y), x="-1:1:2", out=path,
                                          progress=False)


def test_equinox_filter_directions_have_each_output_filters_norm(eqx_scan):
    """Fails before the layout was said: the last axis of an (out, in) weight was taken as its
    filters, and Equinox's (out, 1, 1) conv bias as a one-filter kernel."""
    model, _, surface = eqx_scan
    for d in (surface.plane.d1, surface.plane.d2):  # as read back: by leaf path
        assert_filters_normalized(d["conv"]["weight"], model.conv.weight, 0)
        assert_filters_normalized(d["dense"]["weight"], model.dense.weight, 0)
        # biases: Li et al.'s 1-D rule, the conv's too (PyTorch's is (out,), Equinox's (out, 1, 1))
        assert not np.any(d["conv"]["bias"]) and not np.any(d["dense"]["bias"])
    assert surface.record.output_axis == EQX_LAYOUT


def test_flax_filter_directions_have_each_output_filters_norm():
    """The plane `landscape.surface` makes for an NNX module (its points are not needed)."""
    model = NnxNet(nnx.Rngs(0))
    _, params = objective_from(nnx_loss, model, (X.transpose(0, 2, 3, 1), Y))
    plane = make_plane("filter", params, output_axis=output_axis_of(model, params))
    kernels = {"conv": np.asarray(model.conv.kernel), "dense": np.asarray(model.dense.kernel)}
    for d in (plane.d1, plane.d2):
        for name, w in kernels.items():
            assert_filters_normalized(d[name]["kernel"], w, w.ndim - 1)
            assert not np.any(d[name]["bias"])
    assert plane.output_axis == "last"
    assert layout_spec(plane.output_axis) == {}  # Flax's: the spec of every earlier scan


def test_a_pytree_is_flax_laid_out_unless_told_otherwise():
    w = RNG.normal(size=(4, 3)).astype(np.float32)  # PyTorch's Linear: (out, in)
    params = {"w": w, "b": np.ones(4, np.float32)}
    assert_filters_normalized(random_plane(params).d1["w"], w, 1)  # the documented default
    first = random_plane(params, output_axis="first")
    assert_filters_normalized(first.d1["w"], w, 0)
    assert first.output_axis == "first" and not np.any(first.d1["b"])
    per_leaf = random_plane(params, output_axis={"w": -2, "b": None})  # the same, per leaf
    np.testing.assert_array_equal(per_leaf.d1["w"], first.d1["w"])
    assert per_leaf.output_axis == "first"  # one layout, one record
    # None on a kernel: a leaf without output axis, Li et al.'s rule (copied with ignore none)
    copied = normalize_direction(params, params, ignore="none", output_axis={"w": None, "b": 0})
    np.testing.assert_array_equal(copied["w"], w)


@pytest.mark.parametrize("output_axis, words", [
    ("middle", "must be one of: last, first"),
    ({"w": 0}, "does not have the parameters' structure"),
    ({"w": 0.0, "b": None}, "of leaf 'w' (=0.0) must be an int or None"),
    ({"w": 2, "b": None}, "of leaf 'w' (=2) is not an axis of its shape (4, 3)"),
])
def test_a_bad_output_axis_is_refused_by_name(output_axis, words):
    params = {"w": np.ones((4, 3), np.float32), "b": np.ones(4, np.float32)}
    with pytest.raises(InputError, match="`output_axis`") as info:
        random_plane(params, output_axis=output_axis)
    assert words in str(info.value) and info.value.param == "output_axis"


def test_the_layout_round_trips_through_a_file_and_a_resume_under_another_is_refused(
        eqx_scan):
    model, path, first = eqx_scan
    loaded = landscape.load_surface(path)
    assert loaded.record.output_axis == EQX_LAYOUT == loaded.record.spec["output_axis"]
    assert loaded.plane.output_axis == first.plane.output_axis == tuple(EQX_LAYOUT.items())
    again = landscape.surface(eqx_loss, model, (X, Y), x="-1:1:2", out=path, progress=False)
    np.testing.assert_array_equal(again["train_loss"], first["train_loss"])
    with pytest.raises(ResumeMismatch, match="`output_axis`"):
        landscape.surface(eqx_loss, model, (X, Y), x="-1:1:2", out=path, progress=False,
                          output_axis="last")


def test_check_reads_the_recorded_layout(eqx_scan):
    surface = eqx_scan[2]
    scale = next(f for f in check_surface(surface) if f.topic == "scale")
    assert scale.status == "OK" and "in every filter" in scale.message, scale
    # the same directions normalized along the last axis: every layer's norm still right,
    # its filters' not
    origin = surface.directions["origin"]
    wrong = {**surface.directions, "d1": normalize_direction(
        surface.directions["d1"], origin, output_axis="last")}
    edited = landscape.Surface(surface.grid, surface.values, surface.done, surface.attrs,
                               wrong, surface.trajectories)
    scale = next(f for f in check_surface(edited) if f.topic == "scale")
    assert scale.status == "warning" and "output axis 0 of leaf `conv/weight`" in scale.message


def test_pca_zeroes_the_leaves_without_output_axis():
    base = {"bias": np.ones((3, 1, 1), np.float32), "w": np.ones((3, 2), np.float32)}
    path = [jax.tree.map(lambda a, i=i: a * (1 + 0.1 * i * np.arange(a.size).reshape(a.shape)
                                             ** (i % 2 + 1)), base) for i in range(4)]
    axes = {"bias": None, "w": 0}
    plane = pca_plane(path, ignore="biasbn", output_axis=axes)
    assert not np.any(plane.d1["bias"]) and np.any(plane.d1["w"])
    assert output_axes(base, axes) == [None, 0] and plane.output_axis == (("bias", None),
                                                                          ("w", 0))


def torch_layout_sine():
    """A user workload that says its layout: the sine MLP, declared PyTorch-laid-out."""
    import dataclasses

    from landscape.data.sine import sine

    return dataclasses.replace(sine(num_train=64, num_test=16, hidden=(8,)), output_axis="first")


def test_the_cli_takes_a_user_workloads_layout(tmp_path):
    from click.testing import CliRunner

    from landscape.cli import main

    out = tmp_path / "scan"
    args = ["scan", "--workload", "test_output_axes:torch_layout_sine", "--steps", "1",
            "--grid", "2", "--dims", "1", "--quiet", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    surface = landscape.load_surface(out / "surface.h5")
    assert surface.record.output_axis == "first" == surface.record.spec["output_axis"]
    origin, d1 = surface.directions["origin"], surface.directions["d1"]
    for layer in ("dense0", "dense1"):
        assert_filters_normalized(d1[layer]["kernel"], origin[layer]["kernel"], 0)
    assert CliRunner().invoke(main, args).exit_code == 0  # finished: the same spec


def test_li_direction_files_say_the_layout_their_tensors_are_in(eqx_scan, tmp_path):
    """Li et al.'s direction file of an Equinox scan holds (out, in) tensors: its `layout`
    attribute must not claim Flax's (out last), and it records each leaf's output axis."""
    from landscape.io import li_files, surface_h5

    _, path, _ = eqx_scan
    written = li_files.export(surface_h5.read(path), tmp_path, stem="eqx")
    with h5py.File(written[0]) as f:
        assert f["xdirection/3"].shape == (3, 20)  # dense/weight as the model holds it
        assert f.attrs["layout"] == "per-leaf"
        assert json.loads(f.attrs["output_axis"]) == EQX_LAYOUT
