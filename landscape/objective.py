"""What evaluating a loss at a point of parameter space needs: :class:`Objective`.

An objective is a pure, jit-able ``loss(params, state, batch) -> (mean loss, metrics)``, the data
it is averaged over (one entry per split: ``train``, ``test`` ...), the model's untrained
``state`` (BatchNorm statistics; ``{}`` when there is none) and the batch size for in-memory
data. Surfaces, Hessians and sharpness all consume this; training adds what
:class:`landscape.workload.Workload` declares on top (``init``, a training-mode loss).

:func:`mean_over_batches` is the exact dataset mean: each batch's means are weighted by its size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from landscape.batches import Batches, Data, Dataset
from landscape.errors import InputError

PyTree = Any
Params = PyTree
State = PyTree  # model state that is not trained (BatchNorm statistics); {} when there is none
LossFn = Callable[[Params, State, Any], tuple[jax.Array, dict[str, jax.Array]]]

ACC_PERCENT = 100.0  # accuracies are fractions inside the library, percent in surface files


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """A loss, the data it is averaged over and the model state it is evaluated with.

    Attributes:
      loss: ``loss(params, state, batch) -> (mean loss, metrics)``, pure and jit-able; metrics
        are batch means too (``acc`` as a fraction in [0, 1]).
      data: ``{split: Dataset | Batches}``; the first entry is the default split (for the
        geometry measures, a split may also hold an earlier Hessian problem's batches, already
        on the devices: :func:`landscape.geometry.loss.placed`).
      state: the model's untrained state, the same at every point.
      batch_size: samples per batch cut from in-memory datasets (memory only: means are exact).
      metrics: names of the entries ``loss`` returns in its metrics dict.
      name: what to call it in messages and files (a workload's name ...).
      key: a hashable identity of the computation for compile caches (default: ``loss``), so
        that two objectives over the same user function share compiled programs.
    """

    loss: LossFn
    data: Mapping[str, Data]
    state: State = dataclasses.field(default_factory=dict)
    batch_size: int = 1024
    metrics: tuple[str, ...] = ()
    name: str = "objective"
    key: Hashable | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise InputError("an objective needs data for at least one split")
        if self.batch_size < 1:
            raise InputError(f"`batch_size` (={self.batch_size}) must be >= 1", param="batch_size")

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.data)

    @property
    def identity(self) -> Hashable:
        return self.key if self.key is not None else self.loss

    def dataset(self, split: str) -> Data:
        if split not in self.data:
            raise InputError(f"`split` (={split!r}) is not among this objective's data: "
                             f"{', '.join(self.data)}", param="split")
        return self.data[split]

    def metric_names(self, metrics: Sequence[str], splits: Sequence[str] | None = None) -> list[str]:
        """File names of the requested metrics, e.g. ``train_loss``, ``test_acc``; validated."""
        available = ("loss", *self.metrics)
        names = []
        for split in splits or self.splits[:1]:
            self.dataset(split)  # raises for a missing split
            for metric in metrics:
                if metric not in available:
                    raise InputError(f"`metrics` (={metric!r}) is not computed by `{self.name}`; "
                                     f"available: {', '.join(available)}", param="metrics")
                names.append(f"{split}_{metric}")
        return names

    def replace(self, **changes: Any) -> Objective:
        return dataclasses.replace(self, **changes)

    def with_samples(self, num: int, *, seed: int = 0, stratify: bool = False) -> tuple[Objective, dict]:
        """The objective on a fixed subset of ``num`` samples of each in-memory split (see
        :meth:`Dataset.subset`; a later split with fewer samples is kept whole), and
        ``{split: indices}`` to record which."""
        data, chosen = {}, {}
        for number, (split, dataset) in enumerate(self.data.items()):
            if not isinstance(dataset, Dataset):
                raise InputError("`samples` needs in-memory data (a Dataset or arrays); a stream of "
                                 "batches can be cut to size before it is given", param="samples")
            # The first split must hold them; a smaller later one (a test set) is kept whole.
            take = num if number == 0 else min(num, len(dataset))
            data[split], chosen[split] = dataset.subset(take, seed=seed, stratify=stratify)
        return self.replace(data=data), chosen


def streamed(data: Data) -> bool:
    """Whether ``data`` is read batch by batch from the host (a :class:`Batches` stream)."""
    return isinstance(data, Batches)


def dataset_mean(
    loss: LossFn, params: Params, state: State, full: Any | None, rest: Any | None,
) -> dict[str, jax.Array]:
    """Exact mean of the loss and its metrics over ``full`` (scanned) and ``rest`` batches.

    Returns ``{"loss": ..., **metrics}``. Jit-able and vmap-able over ``params``. Not for
    differentiating: the reverse pass of a mean over many batches keeps every batch's
    activations; derivatives are summed batch by batch (:mod:`landscape.curvature.operator`).
    """

    def batch_means(batch: Any) -> dict[str, jax.Array]:
        value, metrics = loss(params, state, batch)
        return {"loss": value, **metrics}

    return mean_over_batches(batch_means, full, rest)


def mean_over_batches(
    batch_means: Callable[[Any], dict[str, jax.Array]], full: Any | None, rest: Any | None,
) -> dict[str, jax.Array]:
    """The exact dataset mean of per-batch means: each batch's means are weighted by its size.

    A batch is any pytree whose leaves share a leading sample axis (e.g. a batch with per-sample
    values precomputed beside it). ``full`` holds whole batches stacked on a leading axis
    (scanned, so each is read once); ``rest`` is the short last batch or None. Values may be
    arrays (e.g. one per grid point).
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
