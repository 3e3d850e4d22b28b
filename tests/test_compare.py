"""landscape.compare: optimizers run on test functions, the common plane of several paths,
projections with residuals, and the summary table — each against an independent reference
(a plain optax loop, sklearn's PCA, exact geometry)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimizers
from landscape import compare
from landscape.data.functions import FUNCTIONS, get_function
from landscape.errors import InputError

START = (-1.5, 2.0)


def rosenbrock(theta):  # written out here, not taken from landscape.data.functions
    return (1.0 - theta[0]) ** 2 + 100.0 * (theta[1] - theta[0] ** 2) ** 2


def plain_loop(transformation, fn, start, steps):
    """The optax tutorial's loop: a jitted step, called from Python (the comparison runs one
    compiled ``lax.scan``; the two agree to float32 rounding)."""

    @jax.jit
    def step(theta, state):
        updates, state = transformation.update(jax.grad(fn)(theta), state, theta)
        return optax.apply_updates(theta, updates), state

    theta = jnp.asarray(start, jnp.float32)
    state = transformation.init(theta)
    points = [np.asarray(theta)]
    for _ in range(steps):
        theta, state = step(theta, state)
        points.append(np.asarray(theta))
    return np.asarray(points, np.float64)


@pytest.mark.parametrize("name", ["sgd", "adam", "rangerlars"])
def test_run_on_function_is_the_plain_optax_loop_with_the_tuned_setting(name):
    steps = 60
    setting = optimizers.ROSENBROCK[name]
    rate = (optax.cosine_decay_schedule(setting.learning_rate, steps) if setting.cosine_decay
            else setting.learning_rate)
    fn = get_function("rosenbrock").fn
    reference = plain_loop(optimizers.get(name, learning_rate=rate, **setting.hyperparams), fn,
                           START, steps)
    transformation, description = compare.function_optimizer(name, steps=steps)
    points = compare.run_on_function(fn, transformation, START, steps=steps)
    assert points.shape == (steps + 1, 2)
    np.testing.assert_allclose(points, reference, rtol=0, atol=1e-5)
    assert description == {"name": name, "learning_rate": setting.learning_rate,
                           "schedule": "cosine_decay" if setting.cosine_decay else "constant",
                           "hyperparams": dict(setting.hyperparams)}
    values = compare.function_values(fn, points)
    assert values[0] == pytest.approx(12.5)  # f(-1.5, 2)
    np.testing.assert_allclose(values, [float(rosenbrock(p)) for p in points], rtol=1e-5,
                               atol=1e-6)


def test_function_optimizer_takes_a_learning_rate_override_and_refuses_unknown_names():
    _, description = compare.function_optimizer("adam", steps=10, learning_rate=0.5)
    assert description["learning_rate"] == 0.5
    _, wrapped = compare.function_optimizer("lookahead", steps=10)
    assert wrapped["hyperparams"] == {"inner": "adam"}
    with pytest.raises(InputError, match=r"`--optimizer` \(='adamax'\) is not a known optimizer; "
                                         r"choose one of sgd, momentum"):
        compare.function_optimizer("adamax", steps=10)
    with pytest.raises(InputError, match="must be > 0"):
        compare.function_optimizer("sgd", steps=10, learning_rate=0.0)


def test_every_function_has_a_start_inside_its_grid():
    for function in FUNCTIONS.values():
        assert function.start is not None
        grid = compare.function_grid(function.box, 11, include=[function.start])
        assert grid.x[0] <= function.start[0] <= grid.x[-1]
        assert grid.y[0] <= function.start[1] <= grid.y[-1]
    assert FUNCTIONS["rosenbrock"].start == optimizers.ROSENBROCK_START
    wide = compare.function_grid(((-1.0, 1.0), (-1.0, 1.0)), 5, include=[(3.0, 0.0)])
    assert wide.x[-1] == pytest.approx(3.1) and wide.y[0] == -1.0


def _tree(vector):
    """A two-leaf params pytree holding a flat vector of 7 numbers."""
    vector = np.asarray(vector, np.float32)
    return {"w": vector[:4].reshape(2, 2), "b": vector[4:]}


def _flat(tree):
    return np.concatenate([np.ravel(tree["b"]), np.ravel(tree["w"])])  # ravel_pytree order


def test_common_pca_plane_is_sklearns_pca_of_the_union_of_rows():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    init = rng.normal(size=7)
    paths = {name: [_tree(init)] + [_tree(init + np.cumsum(rng.normal(size=(5, 7)), 0)[k])
                                    for k in range(5)] for name in ("a", "b", "c")}
    reference = paths["b"][-1]
    plane = compare.common_plane(paths, reference, kind="pca", reference_name="b")
    # The union, each distinct point once (the shared init once), minus the reference.
    rows = [_flat(paths["a"][0])] + [_flat(t) for p in paths.values() for t in p[1:]]
    rows = np.asarray(rows, np.float64) - _flat(reference)
    assert len(rows) == 16
    pca = PCA(2).fit(rows)
    for direction, component in zip((plane.d1, plane.d2), pca.components_):
        assert abs(abs(_flat(direction) @ component) - 1) < 1e-5
    np.testing.assert_allclose(plane.explained_variance, pca.explained_variance_ratio_,
                               rtol=1e-5)
    np.testing.assert_array_equal(_flat(plane.origin), _flat(reference))
    assert plane.kind == "pca"


def test_paths_inside_the_plane_have_no_residual_and_one_step_off_has_exactly_that():
    rng = np.random.default_rng(1)
    origin, u, v, off = rng.normal(size=(4, 7))
    off -= np.linalg.lstsq(np.stack([u, v], 1), off, rcond=None)[0] @ np.stack([u, v])
    off /= np.linalg.norm(off)  # a unit vector orthogonal to the plane of u, v
    coords = {"a": [(0.5, 0.0), (1.0, 1.0), (2.0, 0.5)], "b": [(0.5, 0.0), (-1.0, 0.5), (0.0, 0.0)]}
    paths = {name: [_tree(origin + x * u + y * v) for x, y in c] for name, c in coords.items()}
    plane = compare.common_plane(paths, paths["b"][-1], reference_name="b")
    lifted = paths["a"][:2] + [_tree(_flat_to_vector(paths["a"][2]) + 0.25 * off)]
    path = compare.compared_path("a", {"learning_rate": 0.1}, lifted, plane,
                                 step=np.array([0, 5, 10]), loss=np.array([3.0, 2.0, 1.0]),
                                 metrics={"train_loss": 1.0, "train_acc": 0.5})
    np.testing.assert_allclose(path.residual, [0, 0, 0.25], atol=1e-5)
    inside = compare.compared_path("b", {}, paths["b"], plane, step=np.arange(3),
                                   loss=np.ones(3), metrics={})
    np.testing.assert_allclose(inside.residual, 0, atol=1e-5)
    assert path.metrics["train_acc"] == 50.0 and math.isnan(path.metrics["test_acc"])
    row = compare.summarize([path], threshold=2.0)[0]
    assert row["steps_to_threshold"] == 5 and row["max_residual"] == pytest.approx(0.25, abs=1e-5)
    assert row["relative_residual"] == pytest.approx(0.25 / path.distance.max(), rel=1e-4)
    expected_length = sum(np.linalg.norm(_flat(lifted[k + 1]) - _flat(lifted[k])) for k in range(2))
    assert row["path_length"] == pytest.approx(expected_length, rel=1e-5)


def _flat_to_vector(tree):
    """Inverse of _tree: the 7 numbers in _tree's order."""
    return np.concatenate([np.ravel(tree["w"]), np.ravel(tree["b"])])


