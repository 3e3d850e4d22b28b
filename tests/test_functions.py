"""The 2D test functions: known minima are minima (value, zero gradient, nothing lower on the
box), the saddle is a saddle, the noisy quadratic is seeded, and gradient descent on them
matches the closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from landscape.data.functions import FUNCTIONS, descent_path, get_function, names, noisy_quadratic
from landscape.errors import InputError

WITH_MINIMA = [name for name in names() if FUNCTIONS[name].minima]


@pytest.mark.parametrize("name", WITH_MINIMA)
def test_known_minima_are_global_minima_on_the_box(name):
    function = FUNCTIONS[name]
    grad = jax.grad(function.fn)
    for point in function.minima:
        theta = jnp.asarray(point, jnp.float64 if jax.config.x64_enabled else jnp.float32)
        assert float(function(theta)) == pytest.approx(function.min_value, abs=1e-5)
        np.testing.assert_allclose(grad(theta), 0.0, atol=2e-3)  # Himmelblau: 6 decimals given
    (x0, x1), (y0, y1) = function.box
    z = function.on_grid(np.linspace(x0, x1, 81), np.linspace(y0, y1, 81))
    assert z.min() >= function.min_value - 1e-5


def test_known_values_from_the_literature():
    assert float(FUNCTIONS["rosenbrock"](jnp.array([-1.2, 1.0]))) == pytest.approx(24.2)
    assert float(FUNCTIONS["beale"](jnp.array([0.0, 0.0]))) == pytest.approx(14.203125)
    assert float(FUNCTIONS["himmelblau"](jnp.array([0.0, 0.0]))) == pytest.approx(170.0)
    assert float(FUNCTIONS["rastrigin"](jnp.array([1.0, 1.0]))) == pytest.approx(2.0, abs=1e-5)


def test_saddle_is_a_saddle():
    saddle = FUNCTIONS["saddle"]
    assert saddle.minima == () and saddle.saddles == ((0.0, 0.0),)
    hessian = jax.hessian(saddle.fn)(jnp.zeros(2))
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), [-2.0, 2.0])


def test_on_grid_is_z_iy_ix():
    function = FUNCTIONS["beale"]
    x, y = np.linspace(-1, 2, 5), np.linspace(0, 1, 3)
    z = function.on_grid(x, y)
    assert z.shape == (3, 5)
    assert z[2, 1] == pytest.approx(float(function(jnp.array([x[1], y[2]]))), rel=1e-6)


def test_noisy_quadratic_is_seeded_and_has_its_minimum_at_zero():
    a, b, c = noisy_quadratic(0), noisy_quadratic(0), noisy_quadratic(1)
    theta = jnp.array([0.7, -1.3])
    assert float(a(theta)) == float(b(theta)) != float(c(theta))
    assert float(a(jnp.zeros(2))) == 0.0
    np.testing.assert_allclose(jax.grad(a.fn)(jnp.zeros(2)), 0.0, atol=1e-7)
    assert float(jax.jit(a.fn)(theta)) == pytest.approx(float(a(theta)), rel=1e-6)


def test_unknown_name_lists_the_choices():
    with pytest.raises(InputError, match="choose one of beale, himmelblau, noisy_quadratic"):
        get_function("rosenbrok")


def test_descent_path_matches_the_closed_form_on_a_quadratic():
    # f = |θ|² ⇒ θ_k = (1 − 2 lr)^k θ_0
    path = descent_path(lambda t: jnp.sum(t**2), (1.0, -2.0), steps=5, lr=0.1)
    want = np.array([1.0, -2.0]) * (0.8 ** np.arange(6))[:, None]
    np.testing.assert_allclose(path, want, rtol=1e-6)
