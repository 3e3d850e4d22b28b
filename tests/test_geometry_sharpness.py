"""Sharpness measures against their closed forms on separable quadratics.

For L(w) = ½ Σ h_i (w_i − c_i)² with h_i > 0 the maximum over a box of half-widths b_i around w
sits at the vertex away from c: ½ Σ h_i (|w_i − c_i| + b_i)²; over the ball ‖δ/|w|‖₂ ≤ ρ at
the minimum it is ½ ρ² max_i h_i w_i²; the Gaussian average is ½ ρ² Σ h_i w_i².
"""

import jax.numpy as jnp
import numpy as np
import pytest

from landscape.errors import InputError
from landscape.geometry import sharpness as sh
from landscape.geometry.loss import DataLoss

H = np.array([3.0, 1.0, 0.5, 2.0, 0.25, 1.5])
CENTRE = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.5])


def separable(params, data):
    h, c = data
    return 0.5 * jnp.sum(h * (params["w"] - c) ** 2)


LOSS = DataLoss(separable, (jnp.asarray(H, jnp.float32), jnp.asarray(CENTRE, jnp.float32)))


def test_epsilon_sharpness_away_from_the_minimum_is_the_far_vertex():
    w = CENTRE + np.array([0.3, -0.2, 0.1, 0.4, -0.3, 0.2])
    eps = 1e-2
    found = sh.epsilon_sharpness(LOSS, {"w": w.astype(np.float32)}, epsilon=eps)
    base = 0.5 * np.sum(H * (w - CENTRE) ** 2)
    top = 0.5 * np.sum(H * (np.abs(w - CENTRE) + eps * (np.abs(w) + 1)) ** 2)
    assert found.base_loss == pytest.approx(base, rel=1e-5)
    assert found.perturbed_loss == pytest.approx(top, rel=1e-5)
    # Keskar et al.'s normalization: percent of 1 + L(w)
    assert found.value == pytest.approx(100 * (top - base) / (1 + base), rel=1e-4)


def test_epsilon_sharpness_at_the_minimum_starts_from_random_signs():
    eps = 1e-2
    found = sh.epsilon_sharpness(LOSS, {"w": CENTRE.astype(np.float32)}, epsilon=eps)
    top = 0.5 * np.sum(H * (eps * (np.abs(CENTRE) + 1)) ** 2)  # every vertex
    assert found.value == pytest.approx(100 * top, rel=1e-4)


def test_adaptive_worst_case_at_the_minimum_linf_and_l2():
    rho, w = 0.05, {"w": CENTRE.astype(np.float32)}
    linf = sh.worst_case_sharpness(LOSS, w, rho=rho, norm="linf")
    assert linf.value == pytest.approx(0.5 * rho ** 2 * np.sum(H * CENTRE ** 2), rel=1e-4)
    l2 = sh.worst_case_sharpness(LOSS, w, rho=rho, norm="l2", steps=40)
    assert l2.value == pytest.approx(0.5 * rho ** 2 * np.max(H * CENTRE ** 2), rel=1e-3)
    # not adaptive: c = 1, so the ball's top direction is the largest h
    plain = sh.worst_case_sharpness(LOSS, w, rho=rho, norm="l2", adaptive=False, steps=40)
    assert plain.value == pytest.approx(0.5 * rho ** 2 * H.max(), rel=1e-3)


def test_adaptive_average_case_within_its_standard_error():
    rho = 0.1
    found = sh.average_case_sharpness(LOSS, {"w": CENTRE.astype(np.float32)}, rho=rho,
                                      samples=400, batch=100)
    exact = 0.5 * rho ** 2 * np.sum(H * CENTRE ** 2)
    assert found.stderr > 0 and abs(found.value - exact) <= 4 * found.stderr
    assert found.evaluations == 400


@pytest.mark.parametrize("call, message", [
    (lambda: sh.epsilon_sharpness(LOSS, {"w": np.zeros(6, np.float32)}, epsilon=0),
     "`epsilon` (=0) must be a positive finite number"),
    (lambda: sh.worst_case_sharpness(LOSS, {"w": np.zeros(6, np.float32)}, rho=0.1, norm="l1"),
     "`norm` (='l1') must be one of linf, l2"),
    (lambda: sh.average_case_sharpness(LOSS, {"w": np.zeros(6, np.float32)}, rho=0.1, samples=1),
     "`samples` (=1) must be >= 2"),
])
def test_bad_arguments_raise_input_errors(call, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
