"""Precision as a recorded choice: what each setting compiles, that a compiled program of one
precision is never served to another, and that surfaces, eigen maps, runs and ``hessian.json``
record the precision given, a resume keeps it and another one is refused."""

import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from jax.sharding import NamedSharding, PartitionSpec

import landscape
from landscape.cli import main
from landscape.data.sine import sine
from landscape.errors import InputError, ResumeMismatch
from landscape.io import surface_h5
from landscape.io.surface_record import spec_hash
from landscape.precision import PRECISIONS, check_precision, computing_in

WORKLOAD = "test_precision:tiny_sine"  # this module (pytest puts tests/ on sys.path)
SCAN = ["scan", "--workload", WORKLOAD, "--steps", "5", "--grid", "3", "--quiet"]


def tiny_sine():
    return sine(num_train=64, num_test=16, hidden=(8,))


def matmul_and_conv(w, x, image, kernel):
    conv = jax.lax.conv_general_dilated(image, kernel, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return (x @ w).sum() + conv.sum()


ARGS = (jnp.ones((4, 3)), jnp.ones((2, 4)), jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 3)))


def precisions_in(hlo: str) -> list[str]:
    """The precision of every dot and convolution of a lowered program's text (StableHLO)."""
    found = []
    for line in hlo.splitlines():
        if "stablehlo.dot_general" in line or "stablehlo.convolution" in line:
            found.append("HIGHEST" if "HIGHEST" in line else "DEFAULT" if "DEFAULT" in line
                         else "none")
    return found


@pytest.mark.parametrize("precision, expected", [
    ("highest", ["HIGHEST", "HIGHEST"]),  # full float32 asked of every backend
    ("default", ["DEFAULT", "DEFAULT"]),  # the backend's own choice
    ("bfloat16", ["DEFAULT", "DEFAULT"]),  # JAX's bfloat16 level is Precision.DEFAULT
])
def test_each_setting_is_written_into_every_product_and_convolution(precision, expected):
    with computing_in(precision):
        hlo = jax.jit(matmul_and_conv).lower(*ARGS).as_text()
    assert precisions_in(hlo) == expected


def test_switching_precision_compiles_the_same_function_again():
    fn = jax.jit(matmul_and_conv)
    with computing_in("highest"):
        highest = fn.lower(*ARGS).as_text()
        fn(*ARGS)
    with computing_in("default"):
        default = fn.lower(*ARGS).as_text()
        fn(*ARGS)
    assert highest != default
    assert fn._cache_size() == 2  # one executable per precision: jit's key holds it
    with computing_in("highest"):
        fn(*ARGS)
    assert fn._cache_size() == 2  # and each is reused under its own


def test_programs_kept_by_the_engine_are_kept_per_precision():
    """The engine keeps compiled chunk programs by hand (outside jit's cache): its key must
    hold the precision, or a scan at `default` would run the `highest` program."""
    from landscape.engine.chunks import compile_chunks, default_mesh

    mesh = default_mesh()
    w = jax.device_put(np.ones((2, 3), np.float32), NamedSharding(mesh, PartitionSpec()))

    def chunk_fn(coords, w):
        return {"value": (coords @ w).sum(axis=1)}

    programs = {}
    for precision in ("highest", "default"):
        with computing_in(precision):
            programs[precision] = compile_chunks(chunk_fn, (w,), mesh, todo=8, chunk=8,
                                                 key="test_precision")
    assert programs["highest"] is not programs["default"]
    assert "operand_precision={highest,highest}" in programs["highest"].compiled.as_text()
    assert "operand_precision={highest" not in programs["default"].compiled.as_text()


def test_a_bad_precision_is_an_input_error_naming_the_allowed_values():
    for bad in ("fp8", None, "HIGHEST"):
        with pytest.raises(InputError, match="`precision` .* must be one of: highest, default, "
                                             "bfloat16") as caught:
            check_precision(bad)
        assert caught.value.param == "precision"
    assert PRECISIONS == ("highest", "default", "bfloat16")


# --- surfaces through the Python API ------------------------------------------------------

def _problem():
    key = jax.random.key(0)
    x = jax.random.normal(key, (32, 2))
    y = x @ jnp.array([1.0, -2.0])
    params = {"w": jnp.array([0.5, 0.5])}
    return (lambda p, batch: jnp.mean((batch[0] @ p["w"] - batch[1]) ** 2)), params, (x, y)


def _surface(out, **options):
    loss, params, data = _problem()
    return landscape.surface(loss, params, data, x="-1:1:3", out=out, progress=False,
                             **options)


def _unfinish(path, points=3):
    """Mark the first ``points`` points as not done, as a killed scan leaves them."""
    with h5py.File(path, "r+") as f:
        done = f["done"][()]
        done.flat[:points] = False
        f["done"][...] = done
        values = f["train_loss"][()]
        values.flat[:points] = np.nan
        f["train_loss"][...] = values


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_the_api_records_the_precision_given(tmp_path, precision):
    path = tmp_path / "s.h5"
    surface = _surface(path, precision=precision)
    attrs = surface_h5.read(path).attrs
    assert attrs["precision"] == precision
    assert json.loads(attrs["grid"])["precision"] == precision
    assert surface.attrs["precision"] == precision
    meaning = {"highest": "(full float32", "default": "(the backend's own"}[precision]
    assert f"precision     {precision} {meaning}" in invoke("info", path).output
    assert landscape.surface(*_problem(), x="-1:1:3", progress=False,
                             precision=precision).attrs["precision"] == precision  # in memory


