"""Messages that said the wrong thing (issue 25): a byte-string `train_loss` reported as a wrong
*shape* "(3, 3), expected (3, 3)"; `--tol nan` passed to the library and named as its `tol`
(and `--tol inf` accepted); `info` on a killed `hessian --map` telling to resume with "the same
`scan` command"."""

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.directions import random_plane
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.io.surface_record import SurfaceRecord

GRID = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
PLANE = random_plane({"w": np.ones((2, 2), np.float32)})


def one_error(result, code=1) -> str:
    assert result.exit_code == code and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_a_metric_of_byte_strings_is_said_to_be_of_the_wrong_type(tmp_path):
    path = tmp_path / "s.h5"
    surface_h5.create(path, GRID, ["train_loss"], PLANE, {"spec_hash": "x"})
    with h5py.File(path, "r+") as f:
        del f["train_loss"]
        f["train_loss"] = np.full((3, 3), b"0.5", "S10")
    assert one_error(CliRunner().invoke(main, ["info", str(path)])) == (
        f"Error: {path}: dataset `train_loss` holds byte strings (|S10); a metric must be real "
        "numbers")


@pytest.mark.parametrize("command", ["hessian", "sharpness"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_tolerance_that_is_not_a_finite_number_names_the_option(tmp_path, command, value):
    args = [command] + ([str(tmp_path)] if command == "sharpness" else [])
    line = one_error(CliRunner().invoke(main, [*args, "--tol", value, "--out", str(tmp_path)]),
                     code=2)
    assert line == f"Error: Invalid value for '--tol': {value!r} is not a finite number."


@pytest.mark.parametrize("kind, command", [("map", "hessian --map"), ("compare", "compare"),
                                           ("scan", "scan")])
def test_info_on_an_unfinished_file_names_the_command_that_resumes_it(tmp_path, kind, command):
    path = tmp_path / "s.h5"
    names = ["max_eig", "min_eig"] if kind == "map" else ["train_loss"]
    record = SurfaceRecord(spec={"compare": kind == "compare"},
                           lanczos_steps=20 if kind == "map" else None)
    surface_h5.create(path, GRID, names, PLANE, record.to_attrs())
    surface_h5.write_points(path, np.arange(4), {name: np.ones(4) for name in names})
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert (f"completeness  4 / 9 points done (44.4 %), incomplete (resume with the same "
            f"`{command}` command)") in result.output.splitlines()
