"""Curvature along training and the edge-of-stability thresholds, against closed forms.

References: quadratics with known spectra (λmax, λmin and the trace of H = Q diag(λ) Qᵀ),
eigenvalues of P^{-1/2} H P^{-1/2} from numpy's ``eigvalsh``, the suite optimizers' own
updates (a recorded Adam step is −η m/P with our P), and the linear recurrence of each method on
a 1-D quadratic (its spectral radius crosses 1 at the threshold).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import landscape
from landscape.geometry.tracking import SharpnessTracker
from landscape.geometry import curvature as cv
from landscape.errors import InputError
from landscape.geometry.loss import DataLoss, placed, problem_of
from landscape.geometry.stability import preconditioner, stability_threshold
from landscape.curvature.eigen import lanczos_extremes
from landscape.workload import Dataset, Workload

N = 12
LAMBDAS = np.array([5.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.3, 0.2, 0.1, -0.2, -0.4])


def form(params, h):
    """½ wᵀ H w: one function object for every test, so compilations are shared."""
    return 0.5 * params["w"] @ (h @ params["w"])


def quadratic(h: np.ndarray, centre: np.ndarray) -> Workload:
    """L(w) = ½ (w − c)ᵀ H (w − c) whatever the data (a dummy four-sample set)."""
    h32, c32 = jnp.asarray(h, jnp.float32), jnp.asarray(centre, jnp.float32)

    def loss(params, state, batch):
        d = params["w"] - c32
        return 0.5 * d @ (h32 @ d) + 0.0 * jnp.sum(batch.inputs), {}

    zeros = np.zeros((4, 1), np.float32)
    return Workload(name="quadratic", init=lambda key: ({"w": jnp.zeros(len(h), jnp.float32)}, {}),
                    loss=loss, train=Dataset(zeros, zeros), batch_size=4)


@pytest.fixture(scope="module")
def spectrum():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(N, N)))
    return q @ np.diag(LAMBDAS) @ q.T


@pytest.fixture(scope="module")
def gd_run(spectrum):
    """GD (sgd, lr 0.1 < 2/5) on the quadratic: 40 steps recorded every 10, λmax tracked."""
    centre = np.linspace(-1, 1, N)
    workload = quadratic(spectrum, centre)
    run = landscape.train(workload, "sgd", steps=40, learning_rate=0.1, record_every=10,
                          record_opt_state=True,
                          tracker=SharpnessTracker(workload, every=5, num_steps=N))
    return workload, run


def test_lambda_max_along_a_gd_run_is_the_known_eigenvalue(gd_run):
    workload, run = gd_run
    result = cv.run_curvature(run, workload, lambda_min=True, trace_samples=50, tol=1e-4)
    c = result.curvature
    np.testing.assert_array_equal(c.step, [0, 10, 20, 30, 40])
    np.testing.assert_allclose(c.lambda_max, LAMBDAS.max(), rtol=1e-4)
    np.testing.assert_allclose(c.lambda_min, LAMBDAS.min(), rtol=1e-3)
    assert np.all(np.abs(c.trace - LAMBDAS.sum()) <= 4 * c.trace_stderr)
    assert c.converged.all() and np.isnan(c.preconditioned_max).all()
    assert result.threshold.value == pytest.approx(2 / 0.1) and result.threshold.formula == "2/η"
    assert result.preconditioned == "not an adaptive optimizer"
    # tracked while training: the same eigenvalue at steps 0, 5, ..., 40
    tracked = run.trajectory.sharpness
    np.testing.assert_array_equal(tracked.step, np.arange(0, 41, 5))
    np.testing.assert_allclose(tracked.lambda_max, LAMBDAS.max(), rtol=1e-4)
    assert np.all(tracked.residual < 1e-3)


def test_warm_starts_survive_a_crossing_of_the_top_eigenvalues():
    """Step 1's top eigenvector is step 2's second one: a pure warm start would stop there."""
    tail = np.linspace(1.0, 0.1, N - 2)
    h1, h2 = np.diag([3.0, 2.0, *tail]), np.diag([2.0, 3.0, *tail])
    points = [{"w": np.zeros(N, np.float32)}] * 2
    losses = [DataLoss(form, jnp.asarray(h, jnp.float32)) for h in (h1, h2)]
    c = cv.curvature_along(losses, points, tol=1e-5)
    np.testing.assert_allclose(c.lambda_max, [3.0, 3.0], rtol=1e-5)
    # what the mixing prevents: from e1 alone Lanczos stops at once on the eigenvalue 2
    pure = lanczos_extremes(lambda v, h: h @ v, jnp.asarray(h2, jnp.float32),
                            jnp.eye(N, dtype=jnp.float32)[0], tol=1e-5)
    assert pure.top.values[0] == pytest.approx(2.0) and pure.iterations == 1


def test_warm_starts_take_fewer_steps_than_cold_ones(spectrum):
    """Nearby Hessians (a slowly rotating quadratic): the warm start needs fewer HVPs."""
    rng = np.random.default_rng(1)
    rotation = np.linalg.qr(np.eye(N) + 0.01 * rng.normal(size=(N, N)))[0]
    hs_, h = [], spectrum
    for _ in range(6):
        hs_.append(h)
        h = rotation @ h @ rotation.T
    losses = [DataLoss(form, jnp.asarray(h, jnp.float32)) for h in hs_]
    points = [{"w": np.zeros(N, np.float32)}] * len(hs_)
    warm = cv.curvature_along(losses, points, tol=1e-4)
    cold = cv.curvature_along(losses, points, tol=1e-4, warm=False)
    np.testing.assert_allclose(warm.lambda_max, LAMBDAS.max(), rtol=1e-4)
    np.testing.assert_allclose(cold.lambda_max, LAMBDAS.max(), rtol=1e-4)
    assert warm.lanczos_steps[1:].sum() < cold.lanczos_steps[1:].sum()


def test_preconditioned_sharpness_of_a_diagonal_quadratic_is_max_h_over_p():
    h = np.array([4.0, 1.0, 9.0, 0.5, *np.linspace(0.4, 0.1, N - 4)])
    p = np.array([2.0, 0.1, 30.0, 1.0, *np.ones(N - 4)])
    loss = DataLoss(form, jnp.asarray(np.diag(h), jnp.float32))
    pairs = cv.extreme_eigenvalues(loss, {"w": np.ones(N, np.float32)}, preconditioner={"w": p},
                                   bottom_k=1, tol=1e-6)
    assert pairs.top.values[0] == pytest.approx(np.max(h / p), rel=1e-5)  # 10.0, not max h = 9


def test_preconditioned_sharpness_of_a_dense_quadratic_matches_eigvalsh(spectrum):
    p = np.linspace(0.5, 3.0, N)
    reference = np.linalg.eigvalsh(spectrum / np.sqrt(np.outer(p, p)))
    loss = DataLoss(form, jnp.asarray(spectrum, jnp.float32))
    pairs = cv.extreme_eigenvalues(loss, {"w": np.zeros(N, np.float32)},
                                   preconditioner={"w": p}, bottom_k=1, tol=1e-5)
    assert pairs.top.values[0] == pytest.approx(reference[-1], rel=1e-4)
    assert pairs.bottom.values[0] == pytest.approx(reference[0], rel=1e-3)


def test_adam_preconditioner_reproduces_the_recorded_adam_steps(spectrum):
    """θ_t − θ_{t−1} = −η m_t / P_t with P_t = (1 − β1ᵗ)(√v̂_t + ε) from the recorded state."""
    workload = quadratic(spectrum, np.linspace(-1, 1, N))
    hyper = {"b1": 0.8, "b2": 0.99, "eps": 1e-3}
    run = landscape.train(workload, "adam", steps=3, learning_rate=0.05, hyperparams=hyper,
                          record_opt_state=True)
    traj = run.trajectory
    assert preconditioner("adam", hyper, jax.tree.map(lambda a: a[0], traj.opt_state),
                          run.params) is None  # no second moment before the first step
    for t in (1, 2, 3):
        state = jax.tree.map(lambda a: a[t], traj.opt_state)
        p = preconditioner("adam", hyper, state, run.params)["w"]
        step = traj.params["w"][t] - traj.params["w"][t - 1]
        m = np.asarray(state[0].mu["w"])
        np.testing.assert_allclose(step, -0.05 * m / p, rtol=2e-5, atol=1e-8)


def _spectral_radius(name, a, eta, beta):
    """Of the method's linear recurrence on L = a θ²/2, in the state (θ_t, θ_{t-1}) or (θ, m)."""
    if name == "sgd":
        matrix = np.array([[1 - eta * a]])
    elif name == "momentum":  # θ+ = θ − ηaθ + β(θ − θ−)
        matrix = np.array([[1 + beta - eta * a, -beta], [1, 0]])
    elif name == "nesterov":  # θ+ = θ − ηa(1+β)θ + β(θ − θ−) + ηaβθ−  (gradient at θ + β(θ − θ−))
        matrix = np.array([[1 + beta - eta * a * (1 + beta), -beta + eta * a * beta], [1, 0]])
    else:  # adam with a frozen P = 1: m+ = β m + (1−β) a θ, θ+ = θ − η m+
        matrix = np.array([[1 - eta * (1 - beta) * a, -eta * beta], [(1 - beta) * a, beta]])
    return np.max(np.abs(np.linalg.eigvals(matrix)))


