"""Classic 2D test functions of optimization, as pure ``jnp`` functions of a (2,) array.

Each entry is a :class:`BenchmarkFunction`: the function, its usual plotting box and its known
minima (and saddle points where it has one). They draw the seed article's Figure 1 (Rosenbrock)
and are the landscapes of ``landscape compare``: ``fn`` is jit- and grad-able, and ``start`` is
where a comparison of optimizers starts by default (Rosenbrock: the suite's tuned start).

References: Rosenbrock (1960); Beale (1958); Himmelblau (1972); Rastrigin (1974), in the forms of
https://en.wikipedia.org/wiki/Test_functions_for_optimization.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError

Point = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class BenchmarkFunction:
    """A 2D test function ``fn(theta: (2,)) -> scalar`` with its plotting box and known optima."""

    name: str
    fn: Callable[[jax.Array], jax.Array]
    box: tuple[Point, Point]  # ((xmin, xmax), (ymin, ymax))
    minima: tuple[Point, ...]  # every global minimum (all share ``min_value``)
    min_value: float
    saddles: tuple[Point, ...] = ()
    formula: str = ""
    start: Point | None = None  # where optimizer comparisons start by default

    def __call__(self, theta: jax.Array) -> jax.Array:
        return self.fn(theta)

    def on_grid(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Values on the grid, shaped (ny, nx) — ``Z[iy, ix]`` like surface files."""
        yy, xx = np.meshgrid(np.asarray(y), np.asarray(x), indexing="ij")
        points = jnp.stack([jnp.asarray(xx.ravel()), jnp.asarray(yy.ravel())], axis=1)
        return np.asarray(jax.vmap(self.fn)(points)).reshape(yy.shape)


def rosenbrock_fn(theta: jax.Array, a: float = 1.0, b: float = 100.0) -> jax.Array:
    x, y = theta[0], theta[1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def beale_fn(theta: jax.Array) -> jax.Array:
    x, y = theta[0], theta[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def himmelblau_fn(theta: jax.Array) -> jax.Array:
    x, y = theta[0], theta[1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def rastrigin_fn(theta: jax.Array, a: float = 10.0) -> jax.Array:
    return a * theta.shape[0] + jnp.sum(theta**2 - a * jnp.cos(2 * jnp.pi * theta))


def saddle_fn(theta: jax.Array) -> jax.Array:
    return theta[0] ** 2 - theta[1] ** 2


def noisy_quadratic(seed: int = 0, *, noise: float = 0.3, condition: float = 10.0,
                    num_bumps: int = 6) -> BenchmarkFunction:
    """An ill-conditioned rotated quadratic with a seeded, fixed ripple:

    .. math::
        f(θ) = ½ θᵀ R diag(1, κ) Rᵀ θ + σ Σ_k a_k (1 − cos(ω_k · θ))

    Both terms are ≥ 0 and vanish only at θ = 0 (the ripple with zero gradient there), so the
    global minimum is exactly (0, 0) with f = 0, while the ripple adds local minima around it.
    ``seed`` draws the rotation R and the ripple's (a_k, ω_k); ``noise`` is σ, ``condition`` κ.
    """
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    hessian = jnp.asarray(rotation @ np.diag([1.0, condition]) @ rotation.T)
    amplitudes = jnp.asarray(rng.uniform(0.5, 1.0, num_bumps))
    frequencies = jnp.asarray(rng.normal(0.0, 2.0, (num_bumps, 2)))

    def fn(theta: jax.Array) -> jax.Array:
        ripple = jnp.sum(amplitudes * (1 - jnp.cos(frequencies @ theta)))
        return 0.5 * theta @ hessian @ theta + noise * ripple

    return BenchmarkFunction(
        "noisy_quadratic", fn, ((-3.0, 3.0), (-3.0, 3.0)), ((0.0, 0.0),), 0.0,
        formula=f"½θᵀHθ + {noise}·Σa(1−cos ω·θ), κ={condition}, seed={seed}",
        start=(2.5, -2.0),
    )


FUNCTIONS: dict[str, BenchmarkFunction] = {
    f.name: f
    for f in (
        BenchmarkFunction("rosenbrock", rosenbrock_fn, ((-2.0, 2.0), (-1.0, 3.0)), ((1.0, 1.0),), 0.0,
                          formula="(1 − x)² + 100 (y − x²)²", start=(-1.5, 2.0)),
        BenchmarkFunction("beale", beale_fn, ((-4.5, 4.5), (-4.5, 4.5)), ((3.0, 0.5),), 0.0,
                          formula="(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
                          start=(1.0, 1.5)),
        BenchmarkFunction(
            "himmelblau", himmelblau_fn, ((-5.0, 5.0), (-5.0, 5.0)),
            ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            0.0, formula="(x² + y − 11)² + (x + y² − 7)²", start=(-0.5, -0.5),
        ),
        BenchmarkFunction("rastrigin", rastrigin_fn, ((-5.12, 5.12), (-5.12, 5.12)), ((0.0, 0.0),),
                          0.0, formula="20 + Σ (θᵢ² − 10 cos 2πθᵢ)", start=(2.5, 2.5)),
        BenchmarkFunction("saddle", saddle_fn, ((-2.0, 2.0), (-2.0, 2.0)), (), -math.inf,
                          saddles=((0.0, 0.0),), formula="x² − y² (unbounded below)",
                          start=(1.5, 0.01)),
        noisy_quadratic(0),
    )
}


def names() -> list[str]:
    """Names of the built-in test functions."""
    return sorted(FUNCTIONS)


def get_function(name: str) -> BenchmarkFunction:
    """A test function by name, with an error listing the choices."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise InputError(
            f"`FUNCTION` (={name!r}) is not a known test function; choose one of {', '.join(names())}"
        ) from None


def descent_path(fn: Callable[[jax.Array], jax.Array], start: Point, *, steps: int,
                 lr: float) -> np.ndarray:
    """Plain gradient descent θ ← θ − lr ∇f(θ) from ``start`` in float32 (one compiled
    ``lax.scan``): the (steps + 1, 2) visited points, ``start`` first."""
    grad = jax.grad(fn)

    def step(theta, _):
        theta = theta - lr * grad(theta)
        return theta, theta

    start_point = jnp.asarray(start, jnp.float32)
    _, points = jax.jit(lambda t: jax.lax.scan(step, t, None, length=steps))(start_point)
    return np.concatenate([np.asarray(start_point)[None], np.asarray(points)], axis=0)
