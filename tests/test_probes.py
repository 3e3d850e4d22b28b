"""``landscape.probes`` from Python: ``probe``'s report is the hessian.json it writes and its
eigenvalues a dense Hessian's (float64), ``eigen_map`` resumes an interrupted map and refuses
another one (the files: tests/test_cli_hessian.py), ``curvature_along_runs`` takes opened runs; none of them prints (the lines go to
the callbacks)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import landscape
from landscape.data.sine import sine
from landscape.errors import InputError, ReadError, ResumeMismatch
from landscape.io import surface_h5
from landscape.sources import ModelSource
from landscape.workload import Batch, Dataset

WORKLOAD = "test_probes:tiny_sine"  # this module (pytest puts tests/ on sys.path)


def tiny_sine():
    """1-4-1 MLP (13 parameters) on 48 points, in batches of 20 (two whole, one short)."""
    return dataclasses.replace(sine(num_train=48, num_test=8, hidden=(4,)), batch_size=20)


def model_at(workload, seed: int = 0) -> ModelSource:
    params, state = workload.init(jax.random.key(seed))
    everything = Batch(jnp.asarray(workload.train.inputs), jnp.asarray(workload.train.targets))
    loss = float(workload.loss(params, state, everything)[0])
    return ModelSource(workload, params, state, loss, {"workload": "tiny", "seed": seed})


def test_probe_reports_what_it_writes_and_a_dense_hessians_eigenvalues(tmp_path, capsys):
    workload = tiny_sine()
    with jax.enable_x64(True):
        data = Dataset(workload.train.inputs.astype(np.float64),
                       workload.train.targets.astype(np.float64))
        workload = dataclasses.replace(workload, train=data)
        model = model_at(workload)
        model = dataclasses.replace(model, params=jax.tree.map(
            lambda a: np.asarray(a, np.float64), model.params))
        flat, unravel = ravel_pytree(model.params)
        everything = Batch(jnp.asarray(data.inputs), jnp.asarray(data.targets))
        dense = jax.hessian(lambda w: workload.loss(unravel(w), model.state, everything)[0])(flat)
        lam = np.linalg.eigvalsh(np.asarray(dense))
        lines, warnings, phases = [], [], set()
        written = landscape.probe(
            model, tmp_path / "out", top_k=2, bottom_k=1, tol=1e-9, max_iter=13, trace=True,
            samples=8, timings={"train_s": 0.0},
            on_message=lines.append, on_warning=warnings.append,
            on_progress=lambda what, done, total: phases.add((what, total)))
    report, files = written
    assert files == [str(tmp_path / "out" / "hessian.json")]
    assert report == json.loads((tmp_path / "out" / "hessian.json").read_text())
    np.testing.assert_allclose(report["eigenvalues"]["top"]["values"], lam[::-1][:2], rtol=1e-7)
    np.testing.assert_allclose(report["eigenvalues"]["bottom"]["values"], lam[:1],
                               rtol=1e-7, atol=1e-9 * lam[-1])
    assert report["num_params"] == 13 and report["settings"]["batch_size"] == 20
    assert list(report["timings"])[:2] == ["train_s", "eigenvalues_s"]
    assert lines[0].startswith("top eigenvalues: ") and lines[2].startswith("trace: ")
    assert warnings == [] and phases == set()
    assert capsys.readouterr() == ("", "")  # nothing printed: the callbacks have the lines


def test_probe_refuses_more_eigenvalues_than_parameters(tmp_path):
    model = model_at(tiny_sine())
    with pytest.raises(InputError, match=r"`top_k` \(=14\) must be <= the number of param"):
        landscape.probe(model, tmp_path, top_k=14)
    with pytest.raises(InputError, match="`max_iter` .* must be >= `top_k` \\+ `bottom_k`"):
        landscape.probe(model, tmp_path, top_k=3, bottom_k=2, max_iter=4)
    assert not (tmp_path / "hessian.json").exists()


class _Stop(Exception):
    pass


def test_an_interrupted_eigen_map_resumes_and_another_map_is_refused(tmp_path, monkeypatch):
    model = model_at(tiny_sine())
    options = dict(grid=landscape.Grid.from_specs("-1:1:3", "-1:1:2"), map_steps=6, chunk=2)
    whole, _ = landscape.eigen_map(model, tmp_path / "whole", **options)
    real_write, calls = surface_h5.write_points, []

    def stop_after_one(*args, **kwargs):
        if calls:
            raise _Stop
        calls.append(1)
        real_write(*args, **kwargs)

    monkeypatch.setattr(surface_h5, "write_points", stop_after_one)
    with pytest.raises(_Stop):
        landscape.eigen_map(model, tmp_path / "part", **options)
    done = int(surface_h5.read(tmp_path / "part" / "eigen_map.h5").done.sum())
    assert 0 < done < 6  # a chunk of points per device
    monkeypatch.setattr(surface_h5, "write_points", real_write)
    progress = []
    report, files = landscape.eigen_map(model, tmp_path / "part", **options,
                                        on_progress=lambda *p: progress.append(p))
    assert progress[0] == ("eigen map", done, 6) and progress[-1] == ("eigen map", 6, 6)
    assert report == {**whole, "file": files[0]} and report["shape"] == [2, 3]
    again, first = (surface_h5.read(path / "eigen_map.h5") for path in (tmp_path / "part",
                                                                        tmp_path / "whole"))
    assert again.done.all()
    for name in ("max_eig", "min_eig"):
        np.testing.assert_allclose(again.values[name], first.values[name], rtol=1e-5)
    with pytest.raises(ResumeMismatch):
        landscape.eigen_map(model, tmp_path / "part", **{**options, "map_steps": 5})
    with pytest.raises(ResumeMismatch):
        landscape.eigen_map(model, tmp_path / "part", **options, precision="default")


def test_curvature_along_runs_of_opened_runs(tmp_path):
    from landscape.runs import save_run

    run = landscape.train(tiny_sine(), "sgd", steps=4, record_every=2, learning_rate=0.1)
    path = save_run(run, tmp_path / "sgd", extra={"workload_source": WORKLOAD})
    with pytest.raises(ReadError, match="user workload"):  # paths are opened, and confirmed
        landscape.curvature_along_runs([path], tmp_path / "out")
    loaded = landscape.open_runs([str(path)], workload=WORKLOAD)
    with pytest.raises(InputError, match="`steps`: step 3 was not recorded"):
        landscape.curvature_along_runs(loaded, tmp_path / "out", steps=[3])
    lines = []
    report, files = landscape.curvature_along_runs(loaded, tmp_path / "out", steps="all",
                                                   lambda_min=True, on_message=lines.append)
    assert files == [str(tmp_path / "out" / name)
                     for name in ("curvature.json", "curvature.csv", "curvature.png")]
    assert json.loads((tmp_path / "out" / "curvature.json").read_text()) == report
    (entry,) = report["runs"]
    assert entry["label"] == "sgd" and entry["step"] == [0, 2, 4]
    assert all(hi >= lo for hi, lo in zip(entry["lambda_max"], entry["lambda_min"]))
    assert len(lines) == 1 and lines[0].startswith("sgd: λmax ")
