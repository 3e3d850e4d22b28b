"""The parts of :func:`~landscape.probes.probe` that write files of their own: Hutchinson's
diagonal (``diagonal.h5``), mini-batch spectra (``minibatch_spectra.csv/.png``) and parameter
blocks (``blocks.csv``, ``block_density.png`` as Zhang et al. 2024 draw them). Each fills its
entry of the report, says its table through the reporter and returns the paths it wrote."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from landscape.probes.session import Fitted, Reporter

MINIBATCH_FILES = ("minibatch_spectra.csv", "minibatch_spectra.png")
BLOCK_COLUMNS = ("block", "params", "lambda_max", "lambda_min", "ratio", "trace",
                 "trace_stderr", "lambda_max_residual", "lambda_min_residual", "converged",
                 "lanczos_steps", "operator")


def diagonal(fitted: Fitted, said: Reporter, report: dict, timings: dict, out: str, *,
             samples: int, seed: int, description: dict) -> list[str]:
    """Hutchinson's diagonal: a table per layer, the summary in ``report``, the whole diagonal
    and its standard errors in ``out/diagonal.h5``."""
    from landscape.curvature import hutchinson_diagonal
    from landscape.io import diagonal_h5

    started = time.perf_counter()
    estimate = fitted(lambda p: hutchinson_diagonal(p, num_samples=samples, seed=seed))
    timings["diagonal_s"] = time.perf_counter() - started
    layers = [{"layer": b.name, "leaves": list(b.leaves), "count": b.count, "mean": b.mean,
               "mean_stderr": b.mean_stderr, "sum_squares": b.sum_squares,
               "sum_variance": b.sum_variance} for b in estimate.blocks]
    path = os.path.join(out, "diagonal.h5")
    report["diagonal"] = {"samples": samples, "probes": "rademacher", "file": path,
                          "layers": layers}
    width = max(len("layer"), *(len(b.name) for b in estimate.blocks))
    said.message(f"diagonal ({samples} Rademacher samples), per layer:")
    said.message(f"  {'layer':<{width}}  {'entries':>8}  {'mean ± SE':>22}  {'Σ diag²':>10}  "
                 f"{'Σ SE²':>9}")
    for b in estimate.blocks:
        said.message(f"  {b.name:<{width}}  {b.count:>8}  "
                     f"{f'{b.mean:.4g} ± {b.mean_stderr:.2g}':>22}  {b.sum_squares:>10.4g}  "
                     f"{b.sum_variance:>9.2g}")
    diagonal_h5.write(path, diagonal_h5.DiagonalFile(
        estimate.diagonal, estimate.stderr, samples,
        {"tool": "landscape", "model": description, "seed": seed, "layers": layers}))
    return [path]


def minibatch(model: Any, said: Reporter, full_values: np.ndarray, report: dict,
              timings: dict, out: str, *, num_batches: int, batch_size: int, top_k: int,
              tol: float, atol: float, stop: str, max_iter: int, seed: int) -> list[str]:
    """The top-k eigenvalues of ``num_batches`` mini-batch Hessians: a line per λ_i, the table
    in ``report`` and ``out/minibatch_spectra.csv``, the figure beside the full data's
    ``full_values`` in ``out/minibatch_spectra.png``."""
    from landscape.curvature import minibatch_eigenvalues
    from landscape.io.atomic import save_figure, write_csv
    from landscape.plot.spectra import minibatch_spectra_figure

    started = time.perf_counter()
    done = said.counter("mini-batches", num_batches)
    spectra = minibatch_eigenvalues(
        model.workload.loss, model.params, model.state, model.workload.dataset("train"),
        num_batches=num_batches, batch_size=batch_size, top_k=top_k, tol=tol, atol=atol,
        stop=stop, max_iter=max_iter, seed=seed, on_batch=lambda i: done(1),
        on_shrink=said.shrink)
    timings["minibatch_s"] = time.perf_counter() - started
    table = [{"batch": i, "size": int(spectra.sizes[i]), "values": spectra.values[i].tolist(),
              "residuals": spectra.residuals[i].tolist(),
              "converged": spectra.converged[i].tolist(),
              "lanczos_steps": int(spectra.iterations[i])} for i in range(num_batches)]
    csv_path, png_path = (os.path.join(out, name) for name in MINIBATCH_FILES)
    report["minibatch_spectra"] = {
        "num_batches": num_batches, "batch_size": batch_size, "top_k": top_k, "seed": seed,
        "draw": "one shuffled epoch of the training set, whole batches",
        "full_data": list(map(float, full_values)), "table": table,
        "files": [csv_path, png_path]}
    for i in range(top_k):
        column = spectra.values[:, i]
        said.message(f"mini-batch λ{i + 1} over {num_batches} batches of {batch_size}: median "
                     f"{np.median(column):.4g}, range {column.min():.4g} – {column.max():.4g} "
                     f"(full data {full_values[i]:.4g})")
    unconverged = int((~spectra.converged).sum())
    if unconverged:
        said.warning(f"warning: {unconverged} mini-batch eigenvalues did not reach `tol` "
                     f"{tol:g} in `max_iter` {max_iter} Lanczos steps (their residuals are in "
                     f"{csv_path})")
    columns = ["batch", "size", *(f"lambda_{i + 1}" for i in range(top_k)),
               *(f"residual_{i + 1}" for i in range(top_k)), "lanczos_steps"]
    rows = [{"batch": row["batch"], "size": row["size"], "lanczos_steps": row["lanczos_steps"],
             **{f"lambda_{i + 1}": repr(v) for i, v in enumerate(row["values"])},
             **{f"residual_{i + 1}": repr(r) for i, r in enumerate(row["residuals"])}}
            for row in table]
    write_csv(csv_path, columns, rows)
    figure = minibatch_spectra_figure(spectra.values, np.asarray(full_values),
                                      batch_size=batch_size,
                                      title=f"{model.workload.name}: top Hessian eigenvalues "
                                            "of mini-batches")
    save_figure(figure, png_path)
    return [csv_path, png_path]


def blocks(fitted: Fitted, said: Reporter, found: Sequence, report: dict, timings: dict,
           out: str, *, spec: Sequence[str], model: Any, operator: str, tol: float,
           atol: float, stop: str, max_iter: int, samples: int, density: bool, probes: int,
           steps: int, seed: int) -> list[str]:
    """Probe every block (``found``, made from the patterns ``spec``) of ``fitted.problem``'s
    matrix; fill ``report["blocks"]``; say the table; write ``out/blocks.csv`` and, with
    ``density``, ``out/block_density.png``."""
    from landscape.curvature import block_summaries
    from landscape.curvature.products import OPERATOR_NAMES
    from landscape.io.atomic import save_figure, write_csv
    from landscape.plot import block_density_figure

    started = time.perf_counter()
    done = said.counter("blocks", len(found))
    summaries = fitted(lambda p: block_summaries(
        p, found, tol=tol, atol=atol, stop=stop, max_iter=max_iter, trace_samples=samples,
        density_probes=probes if density else 0, density_steps=steps, seed=seed,
        on_block=lambda i: done(1)))
    timings["blocks_s"] = time.perf_counter() - started
    rows = [{"block": s.name, "params": s.size, **{k: _finite(v) for k, v in s.row().items()
                                                   if k not in ("name", "size")},
             "operator": operator} for s in summaries]
    report["blocks"] = {
        "spec": list(spec),
        "trace_samples": samples,
        "table": [{**row, "leaves": list(block.leaves),
                   **({"density": _density_record(s.density)} if s.density else {})}
                  for row, block, s in zip(rows, found, summaries)],
    }
    _say_table(said, summaries)
    unconverged = [s.name for s in summaries if not s.converged]
    if unconverged:
        said.warning(f"warning: the eigenvalues of {len(unconverged)} of {len(summaries)} "
                     f"blocks did not reach `tol` {tol:g} (λmin: `tol` × λmax) in `max_iter` "
                     f"{max_iter} Lanczos steps (first: {unconverged[0]}); raise `max_iter`")
    paths = [os.path.join(out, "blocks.csv")]
    write_csv(paths[0], BLOCK_COLUMNS, [{k: "" if v is None else v for k, v in row.items()}
                                        for row in rows])
    if density:
        paths.append(os.path.join(out, "block_density.png"))
        figure = block_density_figure(
            [(s.name, s.density.grid, s.density.density) for s in summaries],
            title=f"{model.workload.name}: {OPERATOR_NAMES[operator]} spectral density by block")
        save_figure(figure, paths[1])
    return paths


def _density_record(density) -> dict:
    return {"sigma": density.sigma, "mean": density.moment(1),
            "nodes": density.nodes.tolist(), "weights": density.weights.tolist()}


def _finite(value):
    """JSON and CSV cells: NaN as None (an empty cell)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _say_table(said: Reporter, summaries) -> None:
    width = max(5, *(len(s.name) for s in summaries))
    said.message(f"{'block':{width}s} {'params':>9s} {'λmax':>11s} {'λmin':>11s} "
                 f"{'|λmin/λmax|':>11s} {'trace ± SE':>22s}")
    for s in summaries:
        trace = ("-" if not math.isfinite(s.trace) else f"{s.trace:.5g} ± {s.trace_stderr:.2g}")
        said.message(f"{s.name:{width}s} {s.size:9,d} {s.lambda_max:11.5g} "
                     f"{s.lambda_min:11.5g} {s.ratio:11.3g} {trace:>22s}")
