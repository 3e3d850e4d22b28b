"""Recording a trajectory while training runs, and spotting divergence on the way.

At a recorded step the training loop only *dispatches* a device-side copy of the params and
state and the full-dataset evaluation; :class:`Recorder` fetches them one record later, when
the device has long finished, so training never waits for a record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.workload import Params, State

METRIC_NAMES = ("train_loss", "test_loss", "train_acc", "test_acc")


class Divergence(NamedTuple):
    """Where a run stopped on a non-finite loss: the step, the loss value and which loss
    (``"minibatch"``: the training step's own; ``"train"``: the full-train-set mean at a record)."""

    step: int
    loss: float
    kind: str

    def describe(self) -> str:
        return f"step {self.step} ({self.kind} loss {self.loss})"


def host_metrics(values: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """``{"train_loss", "test_loss", "train_acc", "test_acc"}`` as floats (NaN for what does not
    apply) from :func:`landscape.train_loop.make_evaluator`'s output; waits for the device."""
    out = {name: math.nan for name in METRIC_NAMES}
    for split, metrics in jax.device_get(values).items():
        out[f"{split}_loss"] = float(metrics["loss"])
        if "acc" in metrics:
            out[f"{split}_acc"] = float(metrics["acc"])
    return out


def _host_copy(tree: Any) -> Any:
    # A real copy, never a view of a device buffer.
    return jax.tree.map(lambda leaf: np.array(leaf, copy=True), jax.device_get(tree))


_device_copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))


class Recorder:
    """Collects the trajectory without stalling training.

    At a recorded step it only *dispatches* a device-side copy of the params and state (the
    next step donates their buffers) and the full-dataset evaluation; the host fetches them at
    the next recorded step (or at the end), by when the device has long finished. ``on_record``
    therefore hears of a record one record late.
    """

    def __init__(self, evaluate: Callable, on_record: Callable[[dict[str, float]], None] | None,
                 on_snapshot: Callable[[dict[str, float], Params, State], None] | None = None):
        self.evaluate = evaluate
        self.on_record = on_record
        self.on_snapshot = on_snapshot
        self.pending: tuple | None = None
        self.records: list[dict[str, float]] = []
        self.snapshots: list[tuple[Params, State]] = []
        self.opt_snapshots: list[Any] = []  # optimizer states, when recorded
        self.divergence: Divergence | None = None  # set by the first non-finite record

    def record(self, step: int, epoch: int, params: Params, state: State,
               opt_state: Any = None) -> None:
        """``opt_state`` (optional): the optimizer state at this step, recorded too (and passed
        to ``on_snapshot`` as its ``opt_state`` keyword)."""
        copied = None if opt_state is None else _device_copy(opt_state)
        dispatched = (step, epoch, self.evaluate(params, state), _device_copy((params, state)),
                      copied)
        self.fetch()
        self.pending = dispatched

    def fetch(self) -> None:
        if self.pending is None:
            return
        step, epoch, values, snapshot, opt_state = self.pending
        self.pending = None
        if self.divergence is not None and step >= self.divergence.step:
            return  # after the divergence: not part of the run
        snapshot = _host_copy(snapshot)
        metrics = {"step": step, "epoch": epoch, **host_metrics(values)}
        if not (math.isfinite(metrics["train_loss"]) and _all_finite(snapshot)):
            self.divergence = Divergence(step, metrics["train_loss"], "train")
            return
        self.snapshots.append(snapshot)
        self.records.append(metrics)
        extra = {}
        if opt_state is not None:
            extra["opt_state"] = _host_copy(opt_state)
            self.opt_snapshots.append(extra["opt_state"])
        if self.on_snapshot is not None:
            self.on_snapshot(metrics, *snapshot, **extra)
        if self.on_record is not None:
            self.on_record(metrics)

    def columns(self) -> dict[str, Any]:
        """The fetched records as :class:`~landscape.train_loop.Trajectory` fields (call
        :meth:`fetch` first for the last one)."""
        records = self.records
        return dict(
            step=np.asarray([r["step"] for r in records], dtype=np.int64),
            epoch=np.asarray([r["epoch"] for r in records], dtype=np.int64),
            **{name: np.asarray([r[name] for r in records], dtype=np.float64)
               for name in METRIC_NAMES},
            params=stack([p for p, _ in self.snapshots]),
            state=stack([s for _, s in self.snapshots]),
            opt_state=stack(self.opt_snapshots) if self.opt_snapshots else None,
        )


def _all_finite(tree: Any) -> bool:
    return all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)
               if np.issubdtype(np.asarray(leaf).dtype, np.inexact))


def first_nonfinite(losses: list[jax.Array], last_step: int) -> Divergence | None:
    """The first non-finite loss among the minibatch losses of steps ..., ``last_step``."""
    values = np.asarray(jax.device_get(losses), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if not bad.size:
        return None
    return Divergence(last_step - len(values) + 1 + int(bad[0]), float(values[bad[0]]),
                      "minibatch")


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *leaves: np.stack(leaves), *trees)
