"""``landscape hessian --diagonal`` and ``--minibatch-spectra``: the estimated diagonal per
layer, and the top eigenvalues of mini-batch Hessians beside the full data's (tables on stdout,
the numbers in hessian.json, the files beside it)."""

from __future__ import annotations

import os
import time

import click

from landscape.cli.options import progress

MINIBATCH_FILES = ("minibatch_spectra.csv", "minibatch_spectra.png")


def check_minibatches(workload, num_batches: int, batch_size: int) -> None:
    """Refuse ``--minibatch-spectra N`` when the training set holds fewer than N whole batches
    of ``--minibatch-size``."""
    from landscape.batches import Dataset

    data = workload.dataset("train")
    if isinstance(data, Dataset) and num_batches * batch_size > len(data):
        raise click.UsageError(
            f"`--minibatch-spectra` (={num_batches}) whole batches of `--minibatch-size` "
            f"(={batch_size}) need {num_batches * batch_size} samples; the training set of "
            f"`{workload.name}` holds {len(data)} ({len(data) // batch_size} batches)")


def diagonal_report(fitted, report: dict, timings: dict, out: str, *, samples: int, seed: int,
                    description: dict) -> list[str]:
    """Hutchinson's diagonal: a table per layer on stdout, the summary in ``report``, the whole
    diagonal and its standard errors in OUT/diagonal.h5."""
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
    click.echo(f"diagonal ({samples} Rademacher samples), per layer:")
    click.echo(f"  {'layer':<{width}}  {'entries':>8}  {'mean ± SE':>22}  {'Σ diag²':>10}  "
               f"{'Σ SE²':>9}")
    for b in estimate.blocks:
        click.echo(f"  {b.name:<{width}}  {b.count:>8}  "
                   f"{f'{b.mean:.4g} ± {b.mean_stderr:.2g}':>22}  {b.sum_squares:>10.4g}  "
                   f"{b.sum_variance:>9.2g}")
    diagonal_h5.write(path, diagonal_h5.DiagonalFile(
        estimate.diagonal, estimate.stderr, samples,
        {"tool": "landscape", "model": description, "seed": seed, "layers": layers}))
    return [path]


def minibatch_report(model, full_values, report: dict, timings: dict, out: str, *,
                     num_batches: int, batch_size: int, top_k: int, tol: float, atol: float,
                     stop: str, max_iter: int, seed: int, quiet: bool) -> list[str]:
    """The top-k eigenvalues of ``num_batches`` mini-batch Hessians: a line per λ_i on stdout,
    the table in ``report`` and OUT/minibatch_spectra.csv, the figure beside the full data's
    ``full_values`` in OUT/minibatch_spectra.png."""
    import numpy as np

    from landscape.io.atomic import save_figure
    from landscape.engine.memory import shrink_message
    from landscape.curvature import minibatch_eigenvalues
    from landscape.io.atomic import write_csv
    from landscape.plot.spectra import minibatch_spectra_figure

    started = time.perf_counter()
    with progress(num_batches, "mini-batches", quiet=quiet, unit="batch") as bar:
        spectra = minibatch_eigenvalues(
            model.workload.loss, model.params, model.state, model.workload.dataset("train"),
            num_batches=num_batches, batch_size=batch_size, top_k=top_k, tol=tol, atol=atol,
            stop=stop, max_iter=max_iter, seed=seed, on_batch=lambda i: bar.update(1),
            on_shrink=lambda old, new, what: click.echo(shrink_message(old, new, what),
                                                        err=True))
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
        click.echo(f"mini-batch λ{i + 1} over {num_batches} batches of {batch_size}: median "
                   f"{np.median(column):.4g}, range {column.min():.4g} – {column.max():.4g} "
                   f"(full data {full_values[i]:.4g})")
    unconverged = int((~spectra.converged).sum())
    if unconverged:
        click.echo(f"warning: {unconverged} mini-batch eigenvalues did not reach --tol {tol:g} "
                   f"in --max-iter {max_iter} Lanczos steps (their residuals are in "
                   f"{csv_path})", err=True)
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
