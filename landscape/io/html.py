"""A surface file as one self-contained, interactive HTML page (plotly, its JavaScript inlined:
the page opens with no network).

Format: HTML5 (https://html.spec.whatwg.org/) with the plotly.js bundle that plotly.py ships
(https://plotly.com/javascript/) inlined, the figure as plotly JSON in a
``<script type="application/json">`` block and a short script for the controls.

On a plane: a 3D surface (left) and a filled contour map (right) of one metric at a time (a menu
holds every metric of the file), each trajectory as one legend entry — its path on the contours
and lifted onto the surface, in the colours of ``landscape plot`` — that a click hides or shows,
hover values (α, β, the metric; along a path its step, the recorded loss and the surface there)
and a log10-scale toggle (values <= 0 are gaps). On a line: the metric against α, trajectories
as points on the curve, a log y axis toggle. NaN/inf points are gaps. A path of more than
:data:`MAX_PATH_POINTS` recorded steps is drawn through that many of them (:func:`thinned`).
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

import numpy as np

from landscape.errors import InputError
from landscape.grid import interpolate
from landscape.io.atomic import write_text
from landscape.io.palette import trajectory_color
from landscape.io.surface_h5 import Surface
from landscape.io.surface_layout import json_attribute

PLOT_ID = "landscape-plot"


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def _log10(values: np.ndarray) -> np.ndarray:
    values = _finite_or_nan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(values), np.nan)


def _listed(values: np.ndarray) -> Any:
    """An array as nested lists for JSON: 7 significant digits (float32's), NaN as null."""
    values = np.asarray(values, np.float64)
    flat = [None if not np.isfinite(v) else float(f"{v:.7g}") for v in values.ravel()]
    return np.array(flat, dtype=object).reshape(values.shape).tolist()


def axis_labels(surface: Surface) -> tuple[str, str]:
    """``PC1 (71.3 % of variance)`` on a PCA plane with its ratios, ``x`` / ``y`` where the
    parameters are the plane (a 2D test function), else ``α`` / ``β``."""
    if surface.attrs.get("direction_kind") == "parameters":
        return "x", "y"
    ratios = surface.attrs.get("explained_variance")
    if ratios is not None:
        values = np.ravel(json_attribute(ratios, "explained_variance", "surface"))
        if values.size and all(0 <= v <= 1 for v in values):
            labels = [f"PC{k + 1} ({100 * v:.1f} % of variance)" for k, v in enumerate(values)]
            labels += ["PC2"] * (2 - len(labels))
            return labels[0], labels[1]
    return "α", "β"


def _lifted(heights: list[np.ndarray], surface_values: np.ndarray) -> list[np.ndarray]:
    """Heights of paths drawn on a 3D surface: 1.5 % of its range above it, so that the
    surface does not hide the line it carries."""
    finite = surface_values[np.isfinite(surface_values)]
    lift = 0.015 * float(np.ptp(finite)) if finite.size else 0.0
    return [h + lift for h in heights]


MAX_PATH_POINTS = 600  # per trajectory on the page (the file keeps every recorded step)


def thinned(x: np.ndarray, y: np.ndarray, max_points: int = MAX_PATH_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` points of a path that keep its shape: half evenly
    spaced in step order, half evenly spaced along its length (a long run's last thousands
    of steps barely move, its first few cross the plane), the first and last always."""
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    half = max_points // 2
    by_index = np.linspace(0, n - 1, half).round().astype(np.int64)
    moves = np.hypot(np.diff(x), np.diff(y))
    length = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(moves), moves, 0.0))])
    by_length = np.searchsorted(length, np.linspace(0.0, length[-1], max_points - half))
    return np.unique(np.concatenate([by_index, np.minimum(by_length, n - 1), [0, n - 1]]))


def _trajectory_traces(surface: Surface, base: str) -> list[dict[str, Any]]:
    """Per trajectory (in name order): its points (:func:`thinned`: a run of 20,000 steps
    would make the page tens of MB) and the surface of ``base`` under them."""
    out = []
    for k, name in enumerate(sorted(surface.trajectories)):
        entry = surface.trajectories[name]
        x = np.asarray(entry["x"], np.float64)
        y = np.asarray(entry["y"], np.float64) if "y" in entry else np.zeros_like(x)
        keep = thinned(x, y)
        out.append({"name": name, "color": trajectory_color(k), "x": x[keep], "y": y[keep],
                    "step": np.asarray(entry["step"], np.float64)[keep],
                    "loss": _finite_or_nan(entry["loss"])[keep], "recorded": len(x)})
    return out


def figure(surface: Surface, *, metric: str = "train_loss", log: bool = False,
           title: str = "") -> tuple[Any, dict[str, Any]]:
    """``(plotly Figure, controls)``: the figure as first shown and what the page's script
    swaps in when the metric or the scale changes (every metric, linear and log10)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if metric not in surface.values:
        raise InputError(f"`--metric` (={metric!r}) is not in the file; it holds "
                         f"{', '.join(sorted(surface.values)) or 'no metric'}")
    grid = surface.grid
    paths = _trajectory_traces(surface, metric)
    # The surface under every path for every metric: heights in 3D, points on a 1D curve.
    under = {name: [interpolate(grid, surface.values[name], p["x"],
                                p["y"] if grid.ndim == 2 else None) for p in paths]
             for name in surface.values}
    controls = {
        "metrics": sorted(surface.values), "metric": metric, "log": log, "ndim": grid.ndim,
        "values": {name: {"linear": _listed(_finite_or_nan(v)), "log": _listed(_log10(v))}
                   for name, v in surface.values.items()},
        "under": {name: {"linear": [_listed(_finite_or_nan(z)) for z in zs],
                         "log": [_listed(_log10(z)) for z in zs]} for name, zs in under.items()},
        "paths": [{"step": _listed(p["step"]), "loss": _listed(p["loss"])} for p in paths],
        "lifted": {name: {scale_: [_listed(z) for z in _lifted(
            [f(h) for h in zs], f(surface.values[name]))] for scale_, f in
            (("linear", _finite_or_nan), ("log", _log10))} for name, zs in under.items()},
    }
    z = surface.values[metric]
    shown = _log10(z) if log else _finite_or_nan(z)
    label = f"log10 {metric}" if log else metric
    ax, ay = axis_labels(surface)
    if grid.ndim == 1:
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=grid.x, y=_finite_or_nan(z), mode="lines", name=metric,
                                 line={"color": "#333333"}, showlegend=False,
                                 meta=metric,
                                 hovertemplate=f"{ax} = %{{x:.4g}}<br>%{{meta}} = %{{y:.4g}}"
                                               "<extra></extra>"))
        for p, height in zip(paths, under[metric]):
            fig.add_trace(go.Scatter(
                x=p["x"], y=_finite_or_nan(height), mode="lines+markers", name=p["name"],
                legendgroup=p["name"], line={"color": p["color"]}, meta=metric,
                customdata=np.stack([p["step"], p["loss"]], 1),
                hovertemplate=(f"<b>{html.escape(p['name'])}</b> step %{{customdata[0]}}<br>"
                               f"{ax} = %{{x:.4g}}<br>recorded loss = %{{customdata[1]:.4g}}"
                               "<br>%{meta} here = %{y:.4g}<extra></extra>")))
        fig.update_layout(xaxis_title=ax, yaxis_title=metric,
                          yaxis_type="log" if log else "linear")
        controls["traces"] = {"curve": 0, "paths": list(range(1, 1 + len(paths)))}
    else:
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "xy"}]],
                            column_widths=[0.55, 0.45], horizontal_spacing=0.06)
        hover = (f"{ax} = %{{x:.4g}}<br>{ay} = %{{y:.4g}}<br>%{{meta}} = %{{customdata:.4g}}"
                 "<extra></extra>")
        # float32 (the precision points are evaluated in): plotly stores arrays as binary,
        # and the grid's two copies (surface, contours) are most of the page after plotly.js
        shown, linear = shown.astype(np.float32), _finite_or_nan(z).astype(np.float32)
        fig.add_trace(go.Surface(x=grid.x, y=grid.y, z=shown, customdata=linear,
                                 colorscale="Viridis", showscale=False, name=metric, meta=metric,
                                 hovertemplate=hover), row=1, col=1)
        fig.add_trace(go.Contour(x=grid.x, y=grid.y, z=shown, customdata=linear,
                                 colorscale="Viridis", ncontours=30, name=metric, meta=metric,
                                 colorbar={"title": {"text": label}, "x": 1.0},
                                 hovertemplate=hover), row=1, col=2)
        for p, height in zip(paths, under[metric]):
            custom = np.stack([p["step"], p["loss"], _finite_or_nan(height)], 1)
            text = (f"<b>{html.escape(p['name'])}</b> step %{{customdata[0]}}<br>"
                    f"{ax} = %{{x:.4g}}<br>{ay} = %{{y:.4g}}<br>recorded loss = "
                    "%{customdata[1]:.4g}<br>%{meta} here = %{customdata[2]:.4g}"
                    "<extra></extra>")
            fig.add_trace(go.Scatter(x=p["x"], y=p["y"], mode="lines+markers", name=p["name"],
                                     legendgroup=p["name"], customdata=custom, meta=metric,
                                     line={"color": p["color"], "width": 2.5},
                                     marker={"size": 5}, hovertemplate=text), row=1, col=2)
        transform = _log10 if log else _finite_or_nan
        lifted = _lifted([transform(h) for h in under[metric]], transform(z))
        for p, height, top in zip(paths, under[metric], lifted):
            fig.add_trace(go.Scatter3d(
                x=p["x"], y=p["y"], z=top, mode="lines+markers", name=p["name"],
                legendgroup=p["name"], showlegend=False, meta=metric,
                customdata=np.stack([p["step"], p["loss"], _finite_or_nan(height)], 1),
                line={"color": p["color"], "width": 6}, marker={"size": 2.5,
                                                                 "color": p["color"]},
                hovertemplate=(f"<b>{html.escape(p['name'])}</b> step %{{customdata[0]}}<br>"
                               "recorded loss = %{customdata[1]:.4g}<br>%{meta} here = "
                               "%{customdata[2]:.4g}<extra></extra>")), row=1, col=1)
        n = len(paths)
        controls["traces"] = {"surface": 0, "contour": 1, "paths": list(range(2, 2 + n)),
                              "lifted": list(range(2 + n, 2 + 2 * n))}
        # plotly's WebGL surface fails on one with no finite value (a scan not started yet):
        # such a surface is hidden, on a fixed z range
        drawn = bool(np.isfinite(shown).any())
        fig.data[0].visible = drawn
        z_axis = {} if drawn else {"range": [0.0, 1.0]}
        fig.update_layout(scene={"xaxis_title": ax, "yaxis_title": ay, "zaxis_title": label,
                                 "zaxis": z_axis, "aspectmode": "cube",
                                 "camera": {"eye": {"x": 1.5, "y": -1.5, "z": 1.1}}},
                          xaxis={"title": {"text": ax}}, yaxis={"title": {"text": ay}})
    fig.update_layout(title={"text": title}, template="plotly_white", height=680,
                      margin={"l": 10, "r": 10, "t": 60, "b": 40},
                      legend={"orientation": "h", "x": 0.0, "y": -0.02, "yanchor": "top",
                              "title": {"text": "trajectories (click: hide/show)"}})
    controls["labels"] = {"x": ax, "y": ay}
    return fig, controls


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its ``<script>`` block (a ``</script>`` in a name)."""
    return value.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 12px 18px; color: #222; }}
  #controls {{ display: flex; gap: 24px; align-items: center; margin-bottom: 4px; }}
  #{plot_id} {{ width: 100%; }}
</style>
<script>{plotly_js}</script>
</head>
<body>
<div id="controls">
  <label>metric <select id="metric"></select></label>
  <label><input type="checkbox" id="log"> log10 scale</label>
  <span id="note">{note}</span>
</div>
<div id="{plot_id}"></div>
<script type="application/json" id="figure-data">{figure_json}</script>
<script type="application/json" id="controls-data">{controls_json}</script>
<script>
(function () {{
  "use strict";
  var figure = JSON.parse(document.getElementById("figure-data").textContent);
  var state = JSON.parse(document.getElementById("controls-data").textContent);
  var gd = document.getElementById("{plot_id}");
  var select = document.getElementById("metric"), logBox = document.getElementById("log");
  state.metrics.forEach(function (name) {{
    var option = document.createElement("option");
    option.value = option.textContent = name;
    select.appendChild(option);
  }});
  select.value = state.metric;
  logBox.checked = state.log;
  function rows(k, under) {{  // a path's hover data: step, recorded loss, surface under it
    var p = state.paths[k];
    return p.step.map(function (step, j) {{ return [step, p.loss[j], under[k][j]]; }});
  }}
  function apply() {{
    var metric = select.value, scale = logBox.checked ? "log" : "linear";
    var label = logBox.checked ? "log10 " + metric : metric;
    var t = state.traces, values = state.values[metric], under = state.under[metric];
    var k = t.paths.map(function (_, j) {{ return j; }});
    if (state.ndim === 1) {{
      Plotly.restyle(gd, {{y: [values.linear], name: metric, meta: metric}}, [t.curve]);
      if (k.length) {{
        Plotly.restyle(gd, {{y: under.linear, meta: metric}}, t.paths);
      }}
      Plotly.relayout(gd, {{"yaxis.type": logBox.checked ? "log" : "linear",
                           "yaxis.title.text": metric}});
    }} else {{
      var finite = values[scale].some(function (row) {{
        return row.some(function (v) {{ return v !== null; }}); }});
      Plotly.restyle(gd, {{visible: false}}, [t.surface]);  // (see `drawn` in html.py)
      Plotly.restyle(gd, {{z: [values[scale], values[scale]],
                          customdata: [values.linear, values.linear], name: metric,
                          meta: metric}}, [t.surface, t.contour]);
      if (finite) Plotly.restyle(gd, {{visible: true}}, [t.surface]);
      Plotly.restyle(gd, {{"colorbar.title.text": label}}, [t.contour]);
      if (k.length) {{
        var custom = k.map(function (j) {{ return rows(j, under.linear); }});
        Plotly.restyle(gd, {{customdata: custom, meta: metric}}, t.paths);
        Plotly.restyle(gd, {{z: state.lifted[metric][scale], customdata: custom, meta: metric}},
                       t.lifted);
      }}
      Plotly.relayout(gd, finite ? {{"scene.zaxis.title.text": label, "scene.zaxis.autorange": true}}
                                 : {{"scene.zaxis.title.text": label, "scene.zaxis.range": [0, 1]}});
    }}
    gd.setAttribute("data-metric", metric);
    gd.setAttribute("data-scale", scale);
  }}
  Plotly.newPlot(gd, figure.data, figure.layout, {{responsive: true, displaylogo: false}})
    .then(function () {{ gd.setAttribute("data-ready", "1"); }});
  select.addEventListener("change", apply);
  logBox.addEventListener("change", apply);
}})();
</script>
</body>
</html>
"""


def page(surface: Surface, *, metric: str = "train_loss", log: bool = False,
         title: str = "") -> str:
    """The whole HTML page (see the module docstring) as text."""
    import plotly.io
    import plotly.offline

    fig, controls = figure(surface, metric=metric, log=log, title=title)
    undone = int(surface.done.size - surface.done.sum())
    notes = [f"{undone} of {surface.done.size} points not computed (gaps)"] if undone else []
    if any(len(np.ravel(t["x"])) > MAX_PATH_POINTS for t in surface.trajectories.values()):
        notes.append(f"paths of more than {MAX_PATH_POINTS} recorded steps drawn through "
                     f"{MAX_PATH_POINTS} of them (the surface file holds every one)")
    note = "; ".join(notes)
    return PAGE.format(
        title=html.escape(title or "landscape surface"), plot_id=PLOT_ID,
        plotly_js=plotly.offline.get_plotlyjs(), note=html.escape(note),
        figure_json=_json_for_script(plotly.io.to_json(fig, validate=False)),
        controls_json=_json_for_script(json.dumps(controls, allow_nan=False)))


def write(path: str | os.PathLike, surface: Surface, *, metric: str = "train_loss",
          log: bool = False, title: str = "") -> None:
    """Write the page to ``path`` (atomically: a temporary name, synced, renamed)."""
    write_text(path, page(surface, metric=metric, log=log, title=title))
