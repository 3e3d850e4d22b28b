"""``landscape hessian --blocks``: the curvature of one model's parameter blocks — a table
printed and written (hessian.json, OUT/blocks.csv) and, with --density, the blocks' spectral
densities on one figure (OUT/block_density.png, as Zhang et al. 2024 draw them). Not a
command of its own: the part of ``landscape hessian`` that probes blocks."""

from __future__ import annotations

import math
import os
import time

import click

from landscape.cli.options import progress

BLOCK_COLUMNS = ("block", "params", "lambda_max", "lambda_min", "ratio", "trace",
                 "trace_stderr", "lambda_max_residual", "lambda_min_residual", "converged",
                 "lanczos_steps", "operator")


def probe_blocks(fitted, blocks, report, timings, out, *, spec, model, operator, tol, atol,
                 stop, max_iter, samples, density, probes, steps, seed, quiet) -> list[str]:
    """Probe every block (``blocks``, made from the ``--blocks`` values ``spec``) of
    ``fitted.problem``'s matrix; fill ``report["blocks"]``; print the table; return the paths
    written."""
    from landscape.io.atomic import save_figure
    from landscape.curvature import block_summaries
    from landscape.curvature.products import OPERATOR_NAMES
    from landscape.io.atomic import write_csv
    from landscape.plot import block_density_figure

    started = time.perf_counter()
    with progress(len(blocks), "blocks", quiet=quiet, unit="block") as bar:
        summaries = fitted(lambda p: block_summaries(
            p, blocks, tol=tol, atol=atol, stop=stop, max_iter=max_iter, trace_samples=samples,
            density_probes=probes if density else 0, density_steps=steps, seed=seed,
            on_block=lambda i: bar.update(1)))
    timings["blocks_s"] = time.perf_counter() - started
    rows = [{"block": s.name, "params": s.size, **{k: _finite(v) for k, v in s.row().items()
                                                   if k not in ("name", "size")},
             "operator": operator} for s in summaries]
    report["blocks"] = {
        "spec": list(spec),
        "trace_samples": samples,
        "table": [{**row, "leaves": list(block.leaves),
                   **({"density": _density_record(s.density)} if s.density else {})}
                  for row, block, s in zip(rows, blocks, summaries)],
    }
    _print_table(summaries)
    unconverged = [s.name for s in summaries if not s.converged]
    if unconverged:
        click.echo(f"warning: the eigenvalues of {len(unconverged)} of {len(summaries)} blocks "
                   f"did not reach --tol {tol:g} (λmin: --tol × λmax) in --max-iter {max_iter} "
                   f"Lanczos steps (first: {unconverged[0]}); raise --max-iter", err=True)
    paths = [os.path.join(out, "blocks.csv")]
    write_csv(paths[0], BLOCK_COLUMNS, [{k: "" if v is None else v for k, v in row.items()}
                                        for row in rows])
    if density:
        path = os.path.join(out, "block_density.png")
        matrix = OPERATOR_NAMES[operator]
        figure = block_density_figure(
            [(s.name, s.density.grid, s.density.density) for s in summaries],
            title=f"{model.workload.name}: {matrix} spectral density by block")
        save_figure(figure, path)
        paths.append(path)
    return paths


def _density_record(density) -> dict:
    return {"sigma": density.sigma, "mean": density.moment(1),
            "nodes": density.nodes.tolist(), "weights": density.weights.tolist()}


def _finite(value):
    """JSON and CSV cells: NaN as None (an empty cell)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _print_table(summaries) -> None:
    width = max(5, *(len(s.name) for s in summaries))
    header = (f"{'block':{width}s} {'params':>9s} {'λmax':>11s} {'λmin':>11s} "
              f"{'|λmin/λmax|':>11s} {'trace ± SE':>22s}")
    click.echo(header)
    for s in summaries:
        trace = ("-" if not math.isfinite(s.trace) else f"{s.trace:.5g} ± {s.trace_stderr:.2g}")
        click.echo(f"{s.name:{width}s} {s.size:9,d} {s.lambda_max:11.5g} {s.lambda_min:11.5g} "
                   f"{s.ratio:11.3g} {trace:>22s}")
