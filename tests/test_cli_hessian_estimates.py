"""``landscape hessian --trace-method hutch++ --diagonal --minibatch-spectra``: what it prints
is what it writes (hessian.json, diagonal.h5, minibatch_spectra.csv/png), and bad counts are
one-line usage errors."""

import csv
import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from test_cli_hessian import FAST, NUM_PARAMS, WORKLOAD

from landscape.cli import main
from landscape.io import diagonal_h5

LAYERS = {"dense0": 32, "dense1": 272, "dense2": 17}  # 1-16-16-1: kernel + bias per layer


def test_hutchpp_diagonal_and_minibatch_spectra_write_what_they_print(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "hessian", *FAST, "--top-k", "2", "--trace-method", "hutch++", "--samples", "12",
        "--diagonal", "--minibatch-spectra", "3", "--minibatch-size", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("top eigenvalues: ")
    assert lines[1].startswith("trace: ") and lines[1].endswith(
        "(Hutch++, 12 products: 4 sketch, 4 low-rank, 4 residual probes)")
    assert lines[2] == "diagonal (12 Rademacher samples), per layer:"
    assert lines[3].split()[:2] == ["layer", "entries"]
    assert [line.split()[:2] for line in lines[4:7]] == [[k, str(v)] for k, v in LAYERS.items()]
    assert lines[7].startswith("mini-batch λ1 over 3 batches of 50: median ")
    assert lines[8].startswith("mini-batch λ2 over 3 batches of 50: median ")
    files = ["hessian.json", "diagonal.h5", "minibatch_spectra.csv", "minibatch_spectra.png"]
    assert lines[9:] == [str(out / name) for name in files]

    report = json.loads((out / "hessian.json").read_text())
    trace = report["trace"]
    assert (trace["method"], trace["matvecs"], trace["sketch"], trace["residual_probes"]) == \
        ("hutch++", 12, 4, 4) and trace["stderr"] > 0
    assert f"{trace['estimate']:.6g} ± {trace['stderr']:.2g}" in lines[1]
    assert {"trace_s", "diagonal_s", "minibatch_s"} <= set(report["timings"])

    # The diagonal: the file holds every entry; the table and json summarize it per layer.
    layers = report["diagonal"]["layers"]
    assert [(row["layer"], row["count"]) for row in layers] == list(LAYERS.items())
    stored = diagonal_h5.read(out / "diagonal.h5")
    assert stored.num_samples == 12 and stored.provenance["layers"] == layers
    with h5py.File(out / "diagonal.h5") as handle:  # one dataset per leaf, by its path
        names = sorted(f"{layer}/{leaf}" for layer in LAYERS for leaf in ("bias", "kernel"))
        assert sorted(f"{layer}/{leaf}" for layer in handle["diagonal"]
                      for leaf in handle["diagonal"][layer]) == names
    for row, line in zip(layers, lines[4:7]):
        d = np.concatenate([np.ravel(v) for v in stored.diagonal[row["layer"]].values()])
        se = np.concatenate([np.ravel(v) for v in stored.stderr[row["layer"]].values()])
        assert d.size == row["count"] and np.all(se >= 0) and se.max() > 0  # dead units: 0
        np.testing.assert_allclose(row["mean"], d.mean(), rtol=1e-5)
        np.testing.assert_allclose(row["sum_squares"], np.sum(d**2), rtol=1e-5)
        np.testing.assert_allclose(row["sum_variance"], np.sum(se**2), rtol=1e-5)
        assert f"{row['mean']:.4g} ± {row['mean_stderr']:.2g}" in line
    assert sum(LAYERS.values()) == NUM_PARAMS

    # Mini-batch spectra: the table in hessian.json and the CSV agree, beside the full data.
    spectra = report["minibatch_spectra"]
    assert spectra["full_data"] == report["eigenvalues"]["top"]["values"]
    table = spectra["table"]
    with open(out / "minibatch_spectra.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["batch"]) for r in rows] == [t["batch"] for t in table] == [0, 1, 2]
    for row, entry in zip(rows, table):
        assert int(row["size"]) == entry["size"] == 50 and entry["converged"] == [True, True]
        assert [float(row["lambda_1"]), float(row["lambda_2"])] == entry["values"]
        assert [float(row["residual_1"]), float(row["residual_2"])] == entry["residuals"]
        assert entry["values"][0] >= entry["values"][1]
    first = np.array([t["values"][0] for t in table])
    assert f"median {np.median(first):.4g}, range {first.min():.4g} – {first.max():.4g}" \
        in lines[7]
    assert (out / "minibatch_spectra.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["--trace-method", "hutch++", "--samples", "3"],
     "Invalid value for --samples: (=3) must be >= 4 for --trace-method hutch++"),
    (["--trace-method", "hutch"], "Invalid value for '--trace-method': 'hutch' is not one of "
                                  "'hutchinson', 'hutch++'"),
    (["--minibatch-spectra", "5", "--minibatch-size", "50"],
     "`--minibatch-spectra` (=5) whole batches of `--minibatch-size` (=50) need 250 samples; "
     "the training set of `sine` holds 200 (4 batches)"),
    (["--minibatch-spectra", "0"], "Invalid value for '--minibatch-spectra': 0 is not in the "
                                   "range x>=1"),
])
def test_bad_counts_are_one_line_usage_errors_before_training(tmp_path, args, message):
    result = CliRunner().invoke(main, ["hessian", "--workload", WORKLOAD, "--steps", "100000",
                                       "--quiet", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
