"""afgan-dataset end to end: a folder to a training zip, and a refusal that writes nothing.

The tool runs in numpy and PIL only; it runs in every backend's job (the
same code on each).
"""

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
from PIL import Image

from tests.testing import REPO_ROOT


def _run(*args):
    env = dict(os.environ, KERAS_BACKEND=keras.config.backend(), PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "keras_afgan.cli.dataset", *args],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)


def test_folder_to_zip_and_a_refusal(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for i, size in enumerate([(32, 32), (32, 32), (32, 48)]):  # [H, W]
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(
            tmp_path / "photos" / f"{i}.jpg")
    refused = _run(f"--source={tmp_path / 'photos'}", f"--dest={tmp_path / 'out.zip'}")
    assert refused.returncode != 0
    assert "'2.jpg' is 48x32" in refused.stderr and "--transform=center-crop" in refused.stderr
    assert sorted(os.listdir(tmp_path)) == ["photos"]  # no zip, no partial file

    made = _run(f"--source={tmp_path / 'photos'}", f"--dest={tmp_path / 'out.zip'}",
                "--transform=center-crop", "--resolution=16x16")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "Wrote" in made.stdout and "3 images, 16x16, 3 channel(s), no labels" in made.stdout
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert sorted(archive.namelist()) == ["00000/img00000000.png", "00000/img00000001.png",
                                              "00000/img00000002.png", "dataset.json"]
