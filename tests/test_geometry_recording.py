"""Recording what the geometry needs: the optimizer state and the tracked sharpness, in
``trajectory.h5`` and in a running run's journal, read back exactly."""

import h5py
import jax.numpy as jnp
import numpy as np
import pytest

from landscape.errors import InputError, ReadError
from landscape.geometry.tracking import SharpnessTracker
from landscape.io import trajectory_h5
from landscape.runs import load_run, start_run
from landscape.train_loop import SharpnessTrack, Trajectory, train
from landscape.workload import Dataset, Workload


def _trajectory(n=3):
    rng = np.random.default_rng(0)
    return Trajectory(
        step=np.arange(n, dtype=np.int64) * 10, epoch=np.zeros(n, np.int64),
        train_loss=rng.random(n), test_loss=np.full(n, np.nan), train_acc=np.full(n, np.nan),
        test_acc=np.full(n, np.nan), params={"dense0": {"kernel": rng.random((n, 2, 3))}},
        state={}, opt_state=({"count": np.arange(n, dtype=np.int32),
                              "nu": {"dense0": {"kernel": rng.random((n, 2, 3))}}}, {}),
        sharpness=SharpnessTrack(np.array([0, 5, 10, 15, 20], np.int64), rng.random(5),
                                 rng.random(5) * 1e-3))


def test_optimizer_state_and_sharpness_round_trip(tmp_path):
    original = _trajectory()
    trajectory_h5.write(tmp_path / "t.h5", original)
    back = trajectory_h5.read(tmp_path / "t.h5")
    np.testing.assert_array_equal(back.opt_state["0"]["count"], original.opt_state[0]["count"])
    np.testing.assert_array_equal(back.opt_state["0"]["nu"]["dense0"]["kernel"],
                                  original.opt_state[0]["nu"]["dense0"]["kernel"])
    for name in ("step", "lambda_max", "residual"):
        np.testing.assert_array_equal(getattr(back.sharpness, name),
                                      getattr(original.sharpness, name))
    # and a file without them reads back without them
    plain = Trajectory(**{**original.__dict__, "opt_state": None, "sharpness": None})
    trajectory_h5.write(tmp_path / "p.h5", plain)
    back = trajectory_h5.read(tmp_path / "p.h5")
    assert back.opt_state is None and back.sharpness is None


def _replaced(path, data):
    def damage(handle):
        del handle[path]
        handle.create_dataset(path, data=data)
    return damage


@pytest.mark.parametrize("damage, message", [
    (_replaced("sharpness/residual", [1.0]), "the `sharpness` datasets have different lengths"),
    (_replaced("sharpness/step", np.zeros((5, 2))), "`sharpness` must be a group of 1-D datasets"),
    (_replaced("sharpness/step", np.array([b"a"] * 5)), "`sharpness/step` has dtype"),
    (_replaced("opt_state", [1]), "`opt_state` must be a group"),
    (_replaced("opt_state/0/count", [1, 2]), "arrays disagree on the number of recorded steps"),
])
def test_damaged_recordings_are_read_errors(tmp_path, damage, message):
    trajectory_h5.write(tmp_path / "t.h5", _trajectory())
    with h5py.File(tmp_path / "t.h5", "r+") as handle:
        damage(handle)
    with pytest.raises(ReadError, match=message.replace("(", r"\(")):
        trajectory_h5.read(tmp_path / "t.h5")


def _quadratic() -> Workload:
    """½‖w − 1‖² on a dummy four-sample data set: compiles in no time."""
    zeros = np.zeros((4, 1), np.float32)
    return Workload(name="quadratic", init=lambda key: ({"w": jnp.zeros(3)}, {}),
                    loss=lambda p, s, b: (0.5 * jnp.sum((p["w"] - 1) ** 2)
                                          + 0.0 * jnp.sum(b.inputs), {}),
                    train=Dataset(zeros, zeros), batch_size=4)


def test_a_running_run_reads_its_journaled_state_and_sharpness(tmp_path):
    """Killed mid-way: run.json says running, the journal holds records and measurements."""
    workload = _quadratic()
    writer = start_run(tmp_path / "run", workload=workload.name, optimizer={"name": "adam"},
                       seed=0, steps=20, batch_size=4, record_every=10)
    run = train(workload, "adam", steps=20, record_every=10, learning_rate=0.1,
                record_opt_state=True, tracker=SharpnessTracker(workload, every=5, num_steps=3),
                on_snapshot=writer.record, on_sharpness=writer.record_sharpness)
    loaded = load_run(tmp_path / "run")  # never finished: read from the journal
    assert loaded.status == "running"
    np.testing.assert_array_equal(loaded.trajectory.opt_state["0"]["count"], [0, 10, 20])
    np.testing.assert_array_equal(loaded.trajectory.opt_state["0"]["nu"]["w"],
                                  run.trajectory.opt_state[0].nu["w"])
    np.testing.assert_allclose(run.trajectory.sharpness.lambda_max, 1.0, rtol=1e-5)  # H = I
    # the measurements fetched before the last record reached the journal
    journaled = loaded.trajectory.sharpness
    assert journaled.step.tolist() == run.trajectory.sharpness.step[:len(journaled.step)].tolist()
    assert len(journaled.step) >= 2
    np.testing.assert_array_equal(journaled.lambda_max,
                                  run.trajectory.sharpness.lambda_max[:len(journaled.step)])


def test_bad_tracking_arguments_are_refused():
    for kwargs, message in ((dict(every=0), r"`every` \(=0\) must be a whole number >= 1"),
                            (dict(num_steps=0), r"`num_steps` \(=0\) must be"),
                            (dict(samples=0), r"`samples` \(=0\) must be")):
        with pytest.raises(InputError, match=message):
            SharpnessTracker(_quadratic(), **kwargs)
    with pytest.raises(InputError, match="`tracker` must have `every`"):
        train(_quadratic(), "adam", steps=2, tracker=object())
