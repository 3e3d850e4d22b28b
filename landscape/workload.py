"""The one contract between models/data and everything else: :class:`Workload`.

A workload bundles a model (``init``), a pure, jit-able ``loss`` and in-memory datasets. The loss
returns the *mean* over its batch; :func:`dataset_mean` turns that into the exact mean over a
whole dataset (a short last batch is weighted by its size, so every sample counts once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError

PyTree = Any
Params = PyTree
State = PyTree  # model state that is not trained (BatchNorm statistics); {} when there is none


class Batch(NamedTuple):
    inputs: jax.Array  # (batch, *input_shape)
    targets: jax.Array  # (batch, ...)


LossFn = Callable[[Params, State, Batch], tuple[jax.Array, dict[str, jax.Array]]]
# Training-mode loss: batch statistics, and the updated model state beside the metrics.
TrainLossFn = Callable[
    [Params, State, Batch], tuple[jax.Array, tuple[dict[str, jax.Array], State]]
]
InitFn = Callable[[jax.Array], tuple[Params, State]]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Inputs and targets held in host memory, first axis = sample."""

    inputs: np.ndarray
    targets: np.ndarray

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise InputError(
                f"dataset inputs ({len(self.inputs)} samples) and targets "
                f"({len(self.targets)} samples) must have the same length"
            )
        if len(self.inputs) == 0:
            raise InputError("dataset is empty")

    def __len__(self) -> int:
        return len(self.inputs)

    def split_batches(self, batch_size: int) -> tuple[Batch | None, Batch | None]:
        """The dataset as ``(full, rest)``: ``full`` stacks the whole batches on a leading axis
        (num_full, batch_size, ...) for a scan, ``rest`` is the short last batch (or None)."""
        if batch_size < 1:
            raise InputError(f"`batch_size` (={batch_size}) must be >= 1")
        n = len(self)
        num_full, rest = divmod(n, batch_size)
        full = None
        if num_full:
            cut = num_full * batch_size
            full = Batch(
                self.inputs[:cut].reshape(num_full, batch_size, *self.inputs.shape[1:]),
                self.targets[:cut].reshape(num_full, batch_size, *self.targets.shape[1:]),
            )
        last = Batch(self.inputs[n - rest :], self.targets[n - rest :]) if rest else None
        return full, last

    def shuffled_batches(self, batch_size: int, key: jax.Array) -> Iterator[Batch]:
        """One epoch of batches in a random order; the short last batch is dropped."""
        order = np.asarray(jax.random.permutation(key, len(self)))
        for start in range(0, len(self) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield Batch(self.inputs[idx], self.targets[idx])


@dataclasses.dataclass(frozen=True)
class LinearStem:
    """Declares that the model starts with an affine layer of its own parameters,

    ``pre = inputs @ params[kernel] + params[bias]``  (kernel shaped (in, out)),

    and how the loss continues from there: ``finish(params, state, pre, batch) -> (mean loss,
    metrics)``. Optional; it lets the grid evaluator use that the stem is linear in the weights,
    ``x (W + αD1 + βD2) = xW + α xD1 + β xD2``: three products per sample, made once per scan,
    serve every grid point instead of one product per point. The result is the same up to
    float rounding.
    """

    kernel: tuple[str, ...]  # key path of the kernel leaf, e.g. ("dense0", "kernel")
    bias: tuple[str, ...] | None
    finish: Callable[..., tuple[jax.Array, dict[str, jax.Array]]]

    def pre_activation(self, params: Params, inputs: jax.Array) -> jax.Array:
        pre = inputs @ get_leaf(params, self.kernel)
        return pre if self.bias is None else pre + get_leaf(params, self.bias)


def get_leaf(tree: PyTree, path: tuple[str, ...]) -> Any:
    """``tree[path[0]][path[1]]...``"""
    for key in path:
        tree = tree[key]
    return tree


@dataclasses.dataclass(frozen=True)
class Workload:
    """A model, its loss and its data.

    Attributes:
      name: registry name (``sine``, ``digits`` ...).
      init: ``init(key) -> (params, state)``; params and state are plain pytrees.
      loss: ``loss(params, state, batch) -> (mean loss, metrics)``, pure and jit-able; metrics
        are batch means too (``acc`` as a fraction in [0, 1]).
      train, test: the datasets (``test`` may be None).
      metrics: names of the entries ``loss`` returns in its metrics dict.
      task: ``"regression"`` or ``"classification"``.
      input_shape: shape of one input sample.
      batch_size: the batch size used to evaluate full-dataset means.
      apply: optional ``apply(params, state, inputs) -> outputs`` of the model.
      stem: optional :class:`LinearStem` (an exact speed-up for grid scans).
      train_loss: optional training-mode loss ``train_loss(params, state, batch) -> (mean loss,
        (metrics, new_state))`` for models with state (BatchNorm: batch statistics, updated
        running averages). None: training uses ``loss`` and keeps the state unchanged.
        ``loss`` itself is always the evaluation mode (what grids and Hessians measure).
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
    stem: LinearStem | None = None
    train_loss: TrainLossFn | None = None

    def dataset(self, split: str) -> Dataset:
        if split == "train":
            return self.train
        if split == "test":
            if self.test is None:
                raise InputError(f"workload `{self.name}` has no test split")
            return self.test
        raise InputError(f"`split` (={split!r}) must be one of: train, test")


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
        found_shapes, wanted_shapes = _leaf_shapes(found), _leaf_shapes(wanted)
        for path in sorted(found_shapes.keys() | wanted_shapes.keys()):
            has, needs = found_shapes.get(path), wanted_shapes.get(path)
            if has != needs:
                what = (f"has no leaf {path!r}" if has is None else
                        f"has an extra leaf {path!r}" if needs is None else
                        f"has {path!r} shaped {has}, the model's is {needs}")
                raise InputError(f"{part} do not fit workload `{workload.name}`: the checkpoint "
                                 f"{what}")


def _leaf_shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
    """``{"dense0/kernel": shape}``: leaves by key path, whatever the container types."""
    from landscape.io.h5tree import leaf_path

    return {leaf_path(path): tuple(np.shape(leaf))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def dataset_mean(
    loss: LossFn, params: Params, state: State, full: Batch | None, rest: Batch | None
) -> dict[str, jax.Array]:
    """Exact mean of the loss and its metrics over ``full`` (scanned) and ``rest`` batches.

    Returns ``{"loss": ..., **metrics}``. Jit-able and vmap-able over ``params``.
    """

    def batch_means(batch: Batch) -> dict[str, jax.Array]:
        value, metrics = loss(params, state, batch)
        return {"loss": value, **metrics}

    return mean_over_batches(batch_means, full, rest)


def mean_over_batches(
    batch_means: Callable[[Any], dict[str, jax.Array]], full: Any | None, rest: Any | None
) -> dict[str, jax.Array]:
    """The exact dataset mean of per-batch means: each batch's means are weighted by its size.

    A batch is a :class:`Batch` or any pytree whose leaves share a leading sample axis (e.g. a
    batch with per-sample values precomputed beside it). ``full`` holds whole batches stacked on
    a leading axis (scanned, so each is read once); ``rest`` is the short last batch or None.
    Values may be arrays (e.g. one per grid point).
    """

    def size(batch: Any) -> int:
        return jax.tree.leaves(batch)[0].shape[0]

    def weighted(batch: Any) -> dict[str, jax.Array]:
        n = size(batch)
        return {k: v * n for k, v in batch_means(batch).items()}

    sums = None
    count = 0
    if full is not None:
        def body(carry, batch):
            return jax.tree.map(jnp.add, carry, weighted(batch)), None

        one = jax.tree.map(lambda a: a[0], full)
        # Zeros to start from (not the first batch's sums: slicing off the rest would copy it).
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(weighted, one))
        sums, _ = jax.lax.scan(body, zeros, full)
        count += size(full) * size(one)
    if rest is not None:
        out = weighted(rest)
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
        count += size(rest)
    if sums is None:
        raise InputError("a dataset mean needs at least one batch")
    return {k: v / count for k, v in sums.items()}