@pytest.mark.parametrize("name, hyper", [("sgd", {}), ("momentum", {"momentum": 0.9}),
                                         ("nesterov", {"momentum": 0.7}), ("adam", {"b1": 0.9})])
def test_thresholds_are_where_the_linear_dynamics_turn_unstable(name, hyper):
    eta = 0.02
    threshold = stability_threshold(name, eta, hyper)
    beta = hyper.get("momentum", hyper.get("b1", 0.0))
    assert _spectral_radius(name, 0.99 * threshold.value, eta, beta) < 1
    assert _spectral_radius(name, 1.01 * threshold.value, eta, beta) > 1
    assert threshold.preconditioned == (name == "adam")
    if name == "adam":
        assert threshold.value == pytest.approx(38 / eta)


def test_the_suites_momentum_diverges_just_above_its_threshold():
    """The optimizer itself (not our recurrence): heavy ball on a 1-D quadratic."""
    eta, beta = 0.1, 0.9
    threshold = stability_threshold("momentum", eta, {"momentum": beta}).value
    for factor, stable in ((0.98, True), (1.02, False)):
        workload = quadratic(np.array([[factor * threshold]]), np.array([1.0]))
        run = landscape.train(workload, "momentum", steps=400, learning_rate=eta,
                              hyperparams={"momentum": beta}, record_every=400, check_every=400)
        assert (run.final_metrics["train_loss"] < 1.0) == stable


