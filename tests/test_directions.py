import jax
import numpy as np
import pytest

from landscape.directions import NORMALIZATIONS, normalize_direction, random_direction, random_plane
from landscape.errors import InputError


def _params():
    k = jax.random.split(jax.random.key(3), 4)
    return {
        "conv": {"kernel": jax.random.normal(k[0], (3, 3, 2, 5)), "bias": jax.random.normal(k[1], (5,))},
        "dense": {"kernel": jax.random.normal(k[2], (7, 4)), "bias": jax.random.normal(k[3], (4,))},
        "scale": np.float32(2.0),
    }


def test_filter_normalization_matches_each_output_filter_norm():
    params = _params()
    d = normalize_direction(random_direction(jax.random.key(0), params), params)
    for name in ("conv", "dense"):
        w, dd = np.asarray(params[name]["kernel"]), np.asarray(d[name]["kernel"])
        # Flax layout: the output filter is the *last* axis.
        for j in range(w.shape[-1]):
            np.testing.assert_allclose(
                np.linalg.norm(dd[..., j]), np.linalg.norm(w[..., j]), rtol=1e-5
            )


def test_biasbn_zeroes_one_dimensional_params_and_none_copies_them():
    params = _params()
    raw = random_direction(jax.random.key(0), params)
    zeroed = normalize_direction(raw, params, ignore="biasbn")
    copied = normalize_direction(raw, params, ignore="none")
    for name in ("conv", "dense"):
        assert not np.any(np.asarray(zeroed[name]["bias"]))
        np.testing.assert_array_equal(copied[name]["bias"], params[name]["bias"])
    assert float(zeroed["scale"]) == 0.0


def test_layer_and_weight_normalizations():
    params = _params()
    raw = random_direction(jax.random.key(1), params)
    layer = normalize_direction(raw, params, normalization="layer")
    np.testing.assert_allclose(
        np.linalg.norm(layer["dense"]["kernel"]), np.linalg.norm(params["dense"]["kernel"]), rtol=1e-5
    )
    weight = normalize_direction(raw, params, normalization="weight")
    np.testing.assert_allclose(
        weight["conv"]["kernel"], np.asarray(raw["conv"]["kernel"]) * np.asarray(params["conv"]["kernel"]),
        rtol=1e-6,
    )
    none = normalize_direction(raw, params, normalization="none")
    np.testing.assert_array_equal(none["dense"]["kernel"], raw["dense"]["kernel"])


def test_random_plane_is_seeded_and_directions_differ():
    params = _params()
    a, b = random_plane(params, seed=5), random_plane(params, seed=5)
    np.testing.assert_array_equal(a.d1["dense"]["kernel"], b.d1["dense"]["kernel"])
    assert not np.allclose(a.d1["dense"]["kernel"], a.d2["dense"]["kernel"])
    assert random_plane(params, dims=1).d2 is None


@pytest.mark.parametrize("kwargs", [{"normalization": "filters"}, {"ignore": "bias"}])
def test_bad_names_list_the_valid_ones(kwargs):
    params = _params()
    with pytest.raises(InputError, match="must be one of"):
        normalize_direction(params, params, **kwargs)


def test_every_normalization_keeps_shapes():
    params = _params()
    raw = random_direction(jax.random.key(2), params)
    for norm in NORMALIZATIONS:
        out = normalize_direction(raw, params, normalization=norm)
        assert jax.tree.map(np.shape, out) == jax.tree.map(np.shape, params)
