"""A scanned surface as the Python API returns it: :class:`Surface` and :func:`load_surface`.

Everything a surface file holds — coordinates, one array per metric, the ``done`` mask, the
plane, the trajectories, the provenance — with the views: ``.plot()`` (a matplotlib figure),
``.to_vtk(folder)`` (ParaView files), ``.save(path)`` (the HDF5 file Li et al.'s scripts read)
and ``.describe()`` (the lines of ``landscape info``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from landscape.description import describe
from landscape.directions import Plane, layout_from_record
from landscape.io import surface_h5
from landscape.io.surface_record import SurfaceRecord


@dataclasses.dataclass(frozen=True)
class Surface(surface_h5.Surface):
    """A surface: ``grid``, ``values`` (``{name: grid.shape}``, NaN where not done), ``done``,
    ``attrs`` (as stored), ``directions``, ``trajectories``; and ``path``, the file it lives in
    (None for a surface held in memory only)."""

    path: str | None = None

    @classmethod
    def of(cls, stored: surface_h5.Surface, path: str | os.PathLike | None = None) -> Surface:
        fields = {f.name: getattr(stored, f.name) for f in dataclasses.fields(surface_h5.Surface)}
        return cls(**fields, path=None if path is None else os.fspath(path))

    @property
    def record(self) -> SurfaceRecord:
        """The provenance, typed."""
        return SurfaceRecord.from_attrs(self.attrs)

    @property
    def plane(self) -> Plane | None:
        """The plane the surface lies on (None when the file stores no directions)."""
        if "origin" not in self.directions or "d1" not in self.directions:
            return None
        record = self.record
        return Plane(self.directions["origin"], self.directions["d1"], self.directions.get("d2"),
                     kind=record.direction_kind or "file",
                     normalization=record.normalization or "none",
                     ignore=record.ignore or "none", seed=record.seed,
                     explained_variance=record.explained_variance,
                     output_axis=layout_from_record(record.output_axis))

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def plot(self, metric: str | None = None, *, log: bool | None = None, title: str | None = None
             ) -> Any:
        """The scan's figure of ``metric`` (default: the first loss): filled contours with the
        trajectories where there are any, else contours beside a 3D view (curves in 1D). A
        ``matplotlib.figure.Figure`` (a notebook shows it; ``.savefig(path)`` saves it)."""
        from landscape.plot import kind_figure, surface_figure
        from landscape.plot.figures import completion_note

        metric = metric or next((n for n in self.values if n.endswith("loss")),
                                next(iter(self.values)))
        log = metric.endswith("loss") if log is None else log
        record = self.record
        if title is None:
            title = f"{record.workload or ''}: {metric}, {record.direction_kind or 'file'} directions"
            note = completion_note(self.done_of(metric))
            if note:
                title += f" — {note} (scan incomplete)"
        if self.trajectories and self.grid.ndim == 2:
            return kind_figure("filled", self.grid, self.values[metric], metric=metric,
                               attrs=self.attrs, trajectories=self.trajectories, log=log,
                               title=title)
        return surface_figure(self.grid, self.values[metric], log=log, title=title,
                              metric=metric, attrs=self.attrs)

    def summary(self) -> str:
        """One line: what was scanned, the grid, the metrics, how many points are done, the
        file."""
        grid, record = self.grid, self.record
        axes = [f"{len(grid.x)} points over [{grid.x[0]:.3g}, {grid.x[-1]:.3g}]"]
        if grid.y is not None:
            axes = [f"{len(grid.x)} × {len(grid.y)} grid over [{grid.x[0]:.3g}, "
                    f"{grid.x[-1]:.3g}] × [{grid.y[0]:.3g}, {grid.y[-1]:.3g}]"]
        done = int(self.done.sum())
        parts = [f"{record.workload or 'surface'}, {record.direction_kind or 'file'} directions",
                 *axes, ", ".join(sorted(self.values)) or "no metric",
                 f"{done:,} of {self.done.size:,} points done"]
        if self.path is not None:
            parts.append(self.path)
        return "; ".join(parts)

    def describe(self) -> list[str]:
        """What the surface holds, line by line, as ``landscape info`` prints it (grid,
        completeness, metrics, provenance, directions, trajectories; the spectral density when
        the file at :attr:`path` has one): :func:`landscape.description.describe`."""
        density = None if self.path is None else surface_h5.read_density(self.path)
        return describe(self, density=density)

    def _repr_html_(self) -> str:
        """How a notebook shows a surface: its summary line over the figure of :meth:`plot`,
        embedded as a PNG (no script, so it shows in any notebook and in saved ones; ``landscape
        export --html`` makes the interactive page)."""
        import base64
        import html
        import io

        buffer = io.BytesIO()
        self.plot().savefig(buffer, format="png", dpi=80)
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        summary = html.escape(self.summary())
        return (f'<div class="landscape-surface"><div style="font-family: monospace">{summary}'
                f'</div><img src="data:image/png;base64,{image}" alt="{summary}" '
                'style="max-width: 100%"></div>')

    def to_vtk(self, folder: str | os.PathLike, **options: Any) -> list[str]:
        """ParaView files in ``folder``: the ``.vts`` surface, a ``.vtp`` per trajectory, the
        ``.pvd`` collection and a ParaView script (``options`` as ``landscape export --vtk``)."""
        from landscape.io import vtk as vtk_io

        os.makedirs(folder, exist_ok=True)
        return vtk_io.export(self, folder, **options)

    def save(self, path: str | os.PathLike) -> str:
        """This surface as a surface file at ``path`` (written whole, atomically)."""
        surface_h5.write(path, self)
        return os.fspath(path)


def load_surface(path: str | os.PathLike) -> Surface:
    """The surface file at ``path`` (ours or Li et al.'s; a running or killed scan's finished
    points included)."""
    return Surface.of(surface_h5.read(path), path)