def test_no_threshold_without_a_known_rule():
    assert stability_threshold("lamb", 0.01) is None
    assert stability_threshold("sgd", None) is None
    assert preconditioner("sgd", {}, (), {"w": np.ones(2)}) is None


def _mlp_loss(params, state, batch):
    """Mean squared error of a tanh MLP: one function object, so compilations are shared."""
    hidden = jnp.tanh(batch.inputs @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - batch.targets) ** 2), {}


def test_lambda_max_of_an_objective_is_the_dense_float64_eigenvalue():
    """An :class:`~landscape.Objective` made by hand (no workload) is a geometry loss: its λmax
    and λmin (summed over batches of 5, a short last one included) are the extreme eigenvalues
    of the dense ``jax.hessian`` of the whole split's mean loss; a second split is measured
    only when asked for, and the placed data give the same problem."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        splits = {name: Dataset(rng.normal(size=(n, 2)), rng.normal(size=(n, 1)))
                  for name, n in (("train", 13), ("test", 7))}
        params = {"w1": jnp.asarray(rng.normal(size=(2, 4))), "b1": jnp.asarray(rng.normal(size=4)),
                  "w2": jnp.asarray(rng.normal(size=(4, 1)))}
        objective = landscape.Objective(_mlp_loss, splits, batch_size=5)
        flat, unravel = ravel_pytree(params)

        def dense(split):
            data = splits[split]
            whole = lambda w: _mlp_loss(unravel(w), {}, data)[0]  # noqa: E731
            return np.linalg.eigvalsh(np.asarray(jax.hessian(whole)(flat)))

        pairs = landscape.geometry.extreme_eigenvalues(objective, params, bottom_k=1, tol=1e-10,
                                                       max_iter=flat.size)
        reference = dense("train")
        assert float(pairs.top.values[0]) == pytest.approx(reference[-1], rel=1e-8)
        assert float(pairs.bottom.values[0]) == pytest.approx(reference[0], rel=1e-6, abs=1e-8)
        test_split = problem_of(objective, params, split="test")
        assert float(test_split.value()) == pytest.approx(
            float(_mlp_loss(params, {}, splits["test"])[0]), rel=1e-12)
        problem = problem_of(objective, params)
        again = problem_of(placed(objective, problem), params)
        assert placed(objective, problem).splits == ("train", "test")
        v = jnp.asarray(rng.normal(size=flat.size))
        np.testing.assert_allclose(np.asarray(again.hvp(v)), np.asarray(problem.hvp(v)),
                                   rtol=1e-12)
        with pytest.raises(InputError, match="`split`"):
            problem_of(DataLoss(form, None), params, split="test")
