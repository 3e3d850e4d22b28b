"""What a training run recorded: :class:`Trajectory` (every recorded step's parameters, state,
metrics and optimizer state) and :class:`SharpnessTrack` (λmax measured while training). The
types of :mod:`landscape.train_loop`'s results, read and written by
:mod:`landscape.io.trajectory_h5`, below both."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from landscape.errors import InputError

Params = Any
State = Any


class SharpnessTrack(NamedTuple):
    """λmax of the full-train-set Hessian (evaluation mode) measured while training, every
    ``tracker.every`` steps by a few warm-started Lanczos steps (see
    :mod:`landscape.geometry.tracking`)."""

    step: np.ndarray  # (m,) int64: measured after this many steps
    lambda_max: np.ndarray  # (m,) float64: the top Ritz value, a lower bound on λmax
    residual: np.ndarray  # (m,) float64: ‖Hx − θx‖; some eigenvalue lies within it


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Everything recorded during a run, one entry per recorded step.

    ``params`` and ``state`` are pytrees whose leaves carry a leading step axis (num_recorded,
    *leaf_shape); metrics are float64, NaN where they do not apply (no test split, no accuracy);
    ``acc`` values are fractions in [0, 1]. ``epoch`` counts the epochs finished at that step.
    """

    step: np.ndarray  # (n,) int64
    epoch: np.ndarray  # (n,) int64
    train_loss: np.ndarray  # (n,) float64
    test_loss: np.ndarray  # (n,) float64
    train_acc: np.ndarray  # (n,) float64, fraction
    test_acc: np.ndarray  # (n,) float64, fraction
    params: Params  # leaves (n, ...)
    state: State  # leaves (n, ...); {} when the model has none
    opt_state: Any = None  # optimizer state, leaves (n, ...), when recorded (else None)
    sharpness: SharpnessTrack | None = None  # λmax tracked while training (its own steps)

    def __len__(self) -> int:
        return len(self.step)

    def index(self, step: int) -> int:
        """Position of training step ``step`` among the recorded ones."""
        hits = np.flatnonzero(self.step == step)
        if not len(hits):
            shown = ", ".join(str(int(s)) for s in self.step[:8]) + (" ..." if len(self) > 8 else "")
            raise InputError(f"`step` (={step}) was not recorded; recorded steps: {shown} "
                             f"(every `record_every` steps, {int(self.step[0])}..{int(self.step[-1])})")
        return int(hits[0])

    def params_at(self, step: int) -> Params:
        """The params after ``step`` training steps (``step`` must have been recorded)."""
        i = self.index(step)
        return jax.tree.map(lambda leaf: leaf[i], self.params)

    def state_at(self, step: int) -> State:
        i = self.index(step)
        return jax.tree.map(lambda leaf: leaf[i], self.state)
