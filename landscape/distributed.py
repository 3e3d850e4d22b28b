"""Multi-host start-up and the helpers the evaluator needs to run on a global device mesh.

Every process runs the same program; ``jax.distributed.initialize`` joins them into one runtime
(explicit flags, or the cluster's environment: SLURM, Open MPI, Kubernetes ... as detected by JAX).
Each process evaluates its share of every chunk; process 0 gathers the values and is the only one
that writes files. On CPU, gloo collectives join processes on 127.0.0.1.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Sharding

from landscape.errors import InputError

# Environment variables by which a cluster announces more than one process.
_CLUSTER_HINTS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS")


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join the multi-process runtime if asked to (flags) or if the environment says so.

    Returns True when this process is part of a multi-process runtime. Must run before any other
    JAX computation. With no flags and no cluster environment it does nothing.
    """
    flags = (coordinator, num_processes, process_id)
    if any(flag is not None for flag in flags):
        if None in flags:
            raise InputError(
                "`--coordinator`, `--num-processes` and `--process-id` must be given together "
                f"(got {coordinator!r}, {num_processes!r}, {process_id!r})"
            )
        if not 0 <= process_id < num_processes:
            raise InputError(
                f"`--process-id` (={process_id}) must be in [0, --num-processes={num_processes})"
            )
        # Only the CPU client reads this (GPUs use NCCL); asking the backend which platform
        # runs would start it, which must not happen before ``initialize``.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
        return True
    if _cluster_size() > 1:
        jax.distributed.initialize()
        return True
    return False


def _cluster_size() -> int:
    for name in _CLUSTER_HINTS[:2]:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 2 if os.environ.get("JAX_COORDINATOR_ADDRESS") else 1


def is_writer() -> bool:
    """True on the process that writes files (process 0)."""
    return jax.process_index() == 0


def put_global(tree: Any, sharding: Sharding) -> Any:
    """Place host arrays (identical on every process) onto a possibly multi-process sharding:
    each process supplies only the shards its own devices hold."""

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def to_host(x: jax.Array) -> np.ndarray:
    """A global array's full value on every process (gathered when it spans processes)."""
    if jax.process_count() == 1 or x.is_fully_addressable:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def broadcast_from_writer(x: np.ndarray) -> np.ndarray:
    """Process 0's value of ``x`` on every process (e.g. the resume mask it read from disk)."""
    if jax.process_count() == 1:
        return x
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(x))