def test_the_api_resume_keeps_the_recorded_precision_and_refuses_another(tmp_path, monkeypatch):
    import landscape.scan as scan

    path = tmp_path / "s.h5"
    _surface(path, precision="default")
    _unfinish(path)
    with pytest.raises(ResumeMismatch, match="`precision` is 'default' in the file, 'highest' "
                                             "now"):
        _surface(path, precision="highest")
    used = []
    real = scan.computing_in

    def spy(precision):
        used.append(precision)
        return real(precision)

    monkeypatch.setattr(scan, "computing_in", spy)
    resumed = _surface(path)  # no precision named: the recorded one
    assert used == ["default"]
    assert resumed.done.all() and surface_h5.read(path).attrs["precision"] == "default"
    assert _surface(path, resume=False, precision="highest").attrs["precision"] == "highest"


def test_a_file_from_before_precision_was_recorded_is_refused_and_shown_as_highest(tmp_path):
    """An older file records neither its precision nor the fingerprints that would prove a
    resume continues it: refused, saying so (not blamed on `precision`); `info` shows it was
    computed in float32."""
    path = tmp_path / "old.h5"
    _surface(path)
    with h5py.File(path, "r+") as f:  # as such a file was written: no precision anywhere
        spec = json.loads(f.attrs["grid"])
        del spec["precision"], f.attrs["precision"], f.attrs["fingerprints"]
        f.attrs["grid"], f.attrs["spec_hash"] = json.dumps(spec), spec_hash(spec)
    _unfinish(path)
    with pytest.raises(ResumeMismatch, match="records no fingerprints .* earlier version"):
        _surface(path, precision="highest")
    assert "highest (not recorded: an older file" in invoke("info", path).output


def test_the_hessian_api_takes_and_checks_a_precision():
    loss, params, data = _problem()
    hessian = landscape.hessian(loss, params, data, precision="default")
    assert hessian.precision == "default"
    x = np.asarray(data[0], np.float64)
    expected = np.linalg.eigvalsh(2 * x.T @ x / len(x))[-1]  # the dense Hessian of the MSE
    np.testing.assert_allclose(hessian.eigenvalues(top_k=1), [expected], rtol=1e-3)
    assert landscape.hessian(loss, params, data).precision == "highest"
    with pytest.raises(InputError, match="`precision`"):
        landscape.hessian(loss, params, data, precision="fp8")


def test_train_records_its_precision(tmp_path):
    from landscape.runs import load_run, save_run

    run = landscape.train(tiny_sine(), "adam", steps=2, record_every=2, precision="default")
    assert run.precision == "default"
    save_run(run, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["precision"] == "default"
    assert load_run(tmp_path / "run").precision == "default"


# --- the command line ---------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_scan_records_resumes_and_refuses_precision(tmp_path):
    out = tmp_path / "out"
    path = out / "surface.h5"
    result = invoke(*SCAN, "--precision", "default", "--out", out)
    assert result.exit_code == 0, result.output
    assert surface_h5.read(path).attrs["precision"] == "default"
    info = invoke("info", path)
    assert info.exit_code == 0 and "precision     default (the backend's own" in info.output

    refused = invoke(*SCAN, "--precision", "highest", "--out", out)
    assert refused.exit_code == 1
    line = error_line(refused)
    assert "`precision` is 'default' in the file, 'highest' now" in line and "--overwrite" in line

    _unfinish(path)
    resumed = invoke(*SCAN, "--out", out)  # no --precision: the recorded one
    assert resumed.exit_code == 0, resumed.output
    surface = surface_h5.read(path)
    assert surface.done.all() and surface.attrs["precision"] == "default"



def test_a_bad_precision_is_one_line(tmp_path):
    result = invoke(*SCAN, "--precision", "fp8", "--out", tmp_path)
    assert result.exit_code == 2
    assert "'fp8' is not one of 'highest', 'default', 'bfloat16'" in error_line(result)


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_hessian_json_and_the_eigen_map_record_the_precision(tmp_path, precision):
    result = invoke("hessian", "--workload", WORKLOAD, "--steps", "5", "--quiet", "--map",
                    "--x", "-1:1:2", "--y", "-1:1:2", "--map-steps", "4", "--precision",
                    precision, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hessian.json").read_text())["precision"] == precision
    assert surface_h5.read(tmp_path / "eigen_map.h5").attrs["precision"] == precision
    other = {"highest": "default", "default": "highest"}[precision]
    refused = invoke("hessian", "--workload", WORKLOAD, "--steps", "5", "--quiet", "--map",
                     "--x", "-1:1:2", "--y", "-1:1:2", "--map-steps", "4", "--precision",
                     other, "--out", tmp_path)
    assert refused.exit_code == 1 and "`precision` is" in error_line(refused)


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_train_writes_the_precision_into_run_json(tmp_path, precision):
    result = invoke("train", "--workload", WORKLOAD, "--steps", "2", "--record-every", "2",
                    "--precision", precision, "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "adam" / "run.json").read_text())
    assert document["precision"] == precision


def test_info_says_what_an_unrecorded_precision_means():
    from landscape.description import precision_text

    assert precision_text({"tool": "landscape", "precision": "bfloat16"}).startswith(
        "bfloat16 (JAX's bfloat16 level")
    assert precision_text({"tool": "landscape"}) == (
        "highest (not recorded: an older file, computed in float32)")
    assert precision_text({}) is None  # Li et al.'s files record nothing
    assert precision_text({"tool": "landscape", "workload": "function:rosenbrock"}) is None