def test_endpoints_plane_puts_the_endpoints_at_unit_coordinates():
    rng = np.random.default_rng(2)
    ends = {name: [_tree(rng.normal(size=7)), _tree(rng.normal(size=7))] for name in "abc"}
    plane = compare.common_plane(ends, ends["a"][-1], kind="endpoints", reference_name="a")
    for name, expected in (("a", (0, 0)), ("b", (1, 0)), ("c", (0, 1))):
        path = compare.compared_path(name, {}, ends[name][-1:], plane, step=np.array([1]),
                                     loss=np.ones(1), metrics={})
        np.testing.assert_allclose([path.x[0], path.y[0]], expected, atol=1e-5)
    two = {"a": ends["a"], "b": ends["b"]}
    plane = compare.common_plane(two, ends["a"][-1], kind="endpoints", reference_name="a",
                                 initial=ends["c"][0])
    np.testing.assert_allclose(_flat(plane.d2), _flat(ends["c"][0]) - _flat(ends["a"][-1]),
                               rtol=1e-6)
    with pytest.raises(InputError, match="two points besides the reference"):
        compare.common_plane(two, ends["a"][-1], kind="endpoints", reference_name="a")
    line = {"a": [_tree(np.zeros(7))], "b": [_tree(np.ones(7))], "c": [_tree(2 * np.ones(7))]}
    with pytest.raises(InputError, match="lie on one line"):
        compare.common_plane(line, line["a"][0], kind="endpoints", reference_name="a")
    with pytest.raises(InputError, match="must be one of pca, endpoints"):
        compare.common_plane(line, line["a"][0], kind="random")


