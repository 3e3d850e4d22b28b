"""How many grid points one compiled call evaluates, from the device it runs on.

XLA reports a compiled chunk's temporaries (``memory_analysis``); the chunk grows with them:

- on a CPU, as many points per device as keep a chunk's temporaries within
  :data:`CPU_WORKING_SET_BYTES`, where they stay in cache (beyond it each point costs more:
  measured a cliff at about 32 MiB per device), and within a quarter of the free host memory;
- on an accelerator, within :data:`ACCELERATOR_MEMORY_FRACTION` of the device's free memory
  (``Device.memory_stats()``), up to :data:`MAX_CHUNK_ACCELERATOR` points: there, wide chunks
  keep the device busy and nothing is gained by staying small.

A strategy may cap its points per device (points evaluated one after another gain nothing from
a longer chunk beyond amortizing the call). Chunks are multiples of the device count.
"""

from __future__ import annotations

import jax

from landscape.grid import available_memory_bytes

MAX_CHUNK_CPU = 256  # points per call; beyond this, larger chunks stop paying off on a CPU
MAX_CHUNK_ACCELERATOR = 4096
GUESS_POINTS_PER_DEVICE = 4  # the first compile's chunk, whose temporaries size the real one
CPU_WORKING_SET_BYTES = 16 * 2**20  # per device: a chunk's temporaries beyond this leave the cache
HOST_MEMORY_FRACTION = 0.25  # of the host memory available now, for one chunk's temporaries
ACCELERATOR_MEMORY_FRACTION = 0.5  # of a device's free memory, for one chunk's temporaries


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
                    int(available_memory_bytes() * HOST_MEMORY_FRACTION / per_point))
    else:
        free = min(_free_bytes(device) for device in devices)
        limit = min(MAX_CHUNK_ACCELERATOR,
                    int(free * ACCELERATOR_MEMORY_FRACTION / per_point) * num_devices)
    if max_per_device is not None:
        limit = min(limit, max_per_device * num_devices)
    return round_to_devices(limit, num_devices, todo)


def _free_bytes(device: jax.Device) -> int:
    """Free memory on an accelerator (its allocator's limit minus what is in use); a device
    that reports nothing is taken to have 1 GiB."""
    try:
        stats = device.memory_stats() or {}
    except Exception:  # a backend without memory statistics
        stats = {}
    limit = stats.get("bytes_limit") or stats.get("bytes_reservable_limit")
    if not limit:
        return 2**30
    return max(int(limit) - int(stats.get("bytes_in_use", 0)), 0)
