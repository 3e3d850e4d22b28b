"""Loss-landscape analysis on JAX.

One call per job, for any JAX model (a parameter pytree, a Flax NNX or Equinox module)::

    import landscape
    surface = landscape.surface(loss_fn, model, (x, y))   # filter-normalized plane, 51×51
    surface.plot()
    landscape.hessian(loss_fn, model, (x, y)).eigenvalues(top_k=2)

and every pipeline a command runs, as a function:

- models to analyse: ``open_run``/``open_runs`` (run directories of ``landscape train``),
  ``trained_model``; training runs: ``train_runs`` (``landscape train``), ``train``,
  ``load_run``, ``get_workload``;
- surfaces: ``scan_model`` (``landscape scan``), ``compare_on_function`` and
  ``compare_on_workload`` (``landscape compare``), ``scan_surface``, ``make_plane``,
  ``evaluate_surface``, ``load_surface``;
- curvature: ``probe`` and ``eigen_map`` (``landscape hessian``), ``curvature_along_runs``
  (``landscape hessian RUN ... --steps all``);
- geometry: ``sharpness_report`` (``landscape sharpness``), ``connect_runs``
  (``landscape connect``);
- views of a surface file: ``plot_file`` (``landscape plot``), ``export_file``
  (``landscape export``), ``Surface.describe()`` (``landscape info``).
"""

from landscape.version import __version__  # noqa: E402
from landscape.api import Hessian, hessian, surface  # noqa: E402
from landscape.batches import Batch, Batches, Dataset  # noqa: E402
from landscape.comparison import compare_on_function, compare_on_workload  # noqa: E402
from landscape.connectivity import connect_runs  # noqa: E402
from landscape.data import get_workload  # noqa: E402
from landscape.directions import Plane, normalize_direction, random_direction, random_plane  # noqa: E402
from landscape.engine import evaluate_surface  # noqa: E402
from landscape.export import export_file  # noqa: E402
from landscape.grid import Grid  # noqa: E402
from landscape.model_scan import scan_model  # noqa: E402
from landscape.objective import Objective, dataset_mean  # noqa: E402
from landscape.probes import curvature_along_runs, eigen_map, probe  # noqa: E402
from landscape.runs import load_run  # noqa: E402
from landscape.scan import make_plane, scan_surface  # noqa: E402
from landscape.sharpness_table import sharpness_report  # noqa: E402
from landscape.sources import ModelSource, open_run, open_runs, trained_model  # noqa: E402
from landscape.surfaces import Surface, load_surface  # noqa: E402
from landscape.train_loop import Run, TrainResult, train  # noqa: E402
from landscape.training import train_runs  # noqa: E402
from landscape.views import plot_file  # noqa: E402
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
    "compare_on_function",
    "compare_on_workload",
    "connect_runs",
    "curvature_along_runs",
    "dataset_mean",
    "eigen_map",
    "evaluate_surface",
    "export_file",
    "get_workload",
    "hessian",
    "load_run",
    "load_surface",
    "make_plane",
    "normalize_direction",
    "open_run",
    "open_runs",
    "plot_file",
    "probe",
    "random_direction",
    "random_plane",
    "scan_model",
    "scan_surface",
    "sharpness_report",
    "surface",
    "train",
    "train_runs",
    "trained_model",
]
