"""The grid engine: a loss (or any function of the parameters) at every point of a grid.

- :mod:`.chunks` — the chunk loop: sharding over a device mesh, padding, compiled programs kept
  per configuration, pipelined dispatch, resume masks (``evaluate_chunks``, ``evaluate_points``);
- :mod:`.surface` — loss surfaces of an :class:`~landscape.objective.Objective`: data placed on
  the devices or streamed, the shared first layer (``evaluate_surface``);
- :mod:`.stem` — the first layer found in a loss's jaxpr, and whether sharing it pays on a
  device;
- :mod:`.strategy` — how a chunk's points are evaluated (``vmap`` / ``map``) and the probe that
  chooses;
- :mod:`.sizing` — the device-memory budget, chunk and evaluation batch sizes, device speeds;
- :mod:`.memory` — out of device memory: halve the size and try again.
"""

from landscape.engine.chunks import (
    ChunkFn,
    OnChunk,
    default_mesh,
    evaluate_chunks,
    evaluate_points,
    point_params,
)
from landscape.engine.strategy import STRATEGIES, Plan
from landscape.engine.surface import evaluate_surface

__all__ = [
    "STRATEGIES",
    "ChunkFn",
    "OnChunk",
    "Plan",
    "default_mesh",
    "evaluate_chunks",
    "evaluate_points",
    "evaluate_surface",
    "point_params",
]
