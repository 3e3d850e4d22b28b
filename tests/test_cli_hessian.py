"""``landscape hessian``: messages, output files, resuming, and one-line errors for bad input."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.data.sine import sine
from landscape.io import surface_h5

WORKLOAD = "test_cli_hessian:tiny_sine"  # this module (pytest puts tests/ on sys.path)
FAST = ["--workload", WORKLOAD, "--steps", "30", "--quiet"]
NUM_PARAMS = 321  # 1-16-16-1


def tiny_sine():
    """The sine task, small enough that every command here runs in seconds."""
    return sine(num_train=200, num_test=20, hidden=(16, 16))


def no_output_loss():
    """The tiny sine task without its model split into outputs and a loss of them."""
    return dataclasses.replace(tiny_sine(), output_loss=None)


def run(*args):
    return CliRunner().invoke(main, ["hessian", *FAST, *args])


MAP = ["--map", "--x", "-1:1:3", "--y", "-0.5:0.5:2", "--map-steps", "6", "--chunk", "8"]


def test_every_probe_in_one_run_then_the_map_resumes(tmp_path):
    out = tmp_path / "out"
    result = run("--top-k", "2", "--bottom-k", "1", "--trace", "--samples", "20", "--density",
                 "--probes", "3", "--lanczos-steps", "12", *MAP, "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("top eigenvalues: ") and len(lines[0].split(",")) == 2
    assert lines[1].startswith("bottom eigenvalues: ")
    assert lines[2].startswith("trace: ") and "± " in lines[2] and "(20 Rademacher samples)" in lines[2]
    assert lines[3:] == [str(out / name) for name in
                         ("hessian.json", "density.png", "eigen_map.h5", "eigen_map.png")]
    report = json.loads((out / "hessian.json").read_text())
    top = report["eigenvalues"]["top"]["values"]
    assert len(top) == 2 and top[0] >= top[1] > 0
    assert len(report["eigenvalues"]["bottom"]["values"]) == 1
    assert report["num_params"] == NUM_PARAMS and report["settings"]["top_k"] == 2
    assert report["trace"]["samples"] == 20 and report["trace"]["stderr"] > 0
    density = report["density"]
    assert density["deflated"] == 2 and abs(sum(density["weights"]) - 1) < 1e-9
    assert set(report["timings"]) == {"train_s", "eigenvalues_s", "trace_s", "density_s", "map_s"}
    assert report["map"]["shape"] == [2, 3]
    assert not list(out.glob("*.part*"))  # written via a temporary name, then renamed
    for png in ("density.png", "eigen_map.png"):
        assert (out / png).stat().st_size > 10_000

    surface = surface_h5.read(out / "eigen_map.h5")
    assert surface.done.all() and set(surface.values) == {"max_eig", "min_eig"}
    max_eig, min_eig = surface.values["max_eig"], surface.values["min_eig"]
    assert max_eig.shape == (2, 3) and np.all(max_eig > min_eig)
    assert surface.attrs["direction_kind"] == "random-filter" and surface.attrs["lanczos_steps"] == 6

    # The same map again: the file is reused (its spec matches), nothing is re-evaluated.
    again = run(*MAP, "--out", str(out))
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(surface_h5.read(out / "eigen_map.h5").values["max_eig"], max_eig)
    assert "map_s" in json.loads((out / "hessian.json").read_text())["timings"]


def test_unconverged_eigenvalues_are_reported_not_hidden(tmp_path):
    out = tmp_path / "out"
    result = run("--bottom-k", "1", "--max-iter", "8", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "warning: 1 of the bottom eigenvalues did not reach --tol 0.001 in 8 Lanczos steps " \
        "(--stop residual; residual " in result.output and "--atol" in result.output
    report = json.loads((out / "hessian.json").read_text())
    assert report["eigenvalues"]["bottom"]["converged"] == [False]
    assert report["eigenvalues"]["lanczos_steps"] == 8 and report["settings"]["atol"] == 0.0


def test_pyhessians_stopping_rule_takes_fewer_steps(tmp_path):
    """--stop relative-change: PyHessian's rule, no more Lanczos steps than the residual rule,
    and the eigenvalue agrees with the residual rule's (its error bound) to --tol."""
    reports = {}
    for stop in ("residual", "relative-change"):
        out = tmp_path / stop
        result = run("--stop", stop, "--tol", "1e-3", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert result.output.startswith("top eigenvalues: ") and "warning" not in result.output
        reports[stop] = json.loads((out / "hessian.json").read_text())
    fast, sure = reports["relative-change"], reports["residual"]
    assert fast["settings"]["stop"] == "relative-change" and sure["settings"]["stop"] == "residual"
    assert fast["eigenvalues"]["lanczos_steps"] <= sure["eigenvalues"]["lanczos_steps"]
    assert fast["eigenvalues"]["top"]["converged"] == [True]
    lam = sure["eigenvalues"]["top"]["values"][0]
    assert abs(fast["eigenvalues"]["top"]["values"][0] - lam) <= 2e-3 * lam


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top-k", "0"], "Invalid value for '--top-k': 0 is not in the range x>=1"),
        (["--bottom-k", "0"], "Invalid value for '--bottom-k': 0 is not in the range x>=1"),
        (["--top-k", "400"],
         f"Invalid value for --top-k: (=400) must be <= the number of parameters ({NUM_PARAMS})"),
        (["--bottom-k", "322"],
         f"Invalid value for --bottom-k: (=322) must be <= the number of parameters ({NUM_PARAMS})"),
        (["--top-k", "200", "--bottom-k", "200"],
         f"(=400) must be <= the number of parameters ({NUM_PARAMS})"),
        (["--top-k", "5", "--max-iter", "3"],
         "Invalid value for --max-iter: (=3) must be >= --top-k + --bottom-k (5)"),
        (["--map", "--x", "1:-1:3"], "`--x` (=1:-1:3) must have MIN < MAX"),
        (["--map", "--dims", "1", "--y", "0:1:3"], "`--y` was given for a 1D map"),
        (["--tol", "0"], "Invalid value for '--tol'"),
        (["--stop", "change"], "Invalid value for '--stop': 'change' is not one of 'residual', "
                               "'relative-change'"),
        (["--workload", "nope"], "not a built-in workload"),
        (["--operator", "ggn", "--workload", "test_cli_hessian:no_output_loss"],
         "`--operator` (='ggn') needs the model split into outputs and a loss of them: "
         "workload `sine` has no `output_loss`"),
        (["--operator", "newton"], "Invalid value for '--operator': 'newton' is not one of "
                                   "'hessian', 'ggn', 'fisher'"),
        (["--blocks", "*/attn/*"], "`--blocks` pattern '*/attn/*' matches no parameter"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(tmp_path, args, message):
    result = CliRunner().invoke(main, ["hessian", "--steps", "30", "--quiet",
                                       "--workload", WORKLOAD, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_as_a_real_subprocess_with_a_hessian_plane_line(tmp_path):
    """As a user runs it (one device per core): stdout holds the summary, then the paths."""
    here = os.path.dirname(__file__)
    env = {**os.environ, "XLA_FLAGS": "",
           "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    args = ["--map", "--dims", "1", "--x", "-0.1:0.1:3", "--directions", "hessian",
            "--map-steps", "8", "--chunk", "2", "--out", "o"]
    proc = subprocess.run([exe, "hessian", *FAST, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("top eigenvalues: ")
    assert lines[1:] == [os.path.join("o", name) for name in
                         ("hessian.json", "eigen_map.h5", "eigen_map.png")]
    surface = surface_h5.read(tmp_path / "o" / "eigen_map.h5")
    assert surface.grid.y is None and surface.values["max_eig"].shape == (3,)
    assert surface.attrs["direction_kind"] == "hessian"
    report = json.loads((tmp_path / "o" / "hessian.json").read_text())
    assert report["eigenvalues"]["top"]["converged"] == [True]
    # At the centre the line passes through the model: its λmax is the one reported.
    np.testing.assert_allclose(surface.values["max_eig"][1],
                               report["eigenvalues"]["top"]["values"][0], rtol=2e-3)


def test_step_counts_beyond_the_dimension_are_cut_with_a_note(tmp_path):
    """--lanczos-steps and --map-steps above the parameter count were clamped without a word;
    now a note names the number used (the density's per-batch progress bar shows progress)."""
    out = tmp_path / "out"
    result = run("--density", "--probes", "1", "--lanczos-steps", "100000", "--map", "--dims",
                 "1", "--x", "-0.1:0.1:2", "--map-steps", "100000", "--chunk", "2",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (f"note: --lanczos-steps 100000 is more than the {NUM_PARAMS - 1} dimensions left "
            f"({NUM_PARAMS} parameters, 1 deflated): using {NUM_PARAMS - 1}") in result.output
    assert (f"note: --map-steps 100000 is more than the {NUM_PARAMS} parameters: using "
            f"{NUM_PARAMS} Lanczos steps per point (exact)") in result.output
    report = json.loads((out / "hessian.json").read_text())
    assert report["density"]["lanczos_steps"] == NUM_PARAMS - 1
    assert report["map"]["lanczos_steps"] == NUM_PARAMS


def test_an_operator_and_blocks_in_every_output(tmp_path):
    """--operator ggn with --blocks: the matrix named on stdout, in hessian.json, the eigen
    map's attributes, the block table (printed, in hessian.json, blocks.csv) and the blocks'
    densities on one figure; the whole matrix's λmax bounds every block's (Cauchy
    interlacing: a diagonal block's eigenvalues lie inside the whole matrix's range)."""
    out = tmp_path / "out"
    result = run("--operator", "ggn", "--blocks", "*/kernel", "--blocks", "dense2/*",
                 "--max-iter", "24", "--atol", "1e-2",  # λmin ≈ 0: an absolute floor
                 "--density", "--probes", "2", "--lanczos-steps", "8", "--samples", "10",
                 "--map", "--dims", "1", "--x", "-0.1:0.1:2", "--map-steps", "6",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "operator: ggn (Gauss–Newton)"
    header = next(i for i, line in enumerate(lines) if line.startswith("block "))
    assert lines[header + 1].startswith("*/kernel ") and lines[header + 2].startswith("dense2/* ")
    assert lines[-6:] == [str(out / name) for name in (
        "hessian.json", "density.png", "eigen_map.h5", "eigen_map.png", "blocks.csv",
        "block_density.png")]
    report = json.loads((out / "hessian.json").read_text())
    assert report["operator"] == "ggn" and report["map"]["operator"] == "ggn"
    assert report["blocks"]["spec"] == ["*/kernel", "dense2/*"]
    table = report["blocks"]["table"]
    assert [row["params"] for row in table] == [16 + 256 + 16, 16 + 1]
    assert table[1]["leaves"] == ["dense2/bias", "dense2/kernel"]
    lam = report["eigenvalues"]["top"]["values"][0]
    for row in table:  # a PSD matrix's diagonal blocks: 0 <= λ(block) <= λmax(whole)
        assert -1e-4 * lam <= row["lambda_min"] <= row["lambda_max"] <= lam * (1 + 1e-3)
        assert row["trace_stderr"] > 0 and row["operator"] == "ggn" and row["converged"]
    with open(out / "blocks.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["block"] for r in rows] == ["*/kernel", "dense2/*"] and rows[0]["operator"] == "ggn"
    assert surface_h5.read(out / "eigen_map.h5").attrs["operator"] == "ggn"
    assert (out / "block_density.png").stat().st_size > 10_000
