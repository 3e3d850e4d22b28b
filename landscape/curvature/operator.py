"""The Hessian of a mean loss over a data set — or its Gauss–Newton matrix, or its empirical
Fisher (:mod:`landscape.curvature.products`), or the diagonal block of any of them for a group of
parameters — as a matrix-free operator on flat vectors, in the memory of one batch whatever the
data set's size.

With θ = unravel(w) the parameters as a flat vector w ∈ ℝⁿ (``jax.flatten_util.ravel_pytree``)
and ℓ_b the mean loss over batch b of n_b samples (N in all),

.. math::

    L(w) = \\frac{1}{N} \\sum_b n_b\\, \\ell_b(w), \\qquad
    H v = \\frac{1}{N} \\sum_b n_b\\, H_b v, \\quad
    H_b v = \\frac{d}{dt} \\nabla \\ell_b(w + t v) \\Big|_{t=0}
    \\quad \\text{(forward-over-reverse: ``jax.jvp`` of ``jax.grad``)},

    v^\\top H v = \\frac{1}{N} \\sum_b n_b \\frac{d^2}{dt^2} \\ell_b(w + t v) \\Big|_{t=0}
    \\quad \\text{(forward-over-forward: no reverse pass, used for traces)}.

The GGN's and the Fisher's products are summed the same way (G v = (1/N) Σ_b n_b G_b v ...).
A block restricted to the parameters of indices B (:meth:`HessianProblem.restricted`) takes
vectors of |B| entries: scattered into zeros, multiplied by the whole matrix, gathered back, so
its matrix is H[B, B], with the other parameters held where they are.

Every product is each batch's, weighted by its size and summed: never the derivative of the
whole data set's mean in one expression, whose reverse pass would keep every batch's
activations alive (XLA's compiled estimate for a small ResNet grew 171 → 4,168 MiB from 2 to 64
batches; summed per batch it stays flat). The sum is exact: the batch size changes memory only
(Li et al.'s ``loss-landscape`` sums per-batch HVPs unweighted, which scales every eigenvalue by
the number of batches).

The sum runs one of two ways (:attr:`HessianProblem.on_host`):

- **on the device**: the batches stacked in device memory and summed by a ``fori_loop``, so a
  whole Lanczos run, or an eigen map's chunk of points, is one compiled program;
- **from the host**: one compiled call per batch adds its product into a running sum that stays
  on the device. For data streamed from a re-iterable (a torch ``DataLoader``, a list of
  batches, a data set larger than device memory), and for convolutions on the CPU, where a
  convolution's gradient runs 20–40× slower inside any compiled loop (jax-ml/jax#12868: the
  ``digits-cnn`` HVP over 3 batches took 2,972 ms in a loop against 78 ms outside one).

Data travel as arguments of every compiled function, never closed over, so they are not baked
into programs as constants. Each batch's samples are split across the local devices (one per
core on the CPU, as the CLI sets up) where they divide evenly: jit then runs every product
data-parallel.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding, SingleDeviceSharding

from landscape.batches import Batches, Dataset
from landscape.curvature import sums
from landscape.curvature.linear import LOOPS, LinearOperator, Matvec, slow_in_compiled_loops
from landscape.curvature.products import (
    HESSIAN,
    CurvatureSpec,
    batch_products,
    curvature_spec,
    workload_curvature,
)
from landscape.curvature.sums import (  # noqa: F401 (the data types: public here too)
    BatchLoss,
    Data,
    DatasetBatches,
    Placed,
    Stacked,
    Streamed,
    batch_count,
    device_mean_compiled,
    fitted_batch_size,
    fits_on_devices,
    host_mean,
    place_stacked,
    put_batch,
    replicated_sharding,
    unstack,
)
from landscape.errors import InputError
from landscape.objective import Params, State


# ---- per-batch products of one loss --------------------------------------------------------


class Kernels(NamedTuple):
    """The per-batch products of one loss, parameter layout and curvature matrix (``operator``:
    H, or G, or F of :mod:`landscape.curvature.products`; written H below), made once per triple
    so that every problem over them shares its compiled programs. ``w``: flat parameters (n,)."""

    value: Callable  # (w, state, batch) -> ℓ_b
    value_and_grad: Callable  # (w, state, batch) -> (ℓ_b, ∇ℓ_b)
    hvp: Callable  # (w, v, state, batch) -> H_b v (G_b v, F_b v)
    hvps: Callable  # (w, V (k, n), state, batch) -> (k, n)
    forms: Callable  # (w, Z (k, n), state, batch) -> (k,) zᵀ H_b z
    values: Callable  # (W (k, n), state, batch) -> (k,) ℓ_b at k points
    operator: str = "hessian"  # which matrix: hessian, ggn, fisher


def _layout(params: Params) -> tuple:
    return (jax.tree.structure(params),
            tuple((np.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(params)))


@functools.lru_cache(maxsize=64)
def kernels(loss: BatchLoss, layout: tuple, curvature: CurvatureSpec = HESSIAN) -> Kernels:
    """:class:`Kernels` of ``loss`` for parameters of ``layout`` (see :func:`_layout`) and the
    matrix ``curvature`` names (default: the Hessian)."""
    treedef, leaves = layout
    unravel = ravel_pytree(jax.tree.unflatten(
        treedef, [jnp.zeros(shape, dtype) for shape, dtype in leaves]))[1]

    def value(w, state, batch):
        out = loss(unravel(w), state, batch)
        return out[0] if isinstance(out, tuple) else out

    hvp, form = batch_products(curvature, value, unravel)
    return Kernels(
        value=value,
        value_and_grad=jax.value_and_grad(value),
        hvp=hvp,
        hvps=lambda w, vs, state, batch: jax.vmap(lambda v: hvp(w, v, state, batch))(vs),
        forms=lambda w, zs, state, batch: jax.vmap(lambda z: form(w, z, state, batch))(zs),
        values=lambda ws, state, batch: jax.vmap(lambda w: value(w, state, batch))(ws),
        operator=curvature.kind,
    )


# ---- the problem ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class HessianProblem:
    """The Hessian (or GGN, or empirical Fisher: ``kernels.operator``) of the mean loss over a
    data set at one point, or its diagonal block for some parameters, and the products around
    it. Below, H is that matrix, restricted to the block where there is one.

    Attributes:
      kernels: the per-batch products (:class:`Kernels`) of the loss.
      params: (n,) the flat parameters at which the Hessian is taken.
      unravel: flat vector (n,) → params pytree.
      state: the model's untrained state (BatchNorm statistics), the same for every batch.
      data: the batches: :class:`Stacked` on the device, :class:`Placed` one by one, or
        :class:`Streamed` from the host.
      scale: (n,) d or None: with it the operator is D H D, D = diag(d) (for d = P^{-1/2}, the
        preconditioned Hessian, whose eigenvalues are those of P⁻¹H).
      on_host: sums over batches are driven from the host (see the module docstring).
      batch_size: the most samples in one batch (None: not known before a pass over streamed
        data); :meth:`rebatched` makes the same problem over smaller batches.
      block: (m,) int32 indices of the flat parameters the operator is restricted to (its
        vectors then have m entries: :meth:`restricted`), or None for all of them.
    """

    kernels: Kernels
    params: jax.Array
    unravel: Callable[[jax.Array], Params]
    state: State
    data: Data
    scale: jax.Array | None = None
    on_host: bool = False
    batch_size: int | None = None
    remake: Callable[[int], HessianProblem] | None = None  # the problem at another batch size
    block: jax.Array | None = None

    @property
    def num_params(self) -> int:
        """The operator's size: the parameters in its block (all of them without one)."""
        return int(self.params.size if self.block is None else self.block.size)

    @property
    def operator_kind(self) -> str:
        """Which matrix: ``hessian``, ``ggn`` or ``fisher``."""
        return self.kernels.operator

    def restricted(self, indices: Any) -> HessianProblem:
        """The diagonal block H[B, B] of this problem's (whole) matrix for the flat parameter
        indices B (``indices``, distinct, in [0, n)): vectors of |B| entries, the other
        parameters held fixed."""
        indices = np.asarray(indices)
        n = int(self.params.size)
        if (indices.ndim != 1 or not indices.size or not np.issubdtype(indices.dtype, np.integer)
                or indices.min() < 0 or indices.max() >= n
                or np.unique(indices).size != indices.size):
            raise InputError(f"a block needs distinct integer indices in [0, {n}), got "
                             f"{indices.size} of dtype {indices.dtype}", param="blocks")
        block = jax.device_put(jnp.asarray(indices, jnp.int32), self.params.sharding)
        return dataclasses.replace(self, block=block)

    def at(self, params: jax.Array) -> HessianProblem:
        """The same problem at other flat parameters."""
        return dataclasses.replace(self, params=params)

    def rebatched(self, batch_size: int) -> HessianProblem:
        """The same problem (same point, state and scale) with batches of at most
        ``batch_size`` samples: the same sums, in less memory."""
        if self.remake is None or batch_size == self.batch_size:
            return self
        return dataclasses.replace(self.remake(batch_size=batch_size), params=self.params,
                                   state=self.state, scale=self.scale, block=self.block)

    # The jit-able form, for loops compiled on the device (data held there: Stacked).

    @property
    def matvec(self) -> Matvec:
        """``matvec(v, operands) -> H v`` (D H D v when scaled), jit- and vmap-able, summing
        over the batches in a device loop; the same object for every problem of one loss,
        layout and matrix (a static argument of compiled algorithms: they compile once)."""
        self._device_data()
        return _device_matvec(self.kernels, self.scale is not None, self.block is not None)

    @property
    def operands(self) -> tuple:
        """The operands of :attr:`matvec`: ``(w, state, full, rest, scale, block)``."""
        full, rest = self._device_data()
        return self.params, self.state, full, rest, self.scale, self.block

    @property
    def operator(self) -> LinearOperator:
        """This Hessian as the Lanczos algorithms take it (:mod:`landscape.curvature.linear`).

        A block's algorithms step from the host: a Lanczos loop compiled around the product
        would compile the whole product again for every block size (8-14 s each for the sine
        MLP on a loaded 2-core machine), where the product on whole vectors, scattered and
        gathered outside it, is one program for every block."""
        device = isinstance(self.data, Stacked)
        return LinearOperator(self.num_params, self.params.dtype, apply=self.hvp,
                              apply_many=self.hvps, matvec=self.matvec if device else None,
                              operands=self.operands if device else None,
                              on_host=self.on_host or not device or self.block is not None)

    def _device_data(self) -> Stacked:
        if not isinstance(self.data, Stacked):
            raise InputError("this problem's batches are summed from the host (streamed data, "
                             "or convolutions on the CPU): use its `hvp`/`hvps`, not `matvec`")
        return self.data

    # Products at any point, summed the problem's way.

    def batches(self) -> Iterable:
        """The batches, one at a time (placed on the devices)."""
        if isinstance(self.data, Stacked):
            return unstack(self.data)
        return self.data.batches if isinstance(self.data, Placed) else self.data

    def mean(self, fn: Callable, args: tuple) -> Any:
        """The exact dataset mean of ``fn(*args, batch)`` (a pytree), summed the problem's way."""
        if self.on_host or not isinstance(self.data, Stacked):
            return host_mean(fn, args, self.batches())
        return device_mean_compiled(args, self.data, fn=fn)

    def hvp(self, v: jax.Array) -> jax.Array:
        """H v (D H D v when scaled) at :attr:`params`."""
        return self._around(lambda u: self.mean(self.kernels.hvp, (self.params, u, self.state)),
                            v)

    def hvps(self, vs: jax.Array) -> jax.Array:
        """H V for a (k, n) block of vectors, side by side."""
        return self._around(lambda u: self.mean(self.kernels.hvps, (self.params, u, self.state)),
                            vs)

    def quadratic_forms(self, zs: jax.Array) -> jax.Array:
        """(k,) zᵀ H z (zᵀ D H D z when scaled) for a (k, n) block of probes
        (forward-over-forward: no activations kept for a reverse pass)."""
        zs = self._placed(zs)
        if self.block is not None:
            zs = _scatter(zs, self.block, int(self.params.size))
        if self.scale is not None:
            zs = zs * self.scale
        return self.mean(self.kernels.forms, (self.params, zs, self.state))

    def value(self, w: jax.Array | None = None) -> jax.Array:
        """The mean loss at flat ``w`` (default :attr:`params`)."""
        return self.mean(self.kernels.value, (self.params if w is None else w, self.state))

    def value_and_grad(self, w: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """The mean loss and its gradient at flat ``w`` (default :attr:`params`)."""
        return self.mean(self.kernels.value_and_grad, (self.params if w is None else w,
                                                       self.state))

    def values(self, ws: jax.Array) -> jax.Array:
        """(k,) mean losses at a (k, n) block of flat points."""
        return self.mean(self.kernels.values, (ws, self.state))

    def _placed(self, v: jax.Array) -> jax.Array:
        """``v`` where the parameters are (a vector made on the host, e.g. by a caller, would
        otherwise compile every product a second time for its placement)."""
        return jax.device_put(v, self.params.sharding)

    def _around(self, product: Callable, v: jax.Array) -> jax.Array:
        """``product`` of the whole matrix, with the scale and the block around it."""
        v = self._placed(v)
        if self.block is not None:
            v = _scatter(v, self.block, int(self.params.size))
        if self.scale is not None:
            v = v * self.scale
        out = product(v)
        if self.scale is not None:
            out = out * self.scale
        return out if self.block is None else _gather(out, self.block)


@functools.partial(jax.jit, static_argnums=(2,))
def _scatter(v: jax.Array, block: jax.Array, n: int) -> jax.Array:
    """Block vectors (..., m) as whole ones (..., n), zero outside the block."""
    return jnp.zeros((*v.shape[:-1], n), v.dtype).at[..., block].set(v)


@jax.jit
def _gather(v: jax.Array, block: jax.Array) -> jax.Array:
    return v[..., block]


@functools.lru_cache(maxsize=64)
def _device_matvec(k: Kernels, scaled: bool, blocked: bool) -> Matvec:
    def matvec(v, operands):
        w, state, full, rest, scale, block = operands
        if blocked:
            v = jnp.zeros(w.shape, v.dtype).at[block].set(v)
        if scaled:
            v = v * scale
        hv = sums.device_mean(k.hvp, (w, v, state), Stacked(full, rest))
        hv = hv * scale if scaled else hv
        return hv[block] if blocked else hv

    return matvec


# ---- building problems ---------------------------------------------------------------------


def dataset_problem(
    loss: BatchLoss,
    params: Params,
    state: State,
    data: Any,
    *,
    batch_size: int,
    devices: Sequence[jax.Device] | None = None,
    loop: str = "auto",
    scale: Params | None = None,
    sized: bool = True,
    operator: str | CurvatureSpec = "hessian",
) -> HessianProblem:
    """The Hessian (or ``operator``'s matrix) of the exact mean of ``loss`` over ``data`` at
    ``params``.

    Args:
      loss: ``loss(params, state, batch)`` → the batch's mean loss (or ``(loss, metrics)``).
      data: a :class:`~landscape.Dataset` (in memory: cut into batches of ``batch_size``), a
        :class:`~landscape.batches.Batches` stream (read one batch at a time at every pass),
        or a :class:`Stacked` pair already cut.
      batch_size: the most samples per batch (an in-memory data set is cut into batches of
        this size, a stream's larger batches into pieces): it bounds memory only. With
        ``sized``, an in-memory data set's batches are smaller still where one batch's
        products would not fit (:func:`fitted_batch_size`).
      devices: the devices that share each batch's samples (default: the local devices).
      loop: ``"auto"`` (the host where the data are streamed, or where XLA runs the loss's
        gradient slowly inside compiled loops: convolutions on the CPU), ``"device"`` or
        ``"host"``.
      scale: a pytree ``d`` shaped like ``params``: the operator is then D H D, D = diag(d).
      operator: ``"hessian"``, ``"fisher"``, or a :class:`~landscape.curvature.products.
        CurvatureSpec` (the GGN's needs the model's outputs and their loss:
        :func:`~landscape.curvature.products.curvature_spec`).
    """
    curvature = curvature_spec(operator)
    if loop not in LOOPS:
        raise InputError(f"`loop` (={loop!r}) must be one of {', '.join(LOOPS)}", param="loop")
    devices = list(devices) if devices is not None else jax.local_devices()
    flat, unravel = ravel_pytree(params)
    k = kernels(loss, _layout(params), curvature)
    replicated = replicated_sharding(devices)
    flat = jax.device_put(jnp.asarray(flat), replicated)
    state = jax.device_put(state, replicated)
    if scale is not None:
        d, _ = ravel_pytree(scale)
        if d.shape != flat.shape:
            raise InputError(f"`scale` has {d.size} entries, the parameters {flat.size}")
        scale = jax.device_put(jnp.asarray(d, flat.dtype), replicated)
    remake = functools.partial(dataset_problem, loss, params, state, data, devices=devices,
                               loop=loop, scale=None, operator=curvature, sized=False)
    if isinstance(data, (Placed, Streamed)):  # an earlier problem's batches, placed
        size = (max(map(batch_count, data.batches)) if isinstance(data, Placed)
                else data.piece)
        return HessianProblem(k, flat, unravel, state, data, scale, True, size)
    streamed = isinstance(data, Batches)
    if loop == "device" and streamed:
        raise InputError("streamed data are summed from the host: `loop` (='device') needs "
                         "the data in memory", param="loop")
    if isinstance(data, Dataset) and sized:
        batch_size = fitted_batch_size(loss, params, state, next(data.batches(1)), batch_size,
                                       devices, num_samples=len(data))
    elif isinstance(data, Batches) and sized:  # sized from its first batch (read once now)
        first = next(iter(data), None)
        if first is not None:
            batch_size = fitted_batch_size(loss, params, state, first, batch_size, devices)
    if streamed or (isinstance(data, Dataset) and not fits_on_devices(data, devices)):
        # Batches come from the host at every pass: a stream, or a data set larger than a
        # share of the device's free memory (on the CPU the data are in its memory already).
        source = data if streamed else DatasetBatches(data, batch_size)
        return HessianProblem(k, flat, unravel, state,
                              Streamed(source, tuple(devices), batch_size), scale, True,
                              batch_size, remake)
    full, rest = data if isinstance(data, Stacked) else data.split_batches(batch_size)
    size = max(batch_count(rest) if rest is not None else 0,
               int(jax.tree.leaves(full)[0].shape[1]) if full is not None else 0)
    if isinstance(data, Stacked):
        remake = None  # one expression, or batches cut by the caller: nothing to cut again
    on_host = loop == "host" or (loop == "auto" and slow_in_compiled_loops(
        k.value_and_grad, (flat, state, rest if full is None else
                           jax.tree.map(lambda a: a[0], full)), devices))
    if on_host:
        batches = (list(unstack(Stacked(full, rest))) if isinstance(data, Stacked)
                   else list(data.batches(batch_size)))
        placed = Placed(tuple(put_batch(b, devices) for b in batches))
        return HessianProblem(k, flat, unravel, state, placed, scale, True, size, remake)
    return HessianProblem(k, flat, unravel, state, place_stacked(Stacked(full, rest), devices),
                          scale, False, size, remake)


def smaller_on_oom(problem: HessianProblem, fn: Callable[[HessianProblem], Any], *,
                   on_shrink: Callable[[int, int, str], None] | None = None
                   ) -> tuple[Any, HessianProblem]:
    """``fn(problem)``; out of device memory, ``fn`` of the problem over batches of half the
    size, and so on (:func:`landscape.engine.memory.halve_on_oom`; ``on_shrink(old, new,
    "batch")`` before each retry). Returns the result and the problem it came from (keep it:
    later work then starts at the size that fitted). The sums are the same at any batch size,
    so the results are too, up to float rounding."""
    from landscape.engine.memory import halve_on_oom

    if problem.remake is None or problem.batch_size is None:
        return fn(problem), problem
    final = [problem]

    def attempt(size: int) -> Any:
        final[0] = problem.rebatched(size)
        return fn(final[0])

    return halve_on_oom(attempt, problem.batch_size, what="batch", on_shrink=on_shrink), final[0]


def hessian_problem(
    workload: Any,
    params: Params,
    state: State,
    *,
    split: str = "train",
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    loop: str = "auto",
    operator: str | CurvatureSpec = "hessian",
) -> HessianProblem:
    """The Hessian of ``workload``'s exact mean ``split`` loss at ``params`` (a workload or an
    objective: anything with ``loss``, ``dataset(split)`` and ``batch_size``), or its GGN or
    empirical Fisher (``operator``: the GGN takes the workload's ``apply`` and
    ``output_loss``).

    ``batch_size`` (default ``workload.batch_size``) bounds memory: every product is summed batch
    by batch, so the memory is one batch's whatever the data set's size, and the result is the
    exact mean whatever the batch size. Parameters keep their dtype (float64 params and data
    under ``jax.enable_x64`` for reference-quality results). ``devices``, ``loop``: see
    :func:`dataset_problem`.
    """
    curvature = workload_curvature(workload, operator)
    return dataset_problem(workload.loss, params, state, workload.dataset(split),
                           batch_size=batch_size or workload.batch_size, devices=devices,
                           loop=loop, operator=curvature)


def loss_problem(
    loss: Callable[[Params, Any], jax.Array],
    params: Params,
    data: Any = None,
    *,
    scale: Params | None = None,
    loop: str = "auto",
) -> HessianProblem:
    """The Hessian of one expression ``loss(params, data)`` (a scalar) at ``params``.

    For losses that are not a mean over batches (a test function, a quadratic form); ``data``
    travels through jit as an argument. With ``scale``, D H D as in :func:`dataset_problem`.
    """
    return dataset_problem(_one_expression(loss), params, {}, Stacked(None, data),
                           batch_size=1, devices=_devices_of(data), loop=loop, scale=scale)


@functools.lru_cache(maxsize=64)
def _one_expression(loss: Callable) -> BatchLoss:
    return lambda params, state, data: loss(params, data)


def _devices_of(data: Any) -> list[jax.Device]:
    """The devices ``data`` already sit on (so the parameters join them), else the default
    device."""
    for leaf in jax.tree.leaves(data):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, (NamedSharding, SingleDeviceSharding)):
            return list(sharding.mesh.devices.flat) if isinstance(sharding, NamedSharding) \
                else list(sharding.device_set)
    return jax.local_devices()[:1]


