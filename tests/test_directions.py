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


def _flat(tree):
    from jax.flatten_util import ravel_pytree

    return np.asarray(ravel_pytree(tree)[0], np.float64)


def test_orthogonal_and_same_options():
    params = _params()
    plane = random_plane(params, seed=0, orthogonal=True, normalization="layer")
    v1, v2 = _flat(plane.d1), _flat(plane.d2)
    assert abs(v1 @ v2) < 1e-4 * np.linalg.norm(v1) * np.linalg.norm(v2)
    raw = random_plane(params, seed=0, normalization="layer")
    np.testing.assert_allclose(np.linalg.norm(v2), np.linalg.norm(_flat(raw.d2)), rtol=1e-5)
    same = random_plane(params, seed=0, same=True)
    np.testing.assert_array_equal(_flat(same.d1), _flat(same.d2))


def _toy_trajectory(num_steps=12, seed=0):
    """θ_t moving mostly along two fixed directions plus small noise."""
    rng = np.random.default_rng(seed)
    base = _params()
    u = jax.tree.map(lambda w: rng.normal(size=np.shape(w)).astype(np.float32), base)
    v = jax.tree.map(lambda w: rng.normal(size=np.shape(w)).astype(np.float32), base)
    steps = []
    for t in range(num_steps):
        a, b = 3.0 * np.cos(t / 4), 1.0 * np.sin(t / 3)
        steps.append(jax.tree.map(
            lambda w, du, dv: np.asarray(w) + a * du + b * dv + 1e-3 * rng.normal(size=np.shape(w)).astype(np.float32),
            base, u, v))
    return steps


def test_pca_plane_matches_an_independent_svd_of_the_centred_differences():
    from landscape.directions import pca_plane

    traj = _toy_trajectory()
    plane = pca_plane(traj)
    rows = np.stack([_flat(p) - _flat(traj[-1]) for p in traj])
    rows -= rows.mean(0)
    cov_eigvals, cov_eigvecs = np.linalg.eigh(rows.T @ rows)
    top = cov_eigvecs[:, ::-1][:, :2]
    for d, ref in zip((plane.d1, plane.d2), top.T):
        assert abs(abs(_flat(d) @ ref) - 1) < 1e-4  # same axis up to sign
    ratios = cov_eigvals[::-1][:2] / cov_eigvals.sum()
    np.testing.assert_allclose(plane.explained_variance, ratios, rtol=1e-4)
    assert sum(plane.explained_variance) > 0.99
    np.testing.assert_array_equal(_flat(plane.origin), _flat(traj[-1]))


def test_pca_needs_enough_steps():
    from landscape.directions import pca_plane

    with pytest.raises(InputError, match="at least 3 recorded steps"):
        pca_plane(_toy_trajectory(2))


def test_interpolation_plane_passes_through_the_checkpoints():
    from landscape.directions import interpolation_plane
    from landscape.engine import point_params

    a, b, c = _toy_trajectory(3)
    line = interpolation_plane(a, b)
    assert line.d2 is None
    np.testing.assert_allclose(_flat(point_params(line, 1.0, 0.0)), _flat(b), rtol=1e-6)
    plane = interpolation_plane(a, b, c)
    np.testing.assert_allclose(_flat(point_params(plane, 0.0, 1.0)), _flat(c), rtol=1e-6)
    with pytest.raises(InputError, match="different parameter"):
        interpolation_plane(a, {"other": np.zeros(3)})


def test_projection_recovers_in_plane_coordinates_and_residuals():
    from landscape.directions import interpolation_plane
    from landscape.projection import project_onto_plane

    a, b, c = _toy_trajectory(3, seed=1)
    plane = interpolation_plane(a, b, c)
    from landscape.engine import point_params

    points = [point_params(plane, x, y) for x, y in [(0.0, 0.0), (0.5, -1.0), (2.0, 0.25)]]
    proj = project_onto_plane(points, plane)
    np.testing.assert_allclose(proj.x, [0.0, 0.5, 2.0], atol=1e-5)
    np.testing.assert_allclose(proj.y, [0.0, -1.0, 0.25], atol=1e-5)
    assert np.all(proj.residual < 1e-3)
    off = jax.tree.map(lambda w: np.asarray(w) + 1.0, a)  # leaves the plane
    far = project_onto_plane([off], plane)
    n = _flat(a).size
    assert far.residual[0] > 0.1 * np.sqrt(n)
