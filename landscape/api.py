"""One call per job, for any JAX model and its data (the notebook form of the toolkit).

::

    surface = landscape.surface(loss_fn, model, (x, y))      # filter-normalized plane, 51×51
    surface.plot()
    landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)

``model`` is a parameter pytree, a Flax NNX module or an Equinox module; ``loss_fn(model, batch)``
returns the batch's mean loss, or ``(loss, {name: batch mean})`` (see :mod:`landscape.adapters`).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from landscape.adapters import objective_from, output_axis_of
from landscape.batches import Dataset
from landscape.directions import Plane, layout_spec
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.precision import check_precision, computing_in
from landscape.scan import make_plane, resumed_precision, scan_surface
from landscape.surfaces import Surface


def surface(
    loss_fn: Any,
    model: Any,
    data: Any,
    *,
    state: Any = None,
    test: Any = None,
    directions: str = "filter",
    plane: Any = None,
    x: str | Sequence[float] | np.ndarray = "-1:1:51",
    y: str | Sequence[float] | np.ndarray | None = None,
    dims: int = 2,
    metrics: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = True,
    seed: int = 0,
    normalization: str | None = None,
    ignore: str | None = None,
    output_axis: Any = None,
    trajectory: Sequence[Any] | None = None,
    to: Sequence[Any] = (),
    batch_size: int | None = None,
    samples: int | None = None,
    strategy: str = "auto",
    chunk: int | None = None,
    precision: str | None = None,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Surface:
    """The loss surface of ``loss_fn`` around ``model`` on ``data``, in one call.

    The loss at each grid point is the exact mean over the whole data set (every sample counted
    once, a short last batch weighted by its size). ``model`` is not changed: the points are
    evaluated on copies of its parameters. Flax NNX and Equinox modules are evaluated in
    evaluation (inference) mode — BatchNorm with its running statistics, dropout off — and
    their non-parameter variables (BatchNorm statistics) are kept as they are, never perturbed.

    Args:
      loss_fn: ``loss_fn(model, batch)`` (``loss_fn(params, state, batch)`` with a ``state``)
        → mean loss or ``(mean loss, metrics)``, metrics as batch means; a metric named
        ``acc`` is a fraction there and stored in percent (0–100), others as returned.
      model: parameters (any pytree), a Flax NNX module or an Equinox module.
      data: ``(inputs, targets)`` arrays, a :class:`~landscape.Dataset`, or a re-iterable of
        batches (a list, a torch ``DataLoader``, a tf.data or grain pipeline): read one batch at
        a time, so a data set larger than memory works. ``test``: a second split, the same way.
      state: the model's untrained state (BatchNorm statistics) for a ``loss_fn(params,
        state, batch)`` over a parameter pytree; kept fixed at every point.
      batch_size: samples per evaluation batch for arrays and a ``Dataset`` (default 1024;
        a re-iterable is read in its own batches); it changes the memory used, not the mean
        (up to float rounding).
      directions: ``filter``/``layer`` (Li et al.'s normalized random directions), ``random``,
        ``pca`` (of ``trajectory``, a list of parameter pytrees), ``interp`` (towards the
        models in ``to``), ``hessian`` (top eigenvectors); ``normalization``, ``ignore``
        (``biasbn`` zeroes 1-D leaves; default for random directions, ``none`` for PCA) and
        ``seed`` shape them.
      plane: your own directions instead: ``(d1,)`` for a line or ``(d1, d2)`` (models or
        parameter pytrees shaped like ``model``'s), or a :class:`~landscape.Plane` (its
        directions), used as given through ``model`` (``directions``, ``normalization`` and
        ``ignore`` then do not apply).
      x, y: axes as ``MIN:MAX:N``, or the coordinates themselves (an increasing sequence or
        array); ``y`` defaults to ``x``; ``dims=1`` scans a line.
      output_axis: which axis of each parameter holds its output filters (what ``filter``
        normalization rescales, and which leaves count as biases): ``"last"`` (Flax: a dense
        kernel (in, out), a conv kernel (h, w, in, out)), ``"first"`` (PyTorch, Equinox: (out,
        in), (out, in, h, w)), or a pytree like the parameters
        (:func:`landscape.adapters.params_of`) with an int (or None: no output axis, a bias)
        per leaf. Default: from ``model`` — last for an NNX module, first for an
        Equinox module (its convolutions' (out, 1, 1) biases as biases), last for a parameter
        pytree, whose layout cannot be known: give ``"first"`` for PyTorch-layout parameters.
        Recorded in the surface; resuming a file under another layout is refused.
      metrics: ``loss`` and what ``loss_fn`` returns (default: all of them).
      out: a surface file to write (and resume: ``resume=False`` starts it afresh); None keeps
        the surface in memory.
      samples: evaluate on a fixed subset of this many samples (stratified by target for
        integer targets), recorded in the file.
      batch_size: samples per evaluated batch of in-memory data — what ``landscape scan
        --eval-batch-size`` sets; memory only, the means are exact. Default: 1024 on a CPU,
        sized from the free device memory on a GPU/TPU; recorded in the file's ``strategy``.
        A stream of batches is read in its own batches.
      strategy, chunk: how the engine evaluates points (``auto`` times the candidates). Out of
        device memory, the chunk and then the batch are halved and retried.
      precision: of float32 products and convolutions (:mod:`landscape.precision`):
        ``highest`` (full float32, the default), ``default`` (the backend's: TF32 on NVIDIA
        GPUs, one bfloat16 pass on TPUs) or ``bfloat16``; recorded in the surface. A resumed
        file keeps the one it recorded (another one given is refused).
      provenance: extra entries for the file's spec (how the model was made ...).
      progress: a progress bar on stderr.

    Returns:
      A :class:`~landscape.surfaces.Surface`: ``surface["train_loss"]`` (and ``test_loss``,
      ``train_acc`` in percent ...) shaped ``(ny, nx)`` — ``Z[iy, ix]``, rows along ``y`` —
      or ``(nx,)`` on a line; ``.grid``, ``.plane``, ``.plot()``, ``.to_vtk()``, ``.save()``.
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
    if plane is not None:
        plane = _given_plane(plane, params)
        dims, directions = plane.ndim, "given"
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2", param="dims")
    grid = Grid.from_specs(x, (x if y is None else y) if dims == 2 else None, names=("x", "y"))
    ends = _like_params(to, params, "to")
    if trajectory is not None:
        trajectory = _like_params(trajectory, params, "trajectory")
    precision = resumed_precision(out, precision, overwrite=not resume)
    if output_axis is None:  # the framework's layout (a pytree's: Flax's, as before)
        output_axis = output_axis_of(model, params)
    if plane is None:
        with computing_in(precision):  # Hessian directions: at the surface's precision
            plane = make_plane(directions, params, objective=objective, seed=seed,
                               normalization=normalization, ignore=ignore, dims=dims,
                               trajectory=trajectory, ends=ends, output_axis=output_axis)
    spec = {"directions": directions, "normalization": plane.normalization, "ignore": plane.ignore,
            "seed": seed, "dims": dims, **layout_spec(plane.output_axis), **(provenance or {})}
    with _ProgressBar(progress) as bar:
        return scan_surface(objective, plane, grid, out=out, metrics=metrics, splits=splits,
                            provenance=spec, overwrite=not resume, chunk=chunk,
                            eval_batch_size=batch_size, strategy=strategy,
                            samples=sample_record, precision=precision,
                            choices=_default_choices(), on_progress=bar.update,
                            on_shrink=_warn_shrink)


def _check_counts(**counts: int | None) -> None:
    """Sizes that must be whole numbers >= 1 when given (``batch_size``, ``chunk``)."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"`{name}` (={value!r}) must be a whole number >= 1 (or None: "
                             "chosen for you)", param=name)


def _given_plane(plane: Any, params: Any) -> Plane:
    """The user's own directions (``plane=``) as a plane through ``params``: a Plane's, or a
    sequence of one or two directions, each with ``params``' leaves and shapes."""
    if isinstance(plane, Plane):
        directions = [plane.d1] + ([] if plane.d2 is None else [plane.d2])
    elif isinstance(plane, Sequence) and not isinstance(plane, (str, bytes)):
        directions = list(plane)
    else:
        raise InputError(f"`plane` must be (d1,), (d1, d2) or a landscape.Plane, got "
                         f"{type(plane).__name__}", param="plane")
    if len(directions) not in (1, 2):
        raise InputError(f"`plane` must hold one direction (a line) or two (a plane), got "
                         f"{len(directions)}", param="plane")
    d = [jax.tree.map(np.asarray, tree) for tree in _like_params(directions, params, "plane")]
    if not all(np.all(np.isfinite(leaf)) for tree in d for leaf in jax.tree.leaves(tree)):
        raise InputError("`plane`'s directions must be finite", param="plane")
    return Plane(jax.tree.map(np.asarray, params), d[0], d[1] if len(d) == 2 else None,
                 kind="given", normalization="none", ignore="none")


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


def _warn_shrink(old: int, new: int, what: str) -> None:
    """Out of device memory, retried smaller: said once per shrink, as a warning."""
    import warnings

    from landscape.engine.memory import shrink_message

    warnings.warn(shrink_message(old, new, what), RuntimeWarning, stacklevel=3)


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
    takes them), matrix-free: Lanczos eigenvalues, Hutchinson or Hutch++ trace, the diagonal,
    SLQ spectral density, and the top eigenvalues of mini-batch Hessians.

    ``landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)``

    ``data`` as :func:`surface` takes it: arrays in memory, or a re-iterable of batches (a torch
    ``DataLoader``, a list ...) read one batch at a time at every Hessian-vector product, as
    PyHessian reads its dataloader. Every product is summed batch by batch (each weighted by its
    size: the exact mean), so memory is one batch's whatever the data set's size;
    ``batch_size`` cuts in-memory data (and a stream's larger batches) and bounds memory only;
    out of device memory, a computation is rerun over batches of half the size. Every product
    runs at
    ``precision`` (:mod:`landscape.precision`; default ``highest``, full float32: the tolerances
    of the eigenvalues hold only there).

    ``operator``: ``"hessian"``, ``"ggn"`` (the generalized Gauss–Newton matrix JᵀH_ℓJ: give
    ``outputs(model, batch)`` — the network's outputs, taking ``model`` as ``loss_fn`` does —
    and ``output_loss(outputs, batch)``, the batch's mean loss of them, so that
    ``output_loss(outputs(model, batch), batch)`` is ``loss_fn``'s loss) or ``"fisher"`` (the
    empirical Fisher (1/N) Σᵢ gᵢgᵢᵀ of the per-sample gradients). Every method probes that
    matrix. ``blocks``: ``"layer"`` or leaf-path glob patterns (``["*/attn/*", "*/mlp/*"]``)
    naming parameter blocks: :meth:`block` is one block's diagonal block of the matrix,
    :meth:`block_table` every block's λmax, λmin, trace (Zhang et al. 2024).
    """

    def __init__(self, loss_fn: Any, model: Any, data: Any, *, state: Any = None,
                 batch_size: int | None = None, precision: str = "highest",
                 operator: str = "hessian", outputs: Any = None, output_loss: Any = None,
                 blocks: str | Sequence[str] | None = None):
        from landscape.curvature import hessian_problem, parameter_blocks
        from landscape.curvature.products import curvature_spec

        self.precision = check_precision(precision)
        self.objective, self.params = objective_from(loss_fn, model, data, state=state,
                                                     batch_size=batch_size)
        if outputs is not None:
            from landscape.adapters import pure_outputs

            outputs = pure_outputs(outputs, model, state)
        self.operator = curvature_spec(operator, outputs=outputs, output_loss=output_loss)
        self.problem = hessian_problem(self.objective, self.params, self.objective.state,
                                       operator=self.operator)
        self.blocks = () if blocks is None else tuple(parameter_blocks(self.params, blocks))
        self.shrinks: list[tuple[int, int]] = []  # (old, new) batch sizes, out of memory

    @property
    def num_params(self) -> int:
        return self.problem.num_params

    def _run(self, fn):
        """``fn(problem)`` at this Hessian's precision; out of device memory, again over
        batches of half the size (said in a warning, kept for later calls:
        ``problem.batch_size``, ``shrinks``)."""
        from landscape.curvature.operator import smaller_on_oom

        def said(old: int, new: int, what: str) -> None:
            self.shrinks.append((old, new))
            _warn_shrink(old, new, what)

        with computing_in(self.precision):
            result, self.problem = smaller_on_oom(self.problem, fn, on_shrink=said)
        return result

    def eigenpairs(self, top_k: int = 1, *, bottom_k: int = 0, tol: float = 1e-3,
                   max_iter: int = 100, seed: int = 0, vectors: bool = False):
        """Top-``top_k`` and bottom-``bottom_k`` eigenpairs (Lanczos, full
        reorthogonalization, each to relative residual ``tol``)."""
        from landscape.curvature import hessian_eigenpairs

        return self._run(lambda problem: hessian_eigenpairs(
            problem, top_k=top_k, bottom_k=bottom_k, tol=tol,
            max_iter=max(max_iter, top_k + bottom_k), seed=seed, return_vectors=vectors))

    def eigenvalues(self, top_k: int = 1, *, bottom_k: int = 0, tol: float = 1e-3,
                    max_iter: int = 100, seed: int = 0) -> np.ndarray:
        """The ``top_k`` largest eigenvalues (descending), then the ``bottom_k`` smallest."""
        pairs = self.eigenpairs(top_k, bottom_k=bottom_k, tol=tol, max_iter=max_iter, seed=seed)
        return np.concatenate([pairs.top.values, pairs.bottom.values])

    def trace(self, samples: int = 100, *, method: str = "hutchinson", seed: int = 0):
        """An estimate of the trace with its standard error (a
        :class:`~landscape.curvature.trace.TraceEstimate`) from ``samples`` products with H:
        ``method="hutchinson"`` (Rademacher probes) or ``"hutch++"`` (Meyer et al. 2021: a
        third of them sketch the top of the spectrum, whose trace is then exact; far less
        variance when the spectrum decays)."""
        from landscape.curvature import estimate_trace

        return self._run(lambda problem: estimate_trace(problem, method=method,
                                                        num_matvecs=samples, seed=seed))

    def diagonal(self, samples: int = 100, *, seed: int = 0):
        """Hutchinson's estimate of the diagonal (Bekas et al. 2007) from ``samples``
        Rademacher probes: a :class:`~landscape.curvature.diagonal.DiagonalEstimate` —
        ``.diagonal`` and ``.stderr`` (per entry) shaped like the params, ``.blocks`` the
        summary per layer (mean ± standard error, Σ diag², count)."""
        from landscape.curvature import hutchinson_diagonal

        return self._run(lambda problem: hutchinson_diagonal(problem, num_samples=samples,
                                                             seed=seed))

    def minibatch_eigenvalues(self, num_batches: int, top_k: int = 1, *,
                              batch_size: int | None = None, tol: float = 1e-3,
                              max_iter: int = 100, seed: int = 0):
        """The top-``top_k`` eigenvalues of the Hessians of ``num_batches`` mini-batches, each
        its own mean loss (a :class:`~landscape.curvature.minibatch.MinibatchSpectra`: ``.values``
        (N, k), ``.residuals``, ``.sizes``). Arrays are cut into batches of ``batch_size``
        (default 128) from one shuffled epoch (``seed``); a re-iterable of batches gives its
        first ``num_batches`` as they come."""
        from landscape.curvature import minibatch_eigenvalues

        with computing_in(self.precision):
            return minibatch_eigenvalues(
                self.objective.loss, self.params, self.objective.state,
                self.objective.dataset(self.objective.splits[0]), num_batches=num_batches,
                batch_size=batch_size, top_k=top_k, tol=tol, max_iter=max_iter, seed=seed,
                on_shrink=_warn_shrink)

    def density(self, probes: int = 10, steps: int = 80, *, seed: int = 0):
        """The spectral density by stochastic Lanczos quadrature (Ghorbani et al. 2019)."""
        from landscape.curvature import slq_density

        return self._run(lambda problem: slq_density(
            problem, num_probes=probes, num_steps=min(steps, self.num_params), seed=seed))

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(block.name for block in self.blocks)

    def block(self, name: str) -> Hessian:
        """The diagonal block of this matrix for parameter block ``name`` (one of
        :attr:`block_names`), with the same methods: its vectors are the block's parameters,
        the others held fixed."""
        found = {block.name: block for block in self.blocks}
        if name not in found:
            raise InputError(f"`name` (={name!r}) is not a block of this Hessian; its blocks: "
                             f"{', '.join(found) or 'none (give `blocks=`)'}", param="name")
        restricted = copy.copy(self)
        restricted.problem, restricted.blocks = self.problem.restricted(found[name].indices), ()
        restricted.shrinks = []
        return restricted

    def block_table(self, *, samples: int = 100, tol: float = 1e-3, max_iter: int = 100,
                    density: bool = False, probes: int = 10, steps: int = 80, seed: int = 0):
        """Every block's λmax, λmin, |λmin/λmax| (``.ratio``), Hutchinson trace ± standard
        error with ``samples`` probes and, with ``density``, its spectral density:
        a list of :class:`~landscape.curvature.blocks.BlockSummary`, one per block."""
        from landscape.curvature import block_summaries

        if not self.blocks:
            raise InputError("this Hessian has no blocks: give `blocks=` (`layer`, or leaf-path "
                             "patterns)", param="blocks")
        return self._run(lambda problem: block_summaries(
            problem, self.blocks, tol=tol, max_iter=max_iter, trace_samples=samples,
            density_probes=probes if density else 0, density_steps=steps, seed=seed))


def hessian(loss_fn: Any, model: Any, data: Any, **options: Any) -> Hessian:
    """The Hessian of ``loss_fn``'s full-dataset mean loss at ``model`` (as PyHessian's
    ``hessian(model, criterion, data)``): ``landscape.hessian(loss_fn, model, (x, y))
    .eigenvalues(top_k=2)``. ``options`` as :class:`Hessian` takes them (``state``,
    ``batch_size``, ``precision``, ``operator``, ``outputs``, ``output_loss``, ``blocks``).
    The algorithms underneath are in :mod:`landscape.curvature`."""
    return Hessian(loss_fn, model, data, **options)
