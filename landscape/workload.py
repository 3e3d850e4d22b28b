"""A trainable task: :class:`Workload` = what evaluation needs plus what training adds.

Evaluation needs a pure ``loss(params, state, batch)``, data and a batch size — an
:class:`~landscape.objective.Objective`, which :meth:`Workload.objective` makes for a trained
model's state. Training adds ``init(key) -> (params, state)``, an optional training-mode loss
(BatchNorm batch statistics) and the train/test split with the task's metadata.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax

from landscape.batches import Batch, Dataset  # noqa: F401  (re-exported: the data types)
from landscape.errors import InputError
from landscape.objective import (  # noqa: F401  (re-exported)
    LossFn,
    Objective,
    Params,
    State,
    dataset_mean,
    mean_over_batches,
)
from landscape.tree import shape_difference

# Training-mode loss: batch statistics, and the updated model state beside the metrics.
TrainLossFn = Callable[
    [Params, State, Batch], tuple[jax.Array, tuple[dict[str, jax.Array], State]]
]
InitFn = Callable[[jax.Array], tuple[Params, State]]


@dataclasses.dataclass(frozen=True)
class Workload:
    """A model, its loss and its data.

    Attributes:
      name: registry name (``sine``, ``digits`` ...).
      init: ``init(key) -> (params, state)``; params and state are plain pytrees.
      loss: ``loss(params, state, batch) -> (mean loss, metrics)``, pure and jit-able; metrics
        are batch means too (``acc`` as a fraction in [0, 1]). Always the evaluation mode (what
        grids and Hessians measure).
      train, test: the datasets (``test`` may be None).
      metrics: names of the entries ``loss`` returns in its metrics dict.
      task: ``"regression"`` or ``"classification"``.
      input_shape: shape of one input sample.
      batch_size: the batch size used to evaluate full-dataset means.
      apply: optional ``apply(params, state, inputs) -> outputs`` of the model.
      output_loss: optional ``output_loss(outputs, batch) -> mean loss`` with
        ``output_loss(apply(params, state, batch.inputs), batch)`` equal to ``loss``'s value:
        the model split into a network and a loss of its outputs, which the Gauss–Newton
        matrix needs (``landscape hessian --operator ggn``).
      train_loss: optional training-mode loss ``train_loss(params, state, batch) -> (mean loss,
        (metrics, new_state))`` for models with state (BatchNorm: batch statistics, updated
        running averages). None: training uses ``loss`` and keeps the state unchanged.
      output_axis: the params' layout, which axis of each kernel holds its output filters
        (filter normalization's; :mod:`landscape.directions`): ``"last"`` (Flax's: every
        built-in workload's), ``"first"`` (PyTorch's, Equinox's), or a pytree like the params
        with an int (or None: a bias) per leaf.
    """

    name: str
    init: InitFn
    loss: LossFn
    train: Dataset
    test: Dataset | None = None
    metrics: tuple[str, ...] = ()
    task: str = "regression"
    input_shape: tuple[int, ...] = ()
    batch_size: int = 1024
    apply: Callable[..., jax.Array] | None = None
    train_loss: TrainLossFn | None = None
    output_axis: Any = "last"
    output_loss: Callable[[jax.Array, Batch], jax.Array] | None = None

    def dataset(self, split: str) -> Dataset:
        if split == "train":
            return self.train
        if split == "test":
            if self.test is None:
                raise InputError(f"workload `{self.name}` has no test split", param="split")
            return self.test
        raise InputError(f"`split` (={split!r}) must be one of: train, test", param="split")

    def objective(self, state: State, splits: Sequence[str] = ("train",)) -> Objective:
        """What evaluating this workload's loss needs, for a model whose state is ``state``, on
        ``splits`` (the first is the default)."""
        return Objective(
            loss=self.loss, data={split: self.dataset(split) for split in splits}, state=state,
            batch_size=self.batch_size, metrics=self.metrics, name=self.name, key=self.loss,
        )


def init_shapes(workload: Workload) -> tuple[Params, State]:
    """``workload.init``'s (params, state) as ``jax.ShapeDtypeStruct`` leaves, without computing
    them (``jax.eval_shape``): to check a file against the model before any training."""
    try:
        return jax.eval_shape(workload.init, jax.random.key(0))
    except jax.errors.JAXTypeError:  # an init that cannot be traced (numpy inside): run it
        return workload.init(jax.random.key(0))


def check_params_fit(workload: Workload, params: Params, state: State) -> None:
    """Raise :class:`InputError` unless ``params`` and ``state`` have the leaves (by key path)
    and shapes of ``workload.init``'s, e.g. for a checkpoint loaded into the workload's model.
    The message names the first leaf that differs."""
    expected = init_shapes(workload)
    for part, found, wanted in (("params", params, expected[0]), ("state", state, expected[1])):
        what = shape_difference(found, wanted, expected="the model's is")
        if what is not None:
            raise InputError(f"{part} do not fit workload `{workload.name}`: the checkpoint "
                             f"{what}")
