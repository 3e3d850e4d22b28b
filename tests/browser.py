"""Headless Chromium (Debian's ``chromium`` package) for the HTML export's tests: no network, a
fresh profile per run, results read back from the page's DOM (``--dump-dom``).

``python tests/browser.py PAGE.html SHOT.png`` takes a screenshot (the README's image).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The flags that keep Chromium quiet and offline on a machine without a screen or a network
# (/work/.library/env/machines/python.md); SwiftShader draws WebGL (plotly's 3D) on the CPU.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
         "--host-resolver-rules=MAP * ~NOTFOUND"]

# Runs before any other script of the page: every error and console.error is recorded.
CATCH = """<script>
window.__problems = [];
window.addEventListener("error", function (e) {
  window.__problems.push("error: " + (e.message || (e.target && e.target.src) || e)); }, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__problems.push("rejection: " + e.reason); });
["error", "warn"].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__problems.push(level + ": " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments); }; });
</script>"""


def chromium() -> str | None:
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def probe(page: str, script: str, *, timeout: float = 120.0) -> dict:
    """Open ``page`` (an HTML file) with :data:`CATCH` first and ``script`` last; ``script``
    must call ``report(value)`` once; returns ``{"result": value, "problems": [...]}``."""
    text = open(page, encoding="utf-8").read()
    report = """<script>
function report(value) {
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify({result: value, problems: window.__problems});
  document.body.appendChild(pre);
}
</script>"""
    probed = text.replace("<head>", "<head>\n" + CATCH, 1)
    probed = probed.replace("</body>", report + f"<script>{script}</script>\n</body>", 1)
    folder = tempfile.mkdtemp(prefix="probe-")
    try:
        path = os.path.join(folder, "probe.html")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(probed)
        proc = _run(["--virtual-time-budget=3000", "--dump-dom", f"file://{path}"], timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, re.S)
    if not found:
        raise AssertionError(f"the probe did not report (exit {proc.returncode}): "
                             f"{proc.stderr[-2000:]}")
    raw = (found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
           .replace("&amp;", "&"))
    return json.loads(raw)


def screenshot(page: str, png: str, *, size: tuple[int, int] = (1400, 760),
               timeout: float = 120.0) -> None:
    """A PNG of ``page`` as Chromium draws it."""
    proc = _run([f"--window-size={size[0]},{size[1]}", "--hide-scrollbars",
                 "--virtual-time-budget=30000", f"--screenshot={os.path.abspath(png)}",
                 f"file://{os.path.abspath(page)}"], timeout)
    if not os.path.isfile(png):
        raise AssertionError(f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")


if __name__ == "__main__":
    screenshot(sys.argv[1], sys.argv[2])
