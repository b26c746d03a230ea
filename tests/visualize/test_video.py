"""Video frames and files: interpolation, sweeps that move the content, .gif and .mp4."""

import os
import subprocess
import sys

import imageio.v2 as imageio
import keras
import numpy as np
import pytest
from PIL import Image

from keras_afgan.models.sampling import generate_images
from keras_afgan.visualize import video
from tests.conftest import golden_case
from tests.testing import REPO_ROOT
from tests.testing import reference_uint8


@pytest.fixture(scope="module")
def G():
    # The golden t16 generator: trained-like content that translates equivariantly (EQ-T 60 dB).
    return golden_case("t16").generator()


def test_interpolation_frames_loop_through_the_seeds(G):
    frames = video.interpolation_frames(G, [0, 1, 2], frames_per_seed=4)
    assert frames.shape == (12, 16, 16, 3) and frames.dtype == np.uint8
    # Frame 0 of each segment is that seed's image; consecutive frames differ.
    keys = reference_uint8(generate_images(G, [0, 1, 2]))
    for i in range(3):
        assert np.abs(frames[4 * i].astype(int) - keys[i]).max() <= 1
    assert all(np.abs(frames[i + 1].astype(int) - frames[i]).max() > 0 for i in range(11))


def test_translation_sweep_moves_the_content(G):
    # Whole-pixel steps along x: each frame is the first one shifted, away from the edges.
    shifts = [0, 1, 2, 3]
    translate = np.array([[s / 16, 0.0] for s in shifts], np.float32)
    frames = video.sweep_frames(G, [5], "translate", translate=translate,
                                angle=np.zeros(4, np.float32))[:, 0].astype(float)
    for s, frame in zip(shifts[1:], frames[1:]):
        moved = np.abs(frame[:, 4 + s:12] - frames[0][:, 4:12 - s]).mean()
        still = np.abs(frame[:, 4 + s:12] - frames[0][:, 4 + s:12]).mean()
        assert moved < still / 4, (s, moved, still)


def test_sweeps_change_every_frame(G):
    for mode in ("translate", "rotate"):
        frames = video.sweep_frames(G, [0, 1], mode, num_frames=6)
        assert frames.shape == (6, 2, 16, 16, 3)
        assert all(np.abs(frames[i + 1].astype(int) - frames[i]).max() > 0 for i in range(5))
    translate, angle = video.sweep_transforms("translate", 8, max_translate=0.25)
    assert np.allclose(np.linalg.norm(translate - [0, 0.25], axis=1), 0.25)
    assert video.tile(np.zeros((3, 6, 16, 16, 3)), 2, 3).shape == (3, 32, 48, 3)
    with pytest.raises(ValueError, match="Expected 4 samples for a 2x2 grid. Received: 6"):
        video.tile(np.zeros((3, 6, 16, 16, 3)), 2, 2)


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_video_files_can_be_read_back(tmp_path, ext):
    # A moving grey ramp: under 256 colours (GIF keeps it exactly) and smooth (H.264 nearly).
    t, y, x = np.meshgrid(np.arange(5), np.arange(32), np.arange(48), indexing="ij")
    grey = ((x * 4 + y * 2 + t * 9) % 200).astype(np.uint8)
    frames = np.repeat(grey[..., None], 3, axis=-1)
    path = video.write_video(frames, str(tmp_path / f"v{ext}"), fps=10)
    # (list() of the ffmpeg reader asks its length first, which is inf.)
    back = np.stack(imageio.mimread(path) if ext == ".gif" else
                    [frame for frame in imageio.get_reader(path, format="FFMPEG")])
    assert back.shape[:3] == (5, 32, 48)
    error = np.abs(back[..., :3].astype(int) - frames).mean()
    assert error == 0 if ext == ".gif" else error < 8
    assert np.abs(back[1].astype(int) - back[0]).max() > 0


def test_write_video_refuses_other_formats(tmp_path):
    with pytest.raises(ValueError, match=r"ending in .mp4 or .gif. Received: '.*\.avi'"):
        video.write_video(np.zeros((2, 8, 8, 3), np.uint8), str(tmp_path / "v.avi"))
    with pytest.raises(ValueError, match="Expected uint8 frames"):
        video.write_video(np.zeros((2, 8, 8, 3)), str(tmp_path / "v.gif"))


def test_video_cli_writes_a_grid_sweep(G, tmp_path):
    network = str(tmp_path / "G.keras")
    G.save(network)
    out = str(tmp_path / "sweep.gif")
    env = dict(os.environ, KERAS_BACKEND=keras.config.backend(), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.video", f"--network={network}", "--mode=rotate",
         "--seeds=0-3", "--grid=2x2", "--frames=4", f"--out={out}"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    gif = Image.open(out)
    assert gif.size == (32, 32) and gif.n_frames == 4
    bad = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.video", f"--network={network}", "--mode=rotate",
         "--seeds=0-3", "--grid=3x1", f"--out={out}"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert bad.returncode != 0 and "Expected --grid=ROWSxCOLS with ROWS*COLS = 4" in bad.stderr