def test_summary_helpers():
    steps = np.array([0, 10, 20, 30])
    assert compare.steps_to_reach(steps, np.array([5.0, 1.0, 0.1, 0.2]), 0.5) == 20
    assert compare.steps_to_reach(steps, np.array([5.0, np.nan, 1.0, 1.0]), 0.5) is None
    assert compare.path_length(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])) == 6.0
    points = np.array([[0.0, 0.0], [1.0, 0.0]])
    a = compare.function_path("a", {"learning_rate": 0.1}, points, np.array([2.0, 1.0]))
    b = compare.function_path("b", {"learning_rate": 0.2}, points, np.array([2.0, np.inf]))
    assert compare.default_threshold([a, b], 0.0) == 1e-4
    assert compare.default_threshold([a, b], -math.inf) == 1.0  # highest finite final loss
    rows = compare.summarize([a, b], 1.0)
    assert [row["steps_to_threshold"] for row in rows] == [1, None]
    assert set(rows[0]) == set(compare.SUMMARY_COLUMNS)
    table = compare.format_summary(rows, 1.0).splitlines()
    assert table[0].split() == ["optimizer", "lr", "steps", "final", "loss", "steps", "to", "1",
                                "path", "length"]  # no test, accuracy or residual column here
    assert table[2].split()[-2] == "never"
    # compare's default grid: the paths alone, an axis that does not spread ±0.25
    from landscape.covering import covering_grid

    grid = covering_grid(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), num=5,
                         include=(), flat=0.25)  # x spans [0, 1], y does not spread
    np.testing.assert_allclose([grid.x[0], grid.x[-1], grid.y[0], grid.y[-1]],
                               [-0.25, 1.25, -0.25, 0.25])


def _run(rows, loss):
    """A landscape.Run whose recorded params are ``rows`` (each 7 numbers) every 10 steps."""
    from landscape.train_loop import Run, Trajectory

    n = len(rows)
    stacked = {"w": np.stack([r[:4].reshape(2, 2) for r in rows]).astype(np.float32),
               "b": np.stack([r[4:] for r in rows]).astype(np.float32)}
    nan = np.full(n, np.nan)
    trajectory = Trajectory(np.arange(n) * 10, np.zeros(n, np.int64), np.asarray(loss, float),
                            nan, nan, nan, stacked, {})
    return Run("toy", {"name": "x", "learning_rate": 0.1}, 0, 10 * (n - 1), 1, 10,
               _tree(rows[-1]), {}, trajectory,
               {"train_loss": float(loss[-1]), "test_loss": 9.0}, {})


def test_runs_on_plane_around_the_shared_initial_point():
    rng = np.random.default_rng(3)
    init = rng.normal(size=7)
    runs = {name: _run([init, *(init + rng.normal(size=(3, 7)))], [4.0, 3.0, 2.0, 1.0])
            for name in ("a", "b")}
    plane, paths, (origin, state, loss) = compare.runs_on_plane(runs, reference=None)
    np.testing.assert_array_equal(_flat(origin), _flat(_tree(init)))
    assert loss == 4.0 and state == {} and [p.name for p in paths] == ["a", "b"]
    for path in paths:
        np.testing.assert_allclose([path.x[0], path.y[0], path.residual[0]], 0, atol=1e-6)
        np.testing.assert_array_equal(path.step, [0, 10, 20, 30])
        assert path.metrics["test_loss"] == 9.0
    plane, paths, (origin, _, loss) = compare.runs_on_plane(runs, kind="endpoints", reference="b")
    assert loss == 1.0
    np.testing.assert_allclose([paths[0].x[-1], paths[0].y[-1]], [1, 0], atol=1e-5)
    np.testing.assert_allclose([paths[0].x[0], paths[0].y[0]], [0, 1], atol=1e-5)  # init: β = 1
