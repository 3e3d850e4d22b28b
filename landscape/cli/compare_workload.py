"""``landscape compare`` on a network: each optimizer trains the workload from one shared
initialization (run directories in ``OUT/runs/<optimizer>/``, reused when the arguments match),
one plane through a reference holds every path (least-squares projection with residuals), and
the loss is scanned on that plane as ``landscape scan`` does."""

from __future__ import annotations

import json
import os
import sys

import click

from landscape.cli.compare_outputs import SURFACE_H5, Comparison, comparison_grid
from landscape.cli.options import compute_in, progress, warn_if_batch_exceeds

NETWORK_OPTIMIZERS = ("sgd", "adam", "rangerlars")  # compared when --optimizer is not given
NETWORK_STEPS, NETWORK_BATCH = 500, 128
NETWORK_GRID = 31  # points per axis by default, over the box of the projected paths


def parse_reference(reference: str | None, names) -> str | None:
    """The optimizer whose final point is the reference (None: the shared initial point)."""
    if reference is None:
        return names[0]
    if reference == "init":
        return None
    kind, _, name = reference.partition(":")
    if kind != "final" or name not in names:
        raise click.BadParameter(f"(={reference}) must be init or final:NAME with NAME one of "
                                 f"the compared optimizers: {', '.join(names)}",
                                 param_hint="'--reference'")
    return name


def reuse_run(directory: str, expected: dict, overwrite: bool):
    """The run in ``directory`` if it was made with ``expected`` arguments; None if there is
    none (or ``overwrite``); a run made otherwise is refused."""
    from landscape.runs import RUN_JSON, load_run

    path = os.path.join(directory, RUN_JSON)
    if overwrite or not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        document = {}
    if isinstance(document, dict):  # a run written before precision was recorded: float32
        from landscape.precision import UNRECORDED

        document.setdefault("precision", UNRECORDED)
    found = {key: document.get(key) for key in expected}
    wanted = json.loads(json.dumps(expected))  # as run.json stores it (tuples become lists)
    if found != wanted:
        differ = [key for key in expected if found[key] != wanted[key]]
        raise click.UsageError(f"{directory} holds a run made with other arguments "
                               f"({', '.join(differ)} differ); pass --overwrite to retrain, or "
                               "choose another --out")
    return load_run(directory)


def compare_workload(*, workload_name, names, rates, steps, num, x_spec, y_spec, plane_kind,
                     reference, batch_size, record_every, data_dir, chunk, seed, overwrite, out,
                     quiet, precision=None, eval_batch_size=None) -> Comparison:
    """Train (or reuse) one run per optimizer, then scan their common plane into
    ``OUT/surface.h5`` (the caller holds its lock), all at ``precision`` (None: the one
    ``OUT/surface.h5`` recorded, else ``highest``)."""
    import jax

    from landscape import compare
    from landscape.cli.scan import scan_model
    from landscape.sources import ModelSource
    from landscape.data import get_workload
    from landscape.data.files import ENV_VAR
    from landscape.engine.memory import shrink_message
    from landscape.plot import plane_axis_labels
    from landscape.runs import save_run
    from landscape.scan import resumed_precision
    from landscape.train import OptimizerSpec, train

    reference_name = parse_reference(reference, names)
    precision = compute_in(resumed_precision(os.path.join(out, SURFACE_H5), precision,
                                             overwrite=overwrite))
    if data_dir is not None:
        os.environ[ENV_VAR] = os.path.abspath(os.path.expanduser(data_dir))
    steps = steps or NETWORK_STEPS
    record_every = record_every or max(1, steps // 50)
    # Lookahead wraps Adam here, as in the suite's Rosenbrock table.
    specs = [OptimizerSpec(name, rates.get(name, rates.get("*")),
                           {"inner": "adam"} if name == "lookahead" else {}) for name in names]
    for spec in specs:
        spec.build()  # a bad hyperparameter fails now, not after the first run
    workload = get_workload(workload_name)
    warn_if_batch_exceeds(batch_size, workload_name, len(workload.train))
    batch_size = min(batch_size or NETWORK_BATCH, len(workload.train))
    init = workload.init(jax.random.split(jax.random.key(seed))[0])  # as train(seed=...) draws
    source = None if workload_name == workload.name else workload_name  # as `landscape train`
    run_dirs = [os.path.join(out, "runs", spec.name) for spec in specs]
    runs = {}  # every existing run is checked before anything trains
    for spec, directory in zip(specs, run_dirs):
        expected = {"workload": workload.name, "workload_source": source,
                    "optimizer": spec.resolved(), "seed": seed, "steps": steps,
                    "batch_size": batch_size, "record_every": record_every,
                    "precision": precision}
        runs[spec.name] = reuse_run(directory, expected, overwrite)
    for spec, directory in zip(specs, run_dirs):
        if runs[spec.name] is None:
            with progress(steps, spec.name, quiet=quiet, unit="step") as bar:
                runs[spec.name] = train(
                    workload, spec, steps=steps, batch_size=batch_size, seed=seed,
                    record_every=record_every, init=init,
                    callback=lambda step, loss, bar=bar: bar.update(1),
                    on_shrink=lambda *sizes, bar=bar: bar.write(shrink_message(*sizes),
                                                                file=sys.stderr),
                    precision=precision)
            save_run(runs[spec.name], directory, overwrite=True,
                     extra=None if source is None else {"workload_source": source})
        run = runs[spec.name]
        if run.divergence is not None:  # compared as far as it went, and said so
            click.echo(f"warning: {spec.name} diverged at {run.divergence.describe()}; its path "
                       f"ends at step {int(run.trajectory.step[-1])}", err=True)

    plane, paths, (origin, state, origin_loss) = compare.runs_on_plane(
        runs, kind=plane_kind, reference=reference_name)
    label = "init" if reference_name is None else f"final:{reference_name}"
    grid = comparison_grid(compare.covering_grid(paths, num or NETWORK_GRID), x_spec, y_spec)
    description = {"workload": workload_name, "seed": seed, "steps": steps,
                   "batch_size": batch_size, "record_every": record_every,
                   "optimizers": [run.optimizer for run in runs.values()],
                   "plane": plane_kind, "reference": label}
    model = ModelSource(workload, origin, state, float(origin_loss), description)
    metrics = ("loss", "acc") if "acc" in workload.metrics else ("loss",)
    # lock=False: the caller holds OUT/surface.h5's lock, and a second flock on the same file
    # from this process would be refused.
    scanned = scan_model(model, plane, grid, out, lock=False, figure=False,
                         provenance={**description, "compare": True}, metrics=metrics,
                         splits=("train",), chunk=chunk, precision=precision,
                         overwrite=overwrite, quiet=quiet, eval_batch_size=eval_batch_size)
    if plane_kind == "pca":
        attrs = {"explained_variance": list(plane.explained_variance or ())}
        labels = plane_axis_labels(attrs)
    else:
        others = [name for name in names if name != reference_name]
        ends = [f"final:{name}" for name in others[:2]] + ["init"]
        labels = (f"α (1 at {ends[0]})", f"β (1 at {ends[1]})")
    info = {"workload": workload_name, "plane": plane_kind, "reference": label,
            "explained_variance": None if plane.explained_variance is None
            else list(plane.explained_variance), "seed": seed, "steps": steps,
            "batch_size": batch_size, "record_every": record_every, "precision": precision}
    return Comparison(scanned[0], paths, log=True, min_value=None, labels=labels,
                      title=f"{workload.name}: {plane_kind} plane through {label}",
                      info=info, run_dirs=run_dirs, pre_written=scanned[1:])
