"""Curvature pipelines: a model in, the files of ``landscape hessian`` out, callable from
Python as the command calls them.

::

    model, run = landscape.open_run("runs/adam")
    written = landscape.probe(model, "out", top_k=2, trace=True, density=True)
    written.report["eigenvalues"]["top"]["values"], written.files   # == out/hessian.json, ...
    landscape.eigen_map(model, "out", grid=landscape.Grid.from_specs("-1:1:21", "-1:1:21"))
    landscape.curvature_along_runs(["runs/sgd", "runs/adam"], "along", steps="all")

``probe`` (``report``: eigenvalues and what else is asked, ``hessian.json``), ``eigen_map``
(λmax and λmin over a plane, resumed), ``curvature_along_runs`` (λmax along training against
each optimizer's stability threshold). They print nothing: progress, summary lines and
warnings go to the callbacks they take (:class:`~landscape.probes.session.Reporter`). The
algorithms underneath are in :mod:`landscape.curvature` and :mod:`landscape.geometry`.
"""

from landscape.probes.maps import MAP_DIRECTIONS, eigen_map
from landscape.probes.report import check_probe, probe
from landscape.probes.session import Reporter, Written
from landscape.probes.training import curvature_along_runs

__all__ = ["MAP_DIRECTIONS", "Reporter", "Written", "check_probe", "curvature_along_runs",
           "eigen_map", "probe"]
