"""Loss-landscape analysis on JAX.

The Python API in one import::

    import landscape
    workload = landscape.get_workload("sine")
    result = landscape.train(workload, optax.adam(1e-2), steps=2000)
    plane = landscape.random_plane(result.params, normalization="filter")
    grid = landscape.Grid.from_specs("-1:1:51", "-1:1:51")
    values = landscape.evaluate_surface(workload, result.state, plane, grid)
"""

__version__ = "0.1.0"

from landscape.data import get_workload  # noqa: E402
from landscape.directions import Plane, normalize_direction, random_direction, random_plane  # noqa: E402
from landscape.grid import Grid, evaluate_surface  # noqa: E402
from landscape.runs import load_run  # noqa: E402
from landscape.train import Run, TrainResult, train  # noqa: E402
from landscape.workload import Batch, Dataset, Workload, dataset_mean  # noqa: E402

__all__ = [
    "Batch",
    "Dataset",
    "Grid",
    "Plane",
    "Run",
    "TrainResult",
    "Workload",
    "dataset_mean",
    "evaluate_surface",
    "get_workload",
    "load_run",
    "normalize_direction",
    "random_direction",
    "random_plane",
    "train",
]
