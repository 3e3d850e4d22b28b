"""Surface files that are random, truncated or partly overwritten (and journals likewise) are
read into a valid Surface or refused with ReadError naming the file — never another exception."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape.directions import random_plane
from landscape.errors import ReadError
from landscape.grid import Grid
from landscape.io import journal, stored_directions, surface_h5

PARAMS = {"dense0": {"kernel": np.arange(6.0, dtype=np.float32).reshape(2, 3),
                     "bias": np.ones(3, np.float32)}}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """The bytes of a complete surface file (values, trajectory, density) and of a journal."""
    folder = tmp_path_factory.mktemp("valid")
    path = folder / "s.h5"
    grid = Grid(np.linspace(-1, 1, 6), np.linspace(-1, 1, 4))
    surface_h5.create(path, grid, ["train_loss", "train_acc"], random_plane(PARAMS),
                      {"spec_hash": "x", "workload": "toy", "grid": {"x": [-1, 1, 6]}})
    index = np.arange(10)
    surface_h5.write_points(path, index, {"train_loss": index * 0.5, "train_acc": index * 1.0})
    surface_h5.write_trajectory(path, "adam", x=np.arange(3.0), y=np.zeros(3), loss=np.ones(3),
                                step=np.arange(3))
    surface_h5.write_points(path, np.arange(10, 16), {"train_loss": np.ones(6),
                                                      "train_acc": np.ones(6)})
    return path.read_bytes(), open(surface_h5.journal_path(path), "rb").read()


def _check(path):
    """Every reader returns something valid or raises ReadError naming the file."""
    for read in (surface_h5.read, lambda p: stored_directions.read_directions(p, like=PARAMS),
                 surface_h5.read_density):
        try:
            got = read(path)
        except ReadError as exc:
            assert os.path.basename(path) in str(exc)
            continue
        if isinstance(got, surface_h5.Surface):
            assert got.done.dtype == bool and got.done.shape == got.grid.shape
            assert all(v.shape == got.grid.shape for v in got.values.values())


def _write(folder, data: bytes, journal_data: bytes | None = None) -> str:
    path = os.path.join(folder, "fuzzed.h5")
    with open(path, "wb") as handle:
        handle.write(data)
    jpath = surface_h5.journal_path(path)
    if journal_data is None:
        if os.path.exists(jpath):
            os.remove(jpath)
    else:
        with open(jpath, "wb") as handle:
            handle.write(journal_data)
    return path


@FUZZ
@given(data=st.binary(max_size=2048), hdf5_signature=st.booleans())
def test_random_bytes(tmp_path, data, hdf5_signature):
    if hdf5_signature:
        data = b"\x89HDF\r\n\x1a\n" + data
    _check(_write(tmp_path, data))


@FUZZ
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_truncated_copies(tmp_path, valid, fraction):
    data, _ = valid
    _check(_write(tmp_path, data[: int(fraction * len(data))]))


@FUZZ
@given(patches=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                                 max_size=64)),
                        min_size=1, max_size=4))
def test_overwritten_byte_ranges(tmp_path, valid, patches):
    data = bytearray(valid[0])
    for where, patch in patches:
        start = int(where * len(data))
        data[start:start + len(patch)] = patch[: len(data) - start]
    _check(_write(tmp_path, bytes(data)))


@FUZZ
@given(patches=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                                 max_size=16)),
                        max_size=3),
       cut=st.floats(0, 1))
def test_corrupt_journals(tmp_path, valid, patches, cut):
    data, journaled = valid
    damaged = bytearray(journaled[: int(cut * len(journaled))])
    for where, patch in patches:
        if damaged:
            start = int(where * len(damaged))
            damaged[start:start + len(patch)] = patch[: len(damaged) - start]
    path = _write(tmp_path, data, bytes(damaged))
    _check(path)
    replay = journal.read(surface_h5.journal_path(path))
    assert replay.valid_bytes <= replay.total_bytes == len(damaged)


def test_an_intact_journal_is_applied_on_read(tmp_path, valid):
    data, journaled = valid
    got = surface_h5.read(_write(tmp_path, data, journaled))
    assert got.done.sum() == 16 and list(got.trajectories) == ["adam"]
    assert surface_h5.read(_write(tmp_path, data)).done.sum() == 10  # the file alone
