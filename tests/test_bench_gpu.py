"""``bench/gpu.py --tiny`` (the accelerator benchmark's own code, on a ResNet-8 and a few
synthetic CIFAR images) runs on the CPU and writes its JSON: the script the GPU check runs
cannot have rotted when a device is lent."""

import importlib.util
import json
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu.py"


def test_the_gpu_bench_runs_tiny_on_the_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "gpu.json"
    bench.main(["--tiny", "--images", "64", "--grid", "5", "--partial", "2", "--probes", "3",
                "--strategy", "map", "--out", str(out)])
    report = json.loads(out.read_text())
    hessian = report["hessian"]
    assert report["tiny"] and report["images"] == 64 and report["num_params"] > 1000
    assert hessian["precision"] == "highest" and hessian["lambda_max"]["converged"]
    assert np.isfinite(hessian["lambda_max"]["value"]) and hessian["hvp_s"] > 0
    assert hessian["trace"]["probes"] == 3
    for precision in ("default", "highest"):
        scan = report["scans"][precision]
        assert scan["precision"] == precision and scan["partial"]["points"] == 4
        assert scan["partial"]["finite"] == 4 and scan["full_estimate_s"] > 0
        # The full 5x5 ran (it fits the budget) or says it was extrapolated.
        assert scan["full_extrapolated"] == (scan["full"] is None)
