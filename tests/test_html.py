"""The HTML export: a self-contained page, checked in a real headless browser (Debian's
Chromium): it loads with no console error and no network request, draws a non-blank 3D canvas,
has one legend entry per trajectory (a click hides both of its traces), and its metric menu
and log toggle swap in the right values."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_surfaces import make_surface

import browser
from landscape.cli import main
from landscape.io import html, surface_h5


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    out = {}
    for name, kwargs in (("plane", {"nx": 9, "ny": 6}), ("line", {"nx": 11, "ny": None})):
        path = folder / f"{name}.h5"
        make_surface(path, **kwargs)
        if name == "plane":  # a metric with no value yet: WebGL must not choke on it
            import h5py

            with h5py.File(path, "r+") as f:
                f["test_loss"] = np.full((6, 9), np.nan)
        result = CliRunner().invoke(main, ["export", str(path), "--html"])
        assert result.exit_code == 0, result.output
        assert result.output.split() == [str(folder / f"{name}.html")]  # beside the file
        out[name] = (folder / f"{name}.html", surface_h5.read(path))
    return out


def test_the_page_holds_plotly_and_the_data_and_loads_nothing(pages):
    text = pages["plane"][0].read_text()
    assert re.search(r"plotly\.js v[3-9]\.", text[:3_000_000])  # the bundle, inlined
    # no element that loads anything: every <script> is inline, no <link>, <img> or <iframe>
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", text)
    assert not re.search(r"<link\b", text)
    controls = json.loads(re.search(r'id="controls-data">(.*?)</script>', text, re.S).group(1))
    assert controls["metrics"] == ["test_loss", "train_acc", "train_loss"]
    assert controls["ndim"] == 2
    loss = make_surface.__globals__["loss_fn"]
    surface = pages["plane"][1]
    yy, xx = np.meshgrid(surface.grid.y, surface.grid.x, indexing="ij")
    want = loss(xx, yy)
    got = np.array(controls["values"]["train_loss"]["linear"], dtype=float)  # null -> nan
    finite = np.isfinite(surface.values["train_loss"])
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6)  # Z[iy, ix], 7 digits
    assert np.isnan(got[~finite]).all()
    np.testing.assert_allclose(np.array(controls["values"]["train_loss"]["log"], float)[finite],
                               np.log10(want[finite]), rtol=1e-6)


def test_a_name_cannot_end_the_script_block(tmp_path):
    import dataclasses

    path = tmp_path / "s.h5"
    make_surface(path, nx=4, ny=3, trajectories=False)
    name = "</script><script>alert(1)</script>"  # (HDF5 names cannot hold "/": in memory)
    surface = dataclasses.replace(surface_h5.read(path), trajectories={name: {
        "x": np.zeros(2), "y": np.zeros(2), "loss": np.ones(2), "step": np.arange(2)}})
    text = html.page(surface, title=name)
    assert "alert(1)" in text and "alert(1)</script>" not in text


PROBE = """
function when(ready, then, tries) {
  if (ready()) return then();
  if (tries <= 0) return report({error: "timed out"});
  setTimeout(function () { when(ready, then, tries - 1); }, 50);
}
var gd = document.getElementById("landscape-plot");
when(function () { return gd.getAttribute("data-ready") === "1"; }, function () {
  var out = {traces: gd.data.map(function (t) {
               return {type: t.type, name: t.name, group: t.legendgroup || null}; }),
             legend: Array.prototype.map.call(document.querySelectorAll(".legend .traces"),
                                              function (e) { return e.textContent; }),
             resources: performance.getEntriesByType("resource").length};
  var select = document.getElementById("metric"), log = document.getElementById("log");
  select.value = "train_acc";
  select.dispatchEvent(new Event("change"));
  var line = gd.data[0].type === "scatter";
  out.acc = {data: line ? gd.data[0].y : gd.data[1].z, meta: gd.data[0].meta};
  log.checked = true;
  log.dispatchEvent(new Event("change"));
  out.logAcc = line ? gd.layout.yaxis.type : gd.data[1].z;
  // a click on the first legend entry hides every trace of that trajectory
  var toggle = document.querySelector(".legend .traces .legendtoggle");
  ["mousedown", "mouseup", "click"].forEach(function (kind) {
    toggle.dispatchEvent(new MouseEvent(kind, {bubbles: true, clientX: 1, clientY: 1})); });
  // plotly.js waits out its double-click delay before it toggles (v4 longer than v3)
  var hidden = function () { return gd.data.some(function (t) { return t.visible === "legendonly"; }); };
  when(hidden, function () {
    out.visible = gd.data.map(function (t) { return t.visible === undefined ? true : t.visible; });
    Plotly.toImage(gd, {format: "png", width: 600, height: 400}).then(function (url) {
      var img = new Image();
      img.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = 600; canvas.height = 400;
        var ctx = canvas.getContext("2d");
        ctx.drawImage(img, 0, 0);
        var pixels = ctx.getImageData(0, 0, 300, 400).data, colours = {};
        for (var i = 0; i < pixels.length; i += 4) {
          colours[pixels[i] + "," + pixels[i + 1] + "," + pixels[i + 2]] = 1; }
        out.colours = Object.keys(colours).length;
        out.webgl = document.querySelectorAll(".gl-container canvas").length;
        select.value = "test_loss";  // no finite value: the 3D surface is hidden, no error
        select.dispatchEvent(new Event("change"));
        out.emptyShown = gd.data[0].visible;
        setTimeout(function () { report(out); }, 200);
      };
      img.src = url;
    }, function (error) { out.error = String(error); report(out); });
  }, 60);
}, 400);
"""


def test_a_surface_with_no_value_yet_is_hidden_in_3d(pages):
    import dataclasses

    surface = pages["plane"][1]
    empty = dataclasses.replace(surface, values={
        name: np.full_like(v, np.nan) for name, v in surface.values.items()})
    fig, _ = html.figure(empty)
    assert fig.data[0].type == "surface" and fig.data[0].visible is False
    assert tuple(fig.layout.scene.zaxis.range) == (0.0, 1.0)
    assert html.figure(surface)[0].data[0].visible is True


def test_a_line_is_a_curve_with_the_paths_on_it(pages):
    surface = pages["line"][1]
    fig, controls = html.figure(surface, log=True)
    kinds = [(trace.type, trace.name, trace.legendgroup) for trace in fig.data]
    assert kinds == [("scatter", "train_loss", None), ("scatter", "adam", "adam"),
                     ("scatter", "sgd", "sgd")]
    assert fig.layout.yaxis.type == "log" and controls["ndim"] == 1
    np.testing.assert_array_equal(fig.data[0].y, surface.values["train_loss"])
    adam = surface.trajectories["adam"]
    from scipy.interpolate import interp1d

    np.testing.assert_allclose(fig.data[1].y, interp1d(surface.grid.x,
                                                       surface.values["train_loss"])(adam["x"]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plane"])  # one Chromium start (~5 s on 2 loaded cores)
def test_the_page_in_headless_chromium(pages, kind):
    if browser.chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run "
                    "installs it)")
    page, surface = pages[kind]
    got = browser.probe(str(page), PROBE)
    assert got["problems"] == [], got["problems"]
    out = got["result"]
    assert "error" not in out, out
    names = sorted(surface.trajectories)
    assert out["legend"] == names  # one legend entry per trajectory
    groups = {name: [i for i, t in enumerate(out["traces"]) if t["group"] == name]
              for name in names}
    per_path = 2 if kind == "plane" else 1  # on the contours and lifted onto the surface
    assert all(len(traces) == per_path for traces in groups.values()), out["traces"]
    assert out["resources"] == 0  # nothing fetched
    # the legend click hid the first trajectory's traces, and nothing else
    hidden = [i for i, v in enumerate(out["visible"]) if v == "legendonly"]
    assert hidden == groups[names[0]], out["visible"]
    acc = np.array(out["acc"]["data"], dtype=float)
    want = surface.values["train_acc"]
    finite = np.isfinite(want)
    np.testing.assert_allclose(acc[finite], want[finite], rtol=1e-6)
    assert out["acc"]["meta"] == "train_acc"
    if kind == "plane":
        log_acc = np.array(out["logAcc"], dtype=float)
        positive = finite & (want > 0)
        np.testing.assert_allclose(log_acc[positive], np.log10(want[positive]), rtol=1e-6)
        assert np.isnan(log_acc[~positive]).all()
        assert out["webgl"] >= 1 and out["colours"] > 200, out  # the 3D surface was drawn
        assert out["emptyShown"] is False
    else:
        assert out["logAcc"] == "log"
        assert out["colours"] > 20, out


def test_long_paths_are_thinned_so_the_page_stays_small(tmp_path):
    """Rosenbrock's compare (14 paths of up to 20,000 steps) made a 32.5 MB page: a path is
    drawn through at most MAX_PATH_POINTS of its steps, its shape and both ends kept."""
    path = tmp_path / "long.h5"
    make_surface(path, nx=9, ny=6, trajectories=False)
    t = np.linspace(0.0, 1.0, 20_001)
    x = np.where(t < 0.01, -0.9 + 150 * t, 0.6 - 0.3 * (t - 0.01))  # a jump, then a crawl
    for name in ("a", "b", "c"):
        surface_h5.write_trajectory(path, name, x=x, y=0.5 + 0.1 * np.sin(40 * t),
                                    loss=1 + t, step=np.arange(t.size))
    surface = surface_h5.read(path)
    fig, controls = html.figure(surface)
    paths = [trace for trace in fig.data if trace.type == "scatter"]
    assert len(paths) == 3
    for trace in paths:
        steps = np.asarray(trace.customdata)[:, 0]
        assert len(steps) <= html.MAX_PATH_POINTS and steps[0] == 0 and steps[-1] == 20_000
        assert np.asarray(trace.x).max() >= 0.59  # the jump's far end is drawn
    html.write(tmp_path / "long.html", surface)
    size = (tmp_path / "long.html").stat().st_size
    import plotly.offline

    assert size < len(plotly.offline.get_plotlyjs()) + 1_500_000, size
    assert "drawn through 600 of them" in (tmp_path / "long.html").read_text()
