"""Power spectra: peaks where a sinusoid puts them, white-noise level, plots as PNG files."""

import os
import subprocess
import sys

import keras
import numpy as np
from PIL import Image

from keras_afgan.visualize import spectra
from tests.conftest import golden_case
from tests.testing import REPO_ROOT


def test_a_sinusoid_peaks_at_its_frequency():
    r, k = 32, 5
    x = np.arange(r)
    image = np.cos(2 * np.pi * k * x / r)[None, None, :, None] * np.ones((2, r, r, 3))
    spectrum = spectra.average_power_spectrum(image)
    freqs = spectra.spectrum_frequencies(spectrum.shape[0], r)
    row, col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    assert freqs[row] == 0 and abs(freqs[col]) == k


def test_white_noise_has_a_flat_spectrum_at_its_variance():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, (64, 32, 32, 1))
    spectrum = spectra.average_power_spectrum(noise)
    assert abs(np.median(spectrum) / 0.25 - 1) < 0.1
    horizontal, diagonal = spectra.spectrum_slices(spectrum)
    assert len(horizontal) == len(diagonal) == 32
    batched = spectra.average_power_spectrum_of_batches([noise[:40], noise[40:]])
    np.testing.assert_allclose(batched, spectrum, rtol=1e-10)


def test_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(1)
    a = spectra.average_power_spectrum(rng.normal(size=(4, 16, 16, 3)))
    b = spectra.average_power_spectrum(np.cumsum(rng.normal(size=(4, 16, 16, 3)), axis=2))
    heatmap = spectra.save_heatmaps([a, b], str(tmp_path / "h.png"), 16, ["noise", "smooth"])
    slices = spectra.save_slices([a, b], str(tmp_path / "s.png"), 16, ["noise", "smooth"])
    for path, size in ((heatmap, (840, 400)), (slices, (1000, 400))):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape[:2] == size[::-1]
        assert image.std() > 10


def test_spectra_cli_compares_with_real_images(tmp_path):
    G = golden_case("t16").generator()
    network = str(tmp_path / "G.keras")
    G.save(network)
    reals = tmp_path / "reals"
    reals.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(reals / f"{i}.png")
    env = dict(os.environ, KERAS_BACKEND=keras.config.backend(), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT)
    outdir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.spectra", f"--network={network}",
         f"--data={reals}", "--num=8", "--batch=4", f"--outdir={outdir}"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"spectra-heatmap.png", "spectra-slices.png", "spectra.npz"} <= set(os.listdir(outdir))
    with np.load(outdir / "spectra.npz") as data:
        assert data["generated"].shape == data["real"].shape == (32, 32)
        # Random-pixel reals are white; the generator's images are band-limited.
        assert data["real"][0, 0] > data["generated"][0, 0]
