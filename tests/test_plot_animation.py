"""`landscape plot FILE --animate`: the paths step by step, as a GIF with the expected frames,
each different from the last; and its one-line refusals."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops
from synthetic_surfaces import make_surface

from landscape.cli import main
from landscape.io import surface_h5
from landscape.plot.animation import frame_steps


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def plane_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("anim") / "s.h5"
    make_surface(path)  # paths sgd (steps 0, 10 ... 80) and adam (0, 5 ... 40)
    return path


def test_frames_follow_the_recorded_steps(plane_file):
    trajectories = surface_h5.read(plane_file).trajectories
    steps = sorted({*range(0, 81, 10), *range(0, 41, 5)})
    np.testing.assert_array_equal(frame_steps(trajectories, 100), steps)  # one per step
    np.testing.assert_allclose(frame_steps(trajectories, 5), [0, 20, 40, 60, 80])


def test_the_gif_has_the_expected_frames_each_new(plane_file, tmp_path):
    result = run("plot", plane_file, "--animate", "--log", "--frames", "5", "--fps", "4",
                 "--dpi", "50", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    gif = tmp_path / "s_train_loss_paths.gif"
    assert result.output.split() == [str(gif)]
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 5
        assert image.info["duration"] == 250  # 4 frames per second
        frames = []
        for k in range(image.n_frames):
            image.seek(k)
            frames.append(image.convert("RGB"))
    for before, after in zip(frames, frames[1:]):  # the paths grow: every frame differs
        assert ImageChops.difference(before, after).getbbox() is not None


@pytest.mark.parametrize("args, message", [
    (["--format", "png"], "`--animate` writes gif or mp4, not `--format png`"),
    (["--no-trajectories"], "drop `--no-trajectories`"),
])
def test_bad_combinations_are_one_line(plane_file, tmp_path, args, message):
    result = run("plot", plane_file, "--animate", *args, "--out", tmp_path)
    assert result.exit_code == 2 and message in result.output


def test_a_gif_without_animate_is_refused(plane_file, tmp_path):
    result = run("plot", plane_file, "--format", "gif", "--out", tmp_path)
    assert result.exit_code == 2 and "`--format gif` is for `--animate`" in result.output


def test_files_without_paths_or_a_plane_are_refused(tmp_path):
    bare, line = tmp_path / "bare.h5", tmp_path / "line.h5"
    make_surface(bare, trajectories=False)
    make_surface(line, ny=None)
    result = run("plot", bare, "--animate", "--out", tmp_path)
    assert result.exit_code == 2 and f"{bare} has none" in result.output
    result = run("plot", line, "--animate", "--out", tmp_path)
    assert result.exit_code == 2 and "needs a 2D surface" in result.output


def test_mp4_needs_ffmpeg(plane_file, tmp_path):
    from matplotlib import animation

    result = run("plot", plane_file, "--animate", "--format", "mp4", "--frames", "3", "--dpi",
                 "50", "--out", tmp_path)
    if animation.writers.is_available("ffmpeg"):
        assert result.exit_code == 0, result.output
        assert (tmp_path / "s_train_loss_paths.mp4").stat().st_size > 1000
    else:
        assert result.exit_code == 2 and "needs ffmpeg on PATH" in result.output
