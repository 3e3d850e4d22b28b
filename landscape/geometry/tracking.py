"""λmax measured while training runs (``landscape train --track-sharpness EVERY``).

Every measurement is a fixed number m of Lanczos steps (default 10) on the Hessian of the
*full training set's* mean loss in evaluation mode — the same matrix as ``landscape hessian``
measures, so the two agree — or, with ``samples``, of a fixed random subset of that many
training samples (cheaper, and a different matrix: Cohen et al. measure on a fixed subset
too), started from the previous measurement's Ritz vector plus a Gaussian part (see
:mod:`landscape.geometry.curvature`). With a fixed m the measurement is one
compiled program with no host round trip; it is dispatched between training steps without
waiting, and fetched later. The top Ritz value is a lower bound on λmax, and its residual
‖Hx − θx‖ (recorded beside it) says how close an eigenvalue lies; warm starts make a few steps
enough once training moves slowly.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from landscape.geometry.curvature import WARM_MIX
from landscape.hessian.lanczos import lanczos_top
from landscape.hessian.operator import hvp_of
from landscape.workload import Dataset, Params, State, Workload, dataset_mean


class SharpnessTracker:
    """Measures λmax at the params it is given, warm-starting each measurement from the last.

    Call it with ``(step, params, state)``; it only dispatches. :meth:`fetch` returns the
    measurements made so far as host numbers (waiting for them).
    """

    def __init__(self, workload: Workload, params: Params, *, num_steps: int = 10,
                 samples: int | None = None, seed: int = 0):
        flat, unravel = ravel_pytree(params)
        self.num_steps = int(min(num_steps, flat.size))
        data = workload.train
        if samples is not None and samples < len(data):
            rows = np.sort(np.random.default_rng(seed).permutation(len(data))[:samples])
            data = Dataset(data.inputs[rows], data.targets[rows])
        self.samples = len(data)
        self.data = jax.device_put(data.split_batches(workload.batch_size))
        loss_fn = workload.loss

        def measure(params, state, previous, data, key):
            w, _ = ravel_pytree(params)

            def loss(u, batches):
                return dataset_mean(loss_fn, unravel(u), state, *batches)["loss"]

            hvp = hvp_of(loss)
            start_key, restart_key = jax.random.split(key)
            fresh = jax.random.normal(start_key, w.shape, w.dtype)
            v0 = previous + WARM_MIX * fresh / jnp.linalg.norm(fresh)
            top = lanczos_top(lambda v, ops: hvp(ops[0], v, ops[1]), (w, data), v0,
                              self.num_steps, restart_key)
            return top.value, top.residual, top.vector

        self._measure = jax.jit(measure)
        key = jax.random.key(seed)
        self._key = jax.random.fold_in(key, 1)
        start = jax.random.normal(key, flat.shape, flat.dtype)
        self._previous = start / jnp.linalg.norm(start)
        self._pending: list[tuple[int, Any, Any]] = []

    def __call__(self, step: int, params: Params, state: State) -> None:
        value, residual, self._previous = self._measure(
            params, state, self._previous, self.data, jax.random.fold_in(self._key, step))
        self._pending.append((step, value, residual))

    def fetch(self, *, before: int | None = None) -> list[tuple[int, float, float]]:
        """The measurements not fetched yet (only those of steps < ``before`` if given),
        as ``(step, λmax, residual)``; waits for them."""
        ready = [p for p in self._pending if before is None or p[0] < before]
        self._pending = self._pending[len(ready):]
        values = jax.device_get([(value, residual) for _, value, residual in ready])
        return [(step, float(v), float(r)) for (step, _, _), (v, r) in zip(ready, values)]


def as_arrays(measurements: list[tuple[int, float, float]]) -> dict[str, np.ndarray]:
    """``{"step", "lambda_max", "residual"}`` arrays from ``(step, λmax, residual)`` rows."""
    rows = list(measurements)
    return {"step": np.asarray([r[0] for r in rows], np.int64),
            "lambda_max": np.asarray([r[1] for r in rows], np.float64),
            "residual": np.asarray([r[2] for r in rows], np.float64)}
