"""Loss-landscape analysis on JAX.

One call per job, for any JAX model (a parameter pytree, a Flax NNX or Equinox module)::

    import landscape
    surface = landscape.surface(loss_fn, model, (x, y))   # filter-normalized plane, 51×51
    surface.plot()
    landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)

and the pieces underneath: workloads and training runs (``get_workload``, ``train``,
``load_run``), planes (``random_plane`` ...), the engine (``evaluate_surface``), surface files
(``load_surface``, ``scan_surface``), the curvature pipelines of ``landscape hessian``
(``probe``, ``eigen_map``, ``curvature_along_runs``).
"""

from landscape.version import __version__  # noqa: E402
from landscape.api import Hessian, hessian, surface  # noqa: E402
from landscape.batches import Batch, Batches, Dataset  # noqa: E402
from landscape.data import get_workload  # noqa: E402
from landscape.directions import Plane, normalize_direction, random_direction, random_plane  # noqa: E402
from landscape.engine import evaluate_surface  # noqa: E402
from landscape.grid import Grid  # noqa: E402
from landscape.objective import Objective, dataset_mean  # noqa: E402
from landscape.probes import curvature_along_runs, eigen_map, probe  # noqa: E402
from landscape.runs import load_run  # noqa: E402
from landscape.scan import make_plane, scan_surface  # noqa: E402
from landscape.sources import ModelSource, open_run, open_runs, trained_model  # noqa: E402
from landscape.surfaces import Surface, load_surface  # noqa: E402
from landscape.train import Run, TrainResult, train  # noqa: E402
from landscape.workload import Workload  # noqa: E402

__all__ = [
    "Batch",
    "Batches",
    "Dataset",
    "Grid",
    "Hessian",
    "ModelSource",
    "Objective",
    "Plane",
    "Run",
    "Surface",
    "TrainResult",
    "Workload",
    "curvature_along_runs",
    "dataset_mean",
    "eigen_map",
    "evaluate_surface",
    "get_workload",
    "hessian",
    "load_run",
    "load_surface",
    "make_plane",
    "normalize_direction",
    "open_run",
    "open_runs",
    "probe",
    "random_direction",
    "random_plane",
    "scan_surface",
    "surface",
    "train",
    "trained_model",
]
