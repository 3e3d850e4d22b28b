"""What a device can hold and how fast it computes: chunk sizes, evaluation batches, budgets.

**Memory.** :func:`device_memory_budget` is the one place that says how many bytes a device has
left: on an accelerator its allocator's limit minus what is in use (``Device.memory_stats()``),
on a CPU the host memory available now; the environment variable
``LANDSCAPE_DEVICE_MEMORY`` (bytes) caps it (to leave room for other programs, or to force a
tiny budget in a test, as monkeypatching the function does). Everything below sizes itself
from it.

**Chunks** (grid points per compiled call). XLA reports a compiled chunk's temporaries
(``memory_analysis``); the chunk grows with them:

- on a CPU, as many points per device as keep a chunk's temporaries within
  :data:`CPU_WORKING_SET_BYTES`, where they stay in cache (beyond it each point costs more:
  measured a cliff at about 32 MiB per device), and within a quarter of the free host memory;
- on an accelerator, within :data:`ACCELERATOR_MEMORY_FRACTION` of the device's free memory,
  up to :data:`MAX_CHUNK_ACCELERATOR` points: there, wide chunks keep the device busy and
  nothing is gained by staying small.

A strategy may cap its points per device (points evaluated one after another gain nothing from
a longer chunk beyond amortizing the call). Chunks are multiples of the device count.

**Evaluation batches** (samples per batch of a dataset mean; memory only, the means are exact):
on a CPU the objective's own batch size, as always; on an accelerator as many samples as keep
one point's activations within :data:`EVAL_BATCH_MEMORY_FRACTION` of the free memory
(:func:`eval_batch_size`), the activations per sample taken from XLA's compiled-memory estimate
of the loss on a small batch (:func:`bytes_per_sample`).

**Speeds** (:func:`device_numbers`): float32 FLOP/s and memory bandwidth of the device, which
decide whether the first layer's products are worth keeping (:mod:`landscape.engine.stem`).
Accelerators are looked up by ``device_kind`` in :data:`ACCELERATORS` (vendors' datasheet peaks;
an unknown one gets :data:`UNKNOWN_ACCELERATOR`, whose high compute-to-bandwidth ratio keeps
nothing that must be re-read); the CPU's are measured rates of XLA:CPU (:data:`CPU_NUMBERS`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax

from landscape.errors import InputError
from landscape.grid import available_memory_bytes

MAX_CHUNK_CPU = 256  # points per call; beyond this, larger chunks stop paying off on a CPU
MAX_CHUNK_ACCELERATOR = 4096
GUESS_POINTS_PER_DEVICE = 4  # the first compile's chunk, whose temporaries size the real one
CPU_WORKING_SET_BYTES = 16 * 2**20  # per device: a chunk's temporaries beyond this leave the cache
HOST_MEMORY_FRACTION = 0.25  # of the host memory available now, for one chunk's temporaries
ACCELERATOR_MEMORY_FRACTION = 0.5  # of a device's free memory, for one chunk's temporaries
UNREPORTED_DEVICE_BYTES = 2**30  # an accelerator that reports no memory statistics
BUDGET_ENV = "LANDSCAPE_DEVICE_MEMORY"

# One point's batch of activations may take this much of an accelerator's free memory: a
# chunk of points (several at once under vmap) then still fits ACCELERATOR_MEMORY_FRACTION.
EVAL_BATCH_MEMORY_FRACTION = 1 / 16
MAX_EVAL_BATCH = 8192  # samples; larger batches keep no accelerator busier
PROBE_SAMPLES = 64  # the batch whose compiled memory gives the activations per sample


def device_memory_budget(device: Any) -> int:
    """Bytes still free for this process on ``device``: an accelerator's allocator limit minus
    the bytes in use (:data:`UNREPORTED_DEVICE_BYTES` where it reports nothing), a CPU's host
    memory available now; at most ``$LANDSCAPE_DEVICE_MEMORY`` when that is set.

    The hook to force small budgets: tests monkeypatch this function (or set the variable)."""
    if device.platform == "cpu":
        free = available_memory_bytes()
    else:
        try:
            stats = device.memory_stats() or {}
        except Exception:  # a backend without memory statistics
            stats = {}
        limit = stats.get("bytes_limit") or stats.get("bytes_reservable_limit")
        free = (max(int(limit) - int(stats.get("bytes_in_use", 0)), 0) if limit
                else UNREPORTED_DEVICE_BYTES)
    cap = os.environ.get(BUDGET_ENV)
    if cap:
        try:
            free = min(free, int(cap))
        except ValueError:
            raise InputError(f"${BUDGET_ENV} (={cap!r}) must be a number of bytes") from None
    return free


def round_to_devices(size: int, num_devices: int, todo: int) -> int:
    """``size`` rounded up to a multiple of the device count, no larger than ``todo`` needs."""
    size = -(-max(1, size) // num_devices) * num_devices
    return min(size, -(-todo // num_devices) * num_devices)


def guess_chunk(num_devices: int, todo: int) -> int:
    return round_to_devices(GUESS_POINTS_PER_DEVICE * num_devices, num_devices, todo)


def best_chunk(temp_bytes_per_point: float, devices: list, todo: int,
               max_per_device: int | None = None) -> int:
    """Points per call for chunks whose temporaries take ``temp_bytes_per_point`` on one device."""
    num_devices = len(devices)
    per_point = max(temp_bytes_per_point, 1.0)
    if devices[0].platform == "cpu":
        limit = min(MAX_CHUNK_CPU,
                    int(CPU_WORKING_SET_BYTES / per_point) * num_devices,
                    int(device_memory_budget(devices[0]) * HOST_MEMORY_FRACTION / per_point))
    else:
        free = min(device_memory_budget(device) for device in devices)
        limit = min(MAX_CHUNK_ACCELERATOR,
                    int(free * ACCELERATOR_MEMORY_FRACTION / per_point) * num_devices)
    if max_per_device is not None:
        limit = min(limit, max_per_device * num_devices)
    return round_to_devices(limit, num_devices, todo)


def bytes_per_sample(fn: Callable, args_before: tuple, batch: Any) -> float | None:
    """Device bytes per sample of ``fn(*args_before, batch)`` (arrays or
    ``jax.ShapeDtypeStruct``; the batch's leaves share a leading sample axis, e.g.
    :data:`PROBE_SAMPLES` long), from XLA's memory estimate of it compiled: its temporaries
    plus the batch itself. None where the backend gives no estimate (or ``fn`` fails: its
    error is the caller's to report, where it runs ``fn``)."""
    leaves = jax.tree.leaves(batch)
    try:
        analysis = jax.jit(fn).lower(*args_before, batch).compile().memory_analysis()
        temp = analysis.temp_size_in_bytes
    except Exception:  # no estimate on this backend
        return None
    batch_bytes = sum(x.size * x.dtype.itemsize for x in leaves)
    return (temp + batch_bytes) / max(leaves[0].shape[0], 1)


def eval_batch_size(per_sample_bytes: float | None, device: Any, *, num_samples: int,
                    default: int) -> int:
    """Samples per evaluated batch on ``device``: ``default`` on a CPU (or where nothing is
    known of the activations); on an accelerator as many as keep one point's activations
    (``per_sample_bytes`` each) within :data:`EVAL_BATCH_MEMORY_FRACTION` of its free memory,
    at most :data:`MAX_EVAL_BATCH` and the data set's ``num_samples``, at least 1."""
    if device.platform == "cpu" or per_sample_bytes is None:
        return max(1, min(default, num_samples))
    fits = int(device_memory_budget(device) * EVAL_BATCH_MEMORY_FRACTION
               / max(per_sample_bytes, 1.0))
    return max(1, min(fits, MAX_EVAL_BATCH, num_samples))


@dataclasses.dataclass(frozen=True)
class DeviceNumbers:
    """How fast a device computes and moves data.

    Attributes:
      name: what they are the numbers of (a device kind, ``cpu``, ``unknown accelerator``).
      flops: float32 FLOP/s a first layer reaches there.
      bandwidth: bytes/s read from the device's memory.
    """

    name: str
    flops: float
    bandwidth: float


# (part of ``device_kind``, float32 FLOP/s without tensor cores, memory bytes/s): datasheet
# peaks, first match wins. Peaks overstate what a small first layer reaches, which only makes
# recomputing it look cheaper, i.e. keeps less in memory.
ACCELERATORS = (
    ("H100 PCIe", 51e12, 2.0e12),
    ("H100", 67e12, 3.35e12),  # SXM
    ("H200", 67e12, 4.8e12),
    ("A100", 19.5e12, 1.555e12),  # 40 GB; the 80 GB part reads 2.0e12
    ("V100", 15.7e12, 0.9e12),
)
UNKNOWN_ACCELERATOR = DeviceNumbers("unknown accelerator", 100e12, 1e12)
# XLA:CPU measured on this project's 2-core machine (jax 0.10.2): a first convolution (3x3,
# 1-3 input channels, 16 outputs) runs at 4.7-7.1 GFLOP/s, a streaming read at 24 GB/s.
CPU_NUMBERS = DeviceNumbers("cpu", 5e9, 24e9)


def device_numbers(device: Any) -> DeviceNumbers:
    """The :class:`DeviceNumbers` of ``device`` (a ``jax.Device`` or anything with its
    ``platform`` and ``device_kind``)."""
    if device.platform == "cpu":
        return CPU_NUMBERS
    kind = str(getattr(device, "device_kind", ""))
    for part, flops, bandwidth in ACCELERATORS:
        if part.lower() in kind.lower():
            return DeviceNumbers(kind, flops, bandwidth)
    return UNKNOWN_ACCELERATOR
