"""One call per job, for any JAX model and its data (the notebook form of the toolkit).

::

    surface = landscape.surface(loss_fn, model, (x, y))      # filter-normalized plane, 51×51
    surface.plot()
    landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)

``model`` is a parameter pytree, a Flax NNX module or an Equinox module; ``loss_fn(model, batch)``
returns the batch's mean loss, or ``(loss, {name: batch mean})`` (see :mod:`landscape.adapters`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from landscape.adapters import objective_from
from landscape.batches import Dataset
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.scan import make_plane, scan_surface
from landscape.surface import Surface


def surface(
    loss_fn: Any,
    model: Any,
    data: Any,
    *,
    state: Any = None,
    test: Any = None,
    directions: str = "filter",
    x: str = "-1:1:51",
    y: str | None = None,
    dims: int = 2,
    metrics: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int = 0,
    normalization: str | None = None,
    ignore: str | None = None,
    trajectory: Sequence[Any] | None = None,
    to: Sequence[Any] = (),
    batch_size: int | None = None,
    samples: int | None = None,
    strategy: str = "auto",
    chunk: int | None = None,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Surface:
    """The loss surface of ``loss_fn`` around ``model`` on ``data``, in one call.

    Args:
      loss_fn: ``loss_fn(model, batch)`` (``loss_fn(params, state, batch)`` with a ``state``)
        → mean loss or ``(mean loss, metrics)``.
      model: parameters (any pytree), a Flax NNX module or an Equinox module.
      data: ``(inputs, targets)`` arrays, a :class:`~landscape.Dataset`, or a re-iterable of
        batches (a list, a torch ``DataLoader``, a tf.data or grain pipeline): read one batch at
        a time, so a data set larger than memory works. ``test``: a second split, the same way.
      directions: ``filter``/``layer`` (Li et al.'s normalized random directions), ``random``,
        ``pca`` (of ``trajectory``, a list of parameter pytrees), ``interp`` (towards the
        models in ``to``), ``hessian`` (top eigenvectors); ``normalization``, ``ignore``
        (``biasbn`` zeroes 1-D leaves; default for random directions, ``none`` for PCA) and
        ``seed`` shape them.
      x, y: axes as ``MIN:MAX:N`` (``y`` defaults to ``x``); ``dims=1`` scans a line.
      metrics: ``loss`` and what ``loss_fn`` returns (default: all of them).
      out: a surface file to write (and resume: ``resume=False`` starts it afresh); None keeps
        the surface in memory.
      samples: evaluate on a fixed subset of this many samples (stratified by target for
        integer targets), recorded in the file.
      strategy, chunk: how the engine evaluates points (``auto`` times the candidates).
      provenance: extra entries for the file's spec (how the model was made ...).
      progress: a progress bar on stderr.

    Returns:
      A :class:`~landscape.surface.Surface` (``.plot()``, ``.to_vtk()``, ``.save()``).
    """
    _check_counts(batch_size=batch_size, chunk=chunk)
    if isinstance(metrics, str):  # not its characters
        raise InputError(f"`metrics` (={metrics!r}) must be a list of names, e.g. "
                         f"[{metrics!r}]", param="metrics")
    objective, params = objective_from(loss_fn, model, data, state=state, test=test,
                                       batch_size=batch_size)
    splits = objective.splits
    metrics = tuple(metrics or ("loss", *objective.metrics))
    objective, sample_record = _subset(objective, samples, seed)
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2", param="dims")
    grid = Grid.from_specs(x, (y or x) if dims == 2 else None, names=("x", "y"))
    ends = _like_params(to, params, "to")
    if trajectory is not None:
        trajectory = _like_params(trajectory, params, "trajectory")
    plane = make_plane(directions, params, objective=objective, seed=seed,
                       normalization=normalization, ignore=ignore, dims=dims,
                       trajectory=trajectory, ends=ends)
    spec = {"directions": directions, "normalization": plane.normalization, "ignore": plane.ignore,
            "seed": seed, "dims": dims, **(provenance or {})}
    with _ProgressBar(progress) as bar:
        return scan_surface(objective, plane, grid, out=out, metrics=metrics, splits=splits,
                            provenance=spec, overwrite=not resume, chunk=chunk,
                            strategy=strategy, samples=sample_record,
                            choices=_default_choices(), on_progress=bar.update)


def _check_counts(**counts: int | None) -> None:
    """Sizes that must be whole numbers >= 1 when given (``batch_size``, ``chunk``)."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"`{name}` (={value!r}) must be a whole number >= 1 (or None: "
                             "chosen for you)", param=name)


def _like_params(models: Any, params: Any, name: str) -> list[Any]:
    """Each of ``models`` (end points, a trajectory's steps) as parameters, checked to have
    the leaves and shapes of ``params``: a difference names the argument, not the loss."""
    from landscape.adapters import params_of
    from landscape.tree import shape_difference

    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise InputError(f"`{name}` must be a list of models or parameter pytrees, got "
                         f"{type(models).__name__}", param=name)
    converted = []
    for number, model in enumerate(models):
        tree = params_of(model, name=name)
        difference = shape_difference(tree, params, expected="the model's is")
        if difference is not None:
            raise InputError(f"`{name}` [{number}] {difference}: it must have the leaves and "
                             "shapes of `model`'s parameters", param=name)
        converted.append(tree)
    return converted


def _subset(objective, samples: int | None, seed: int):
    if samples is None:
        return objective, None
    train = objective.data["train"]
    stratify = isinstance(train, Dataset) and np.issubdtype(np.asarray(train.targets).dtype,
                                                            np.integer)
    objective, _ = objective.with_samples(samples, seed=seed, stratify=stratify)
    return objective, {"num": samples, "seed": seed, "stratified": bool(stratify)}


def _default_choices():
    from landscape.io.choices import default_choices

    return default_choices()


class _ProgressBar:
    """A tqdm bar on stderr driven by ``update(done, total)``; nothing when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def __enter__(self) -> _ProgressBar:
        return self

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="scanning", unit="pt", file=sys.stderr,
                            leave=False, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc_info: Any) -> None:
        if self.bar is not None:
            self.bar.close()


class Hessian:
    """The Hessian of ``loss_fn``'s full-dataset mean loss at ``model`` (as :func:`surface`
    takes them), matrix-free: Lanczos eigenvalues, Hutchinson trace, SLQ spectral density.

    ``landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)``
    """

    def __init__(self, loss_fn: Any, model: Any, data: Any, *, state: Any = None,
                 batch_size: int | None = None):
        from landscape.hessian import hessian_problem

        self.objective, self.params = objective_from(loss_fn, model, data, state=state,
                                                     batch_size=batch_size)
        if not isinstance(self.objective.data["train"], Dataset):
            raise InputError("the Hessian needs the data in memory: `(inputs, targets)` arrays "
                             "or a landscape.Dataset", param="data")
        self.problem = hessian_problem(self.objective, self.params, self.objective.state)

    @property
    def num_params(self) -> int:
        return self.problem.num_params

    def eigenpairs(self, top_k: int = 1, *, bottom_k: int = 0, tol: float = 1e-3,
                   max_iter: int = 100, seed: int = 0, vectors: bool = False):
        """Top-``top_k`` and bottom-``bottom_k`` eigenpairs (Lanczos, full
        reorthogonalization, each to relative residual ``tol``)."""
        from landscape.hessian import hessian_eigenpairs

        return hessian_eigenpairs(self.problem, top_k=top_k, bottom_k=bottom_k, tol=tol,
                                  max_iter=max(max_iter, top_k + bottom_k), seed=seed,
                                  return_vectors=vectors)

    def eigenvalues(self, top_k: int = 1, *, bottom_k: int = 0, tol: float = 1e-3,
                    max_iter: int = 100, seed: int = 0) -> np.ndarray:
        """The ``top_k`` largest eigenvalues (descending), then the ``bottom_k`` smallest."""
        pairs = self.eigenpairs(top_k, bottom_k=bottom_k, tol=tol, max_iter=max_iter, seed=seed)
        return np.concatenate([pairs.top.values, pairs.bottom.values])

    def trace(self, samples: int = 100, *, seed: int = 0):
        """Hutchinson's estimate of the trace, with its standard error."""
        from landscape.hessian import hutchinson_trace

        return hutchinson_trace(self.problem, num_samples=samples, seed=seed)

    def density(self, probes: int = 10, steps: int = 80, *, seed: int = 0):
        """The spectral density by stochastic Lanczos quadrature (Ghorbani et al. 2019)."""
        from landscape.hessian import slq_density

        return slq_density(self.problem, num_probes=probes,
                           num_steps=min(steps, self.num_params), seed=seed)


class _CallableModule(type(sys)):
    """``landscape.hessian(loss_fn, model, data)`` makes a :class:`Hessian` (as PyHessian's
    ``hessian(model, criterion, data)``) while ``landscape.hessian.X`` stays that package's X:
    a module cannot be called, so the package's module object gets this callable class."""

    def __call__(self, loss_fn: Any, model: Any, data: Any, **options: Any) -> Hessian:
        return Hessian(loss_fn, model, data, **options)


def _make_hessian_callable() -> None:
    import landscape.hessian

    sys.modules["landscape.hessian"].__class__ = _CallableModule
    del landscape.hessian


_make_hessian_callable()
