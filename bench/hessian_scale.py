"""The Hessian at a real data set's size on this CPU: ResNet-20 on 50,000 CIFAR-shaped images.

Every curvature product is summed batch by batch (:mod:`landscape.curvature.operator`), so memory
is one batch's whatever the data set's size. Measured here, each in its own process (its peak
RSS, ``getrusage``), on synthetic images written in CIFAR-10's binary format (nothing
downloaded):

- ``cli``: ``landscape hessian --workload cifar10-resnet20 --steps 1`` (one training step, then
  λmax to a relative residual of 1e-3) over ``--images`` images (``LANDSCAPE_DATA`` points at
  them);
- ``hvp``: one HVP over ``--images`` images (after a warm-up one: compile time apart);
- ``api``: the same λmax through ``landscape.hessian(loss_fn, model, loader)``, the data
  streamed from a re-iterable that reads the binary files batch by batch at every product (as
  PyHessian reads a DataLoader).

Where λmax over all 50,000 would take too long here, run ``hvp`` at 50,000 and ``cli``/``api``
at 10,000 (``--images``); peak RSS is printed for each. Run:
``python bench/hessian_scale.py --what hvp,cli,api --images 50000 [--lambda-images 10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def child(what: str, folder: str, images: int, out: str) -> None:
    """Run one measurement in this process and write its JSON to ``out``."""
    import jax
    import numpy as np

    import landscape
    from landscape.data import cifar

    result: dict = {"what": what, "images": images, "devices": jax.device_count()}
    workload = cifar.cifar10_resnet20(folder)
    params, state = workload.init(jax.random.key(0))
    if what == "hvp":
        from landscape.curvature import hessian_problem

        problem = hessian_problem(workload, params, state)
        v = jax.device_put(jax.random.normal(jax.random.key(1), problem.params.shape),
                           problem.params.sharding)
        start = time.perf_counter()
        problem.hvp(v).block_until_ready()
        result["first_hvp_s"] = time.perf_counter() - start
        start = time.perf_counter()
        problem.hvp(v).block_until_ready()
        result["hvp_s"] = time.perf_counter() - start
        result.update(batch_size=problem.batch_size, summed_on="host" if problem.on_host
                      else "device", num_params=problem.num_params)
    elif what == "api":
        from landscape.data.cifar import TRAIN_FILES, read_cifar_batch
        from landscape.workload import Batch

        class Loader:
            """CIFAR's binary batch files, read again at every pass, 500 images at a time."""

            def __iter__(self):
                for name in TRAIN_FILES:
                    x, y = read_cifar_batch(os.path.join(folder, name))
                    for start in range(0, len(x), 500):
                        yield x[start:start + 500], y[start:start + 500]

        def loss_fn(p, s, batch):
            return workload.loss(p, s, Batch(*batch))

        start = time.perf_counter()
        hessian = landscape.hessian(loss_fn, params, Loader(), state=state)
        pairs = hessian.eigenpairs(top_k=1, tol=1e-3)
        result.update(lambda_max=float(pairs.top.values[0]), hvps=pairs.iterations,
                      converged=bool(pairs.top.converged[0]), s=time.perf_counter() - start,
                      summed_on="host" if hessian.problem.on_host else "device")
    else:
        raise SystemExit(f"unknown measurement {what!r}")
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(out).write_text(json.dumps(result))
    del np


def measure(what: str, folder: str, images: int) -> dict:
    """``what`` in a fresh process; its JSON with wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        start = time.perf_counter()
        if what == "cli":
            env = {**os.environ, "LANDSCAPE_DATA": str(Path(folder).parent)}
            rss = os.path.join(tmp, "rss")
            command = ["/usr/bin/time", "-f", "%M", "-o", rss,
                       os.path.join(os.path.dirname(sys.executable), "landscape"), "hessian",
                       "--workload", "cifar10-resnet20", "--steps", "1", "--out",
                       os.path.join(tmp, "out"), "--quiet"]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"landscape hessian failed: {done.stderr.strip()}")
            report = json.loads(Path(tmp, "out", "hessian.json").read_text())
            result = {"what": "cli", "images": images,
                      "lambda_max": report["eigenvalues"]["top"]["values"][0],
                      "hvps": report["eigenvalues"]["lanczos_steps"],
                      "converged": report["eigenvalues"]["top"]["converged"][0],
                      "eigenvalues_s": report["timings"]["eigenvalues_s"],
                      "batch_size": report["settings"].get("batch_size"),
                      "peak_rss_bytes": int(Path(rss).read_text().split()[-1]) * 1024}
        else:
            done = subprocess.run([sys.executable, __file__, "--child", what, "--folder", folder,
                                   "--images", str(images), "--result", out],
                                  capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{what} failed: {done.stderr.strip()[-2000:]}")
            result = json.loads(Path(out).read_text())
        result["wall_s"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", default="hvp,cli,api", help="comma-separated: hvp, cli, api")
    parser.add_argument("--images", type=int, default=50_000, help="images for the HVP")
    parser.add_argument("--lambda-images", type=int, default=None,
                        help="images for λmax (cli, api) [default: --images]")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.images, args.result)
        return
    from gpu import synthetic_cifar

    results = []
    with tempfile.TemporaryDirectory(prefix="landscape-hessian-scale-") as root:
        folders = {}
        for what in args.what.split(","):
            images = args.images if what == "hvp" else (args.lambda_images or args.images)
            if images not in folders:
                folders[images] = os.path.join(root, str(images), "cifar10")
                os.makedirs(folders[images])
                synthetic_cifar(folders[images], images)
            result = measure(what, folders[images], images)
            results.append(result)
            print(json.dumps(result), flush=True)
    for r in results:
        line = f"{r['what']:4s} {r['images']:6d} images: wall {r['wall_s']:7.1f} s, peak RSS " \
               f"{r['peak_rss_bytes'] / 2**30:5.2f} GiB"
        if "hvp_s" in r:
            line += f", one HVP {r['hvp_s']:.1f} s (first {r['first_hvp_s']:.1f} s)"
        if "lambda_max" in r:
            line += f", λmax {r['lambda_max']:.5g} in {r['hvps']} HVPs"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
