"""λmax measured while training runs (``landscape train --track-sharpness EVERY``).

Every measurement is a fixed number m of Lanczos steps (default 10) on the Hessian of the
*full training set's* mean loss in evaluation mode — the same matrix as ``landscape hessian``
measures, so the two agree — or, with ``samples``, of a fixed random subset of that many
training samples (cheaper, and a different matrix: Cohen et al. measure on a fixed subset
too), started from the previous measurement's Ritz vector plus a Gaussian part (see
:mod:`landscape.geometry.curvature`). Every HVP sums the batches' products, so a measurement
holds one batch's activations whatever the training set's size. With a fixed m the
measurement is one compiled program with no host round trip (on the CPU with convolutions, m
host-stepped Lanczos updates: :mod:`landscape.curvature.linear`); it is dispatched between
training steps without waiting, and fetched later. The top Ritz value is a lower bound on λmax, and its residual
‖Hx − θx‖ (recorded beside it) says how close an eigenvalue lies; warm starts make a few steps
enough once training moves slowly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from landscape.curvature.host_loop import lanczos_top_on_host
from landscape.curvature.lanczos import lanczos_top
from landscape.curvature.products import CurvatureSpec, workload_curvature
from landscape.errors import InputError
from landscape.geometry.curvature import WARM_MIX
from landscape.geometry.loss import problem_of, workload_loss
from landscape.workload import Dataset, Params, State, Workload


class SharpnessTracker:
    """Measures λmax at the params it is given, warm-starting each measurement from the last:
    what :func:`landscape.train` calls every ``every`` steps (and at step 0) when given it as
    its ``tracker``.

    Call it with ``(step, params, state)``; it only dispatches. :meth:`fetch` returns the
    measurements made so far as host numbers (waiting for them). ``num_steps`` Lanczos steps
    each, on the full training set or a fixed random subset of ``samples`` of it;
    ``operator``: λmax of the GGN (the workload's ``apply`` and ``output_loss``) or of the
    empirical Fisher instead.
    """

    def __init__(self, workload: Workload, *, every: int = 1, num_steps: int = 10,
                 samples: int | None = None, seed: int = 0,
                 operator: str | CurvatureSpec = "hessian"):
        for name, value in (("every", every), ("num_steps", num_steps), ("samples", samples)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InputError(f"`{name}` (={value!r}) must be a whole number >= 1",
                                 param=name)
        self.every, self.seed, self.workload = every, seed, workload
        self.operator = workload_curvature(workload, operator)  # refused now, not mid-training
        data = workload.train
        if samples is not None and samples < len(data):
            rows = np.sort(np.random.default_rng(seed).permutation(len(data))[:samples])
            data = Dataset(data.inputs[rows], data.targets[rows])
        # The state is the one each measurement is given (the first one's until then).
        self.objective = workload_loss(workload, {}).replace(data={"train": data})
        self.samples, self.num_steps = len(data), num_steps
        self.problem = None  # made at the first measurement, from the params it is given
        self._pending: list[tuple[int, Any, Any]] = []

    def _start_with(self, params: Params, state: State) -> None:
        flat, _ = ravel_pytree(params)
        self.num_steps = int(min(self.num_steps, flat.size))
        # On the training's device, where the params and state arrive.
        devices = list(jax.tree.leaves(params)[0].devices()) if isinstance(
            jax.tree.leaves(params)[0], jax.Array) else jax.local_devices()[:1]
        self.problem = problem_of(self.objective.replace(state=state), params,
                                  devices=devices[:1], operator=self.operator)

        @jax.jit
        def start(params, previous, key):
            w, _ = ravel_pytree(params)
            fresh = jax.random.normal(key, w.shape, w.dtype)
            return w, previous + WARM_MIX * fresh / jnp.linalg.norm(fresh)

        self._start = start
        self._top = jax.jit(lanczos_top, static_argnums=(0, 3))
        key = jax.random.key(self.seed)
        self._key = jax.random.fold_in(key, 1)
        start_vector = jax.random.normal(key, flat.shape, flat.dtype)
        self._previous = start_vector / jnp.linalg.norm(start_vector)

    def __call__(self, step: int, params: Params, state: State) -> None:
        if self.problem is None:
            self._start_with(params, state)
        start_key, restart_key = jax.random.split(jax.random.fold_in(self._key, step))
        w, v0 = self._start(params, self._previous, start_key)
        problem = dataclasses.replace(self.problem, params=w, state=state)
        if problem.on_host:
            top = lanczos_top_on_host(problem.operator, v0, self.num_steps, restart_key)
        else:
            top = self._top(problem.matvec, problem.operands, v0, self.num_steps, restart_key)
        self._previous = top.vector
        self._pending.append((step, top.value, top.residual))

    def fetch(self, *, before: int | None = None) -> list[tuple[int, float, float]]:
        """The measurements not fetched yet (only those of steps < ``before`` if given),
        as ``(step, λmax, residual)``; waits for them."""
        ready = [p for p in self._pending if before is None or p[0] < before]
        self._pending = self._pending[len(ready):]
        values = jax.device_get([(value, residual) for _, value, residual in ready])
        return [(step, float(v), float(r)) for (step, _, _), (v, r) in zip(ready, values)]
