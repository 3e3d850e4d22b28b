"""The Python API names the argument at fault in one line (issue 25), where errors came from
inside JAX or NumPy: an int or str leaf in the params, a `trajectory` or `to=` model with other
leaves (the latter blamed on the loss), `chunk=0` accepted, `metrics="loss"` split into
characters, a list `[x, y]` as data. Integer leaves are buffers: passed on, never perturbed."""

import jax.numpy as jnp
import numpy as np
import pytest

import landscape
from landscape.errors import InputError

X = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
Y = X @ np.array([[1.0], [-2.0], [0.5]], np.float32)
PARAMS = {"w": np.ones((3, 1), np.float32), "b": np.zeros(1, np.float32)}


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def scan(**options):
    base = dict(loss_fn=mse, model=PARAMS, data=(X, Y), x="-1:1:3", progress=False)
    return landscape.surface(**{**base, **options})


def refused(param, message, **options):
    with pytest.raises(InputError) as info:
        scan(**options)
    assert str(info.value) == message and info.value.param == param
    assert "\n" not in str(info.value)


def test_integer_leaves_are_buffers_left_unperturbed():
    """A step counter (int) and a mask (bool) ride along: the surface is the loss at
    origin + a·d1 + b·d2 of the float leaves, the buffers as given (a direct loop)."""
    model = {**PARAMS, "scale": np.int32(3), "mask": np.array([True, False, True])}

    def loss(params, batch):
        x, y = batch
        assert params["scale"].dtype == jnp.int32 and params["mask"].dtype == jnp.bool_
        x = jnp.where(params["mask"], x, 0.0)
        return jnp.mean((params["scale"] * (x @ params["w"]) + params["b"] - y) ** 2)

    surface = scan(loss_fn=loss, model=model)
    d1, d2 = surface.directions["d1"], surface.directions["d2"]
    assert d1["scale"] is None and d2["mask"] is None  # no direction along a buffer
    for iy, b in enumerate(surface.grid.y):
        for ix, a in enumerate(surface.grid.x):
            point = {k: PARAMS[k] + a * np.asarray(d1[k]) + b * np.asarray(d2[k]) for k in PARAMS}
            want = float(loss({**model, **point}, (X, Y)))
            np.testing.assert_allclose(surface.values["train_loss"][iy, ix], want, rtol=1e-5)


def test_a_leaf_that_is_not_numbers_is_named():
    refused("model", "`model` has a leaf 'meta/name' that is not an array of numbers (str "
            "'mlp'); parameters must be arrays (integer arrays are kept as buffers)",
            model={**PARAMS, "meta": {"name": "mlp"}})


def test_other_models_are_checked_against_the_model():
    refused("to", "`to` [0] has no leaf 'b': it must have the leaves and shapes of `model`'s "
            "parameters", directions="interp", dims=1, to=[{"w": PARAMS["w"]}])
    steps = [PARAMS, {**PARAMS, "w": np.zeros((1, 3), np.float32)}]
    refused("trajectory", "`trajectory` [1] has 'w' shaped (1, 3), the model's is (3, 1): it "
            "must have the leaves and shapes of `model`'s parameters", directions="pca",
            trajectory=steps)


@pytest.mark.parametrize("name, value", [("chunk", 0), ("chunk", -1), ("batch_size", 0),
                                         ("batch_size", -5), ("chunk", 2.5)])
def test_sizes_must_be_whole_numbers_from_one(name, value):
    refused(name, f"`{name}` (={value!r}) must be a whole number >= 1 (or None: chosen for "
            "you)", **{name: value})


@pytest.mark.parametrize("value", [0, -5])
def test_the_batch_size_is_checked_before_any_batch_is_cut(value):
    """`objective_from` (under `surface` and `hessian`): -5 raised a bare StopIteration from
    the first batch, 0 meant the default."""
    from landscape.adapters import objective_from

    with pytest.raises(InputError, match=rf"`batch_size` \(={value}\) must be a whole number"):
        objective_from(mse, PARAMS, (X, Y), batch_size=value)
    with pytest.raises(InputError, match=rf"`batch_size` \(={value}\) must be a whole number"):
        landscape.hessian(mse, PARAMS, (X, Y), batch_size=value)


def test_metrics_given_as_one_string_is_not_split_into_characters():
    refused("metrics", "`metrics` (='loss') must be a list of names, e.g. ['loss']",
            metrics="loss")


def test_a_list_of_inputs_and_targets_is_not_taken_for_batches():
    refused("data", "data is a list of arrays shaped (24, 3), (24, 1): not batches of one data "
            "set; give `(inputs, targets)` as a tuple, or a list of batches that are each "
            "`(inputs, targets)`", data=[X, Y])
    refused("data", "batch 0 of the data: every array needs the same non-empty leading sample "
            "axis, found a scalar (no sample axis)", data=[(1.0, 2.0)])
    # a list of batches of one data set is what it says
    batches = [(X[:12], Y[:12]), (X[12:], Y[12:])]
    np.testing.assert_allclose(scan(data=batches).values["train_loss"],
                               scan().values["train_loss"], rtol=1e-6)
