"""afgan-train / afgan-generate end to end: outputs, resume after a kill, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from keras_afgan.cli.common import parse_seeds
from keras_afgan.cli.common import parse_vec2
from keras_afgan.metrics import sampled_equivariance
from keras_afgan.training.run import generate_images
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.testing import REPO_ROOT
from tests.testing import to_numpy

# 16 px, batch 4, ticks of 2 steps: seconds per tick on CPU.
SMALL = dict(preset="tiny", resolution=16, batch=4, tick=0.008, snap=2, mbstd_group=2, verbose=0)

pytestmark = pytest.mark.usefixtures("builtin_data_dir")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run (2 ticks of 2 steps) shared by the tests that read it."""
    outdir = str(tmp_path_factory.mktemp("run"))
    # With a cheap snapshot metric (2 samples) so its logging is checked too.
    return outdir, train(resolve_config(outdir=outdir, kimg=0.016, metrics="eqt50k_int",
                                        metrics_num=2, **SMALL))


def test_run_writes_its_outputs(trained):
    outdir, gan = trained
    files = set(os.listdir(outdir))
    assert {"config.json", "stats.jsonl", "checkpoint.keras", "generator.keras", "reals.png",
            "fakes-tick000002.png", "network-snapshot-tick000002.keras", "logs"} <= files
    stats = [json.loads(line) for line in open(os.path.join(outdir, "stats.jsonl"))]
    assert [s["tick"] for s in stats] == [1, 2]
    assert stats[-1]["kimg"] == pytest.approx(0.016)
    for key in ("loss_G", "loss_D", "r1_penalty", "img_per_sec"):
        assert np.isfinite(stats[-1][key]), key
    assert any(name.startswith("events") for _, _, names in os.walk(os.path.join(outdir, "logs"))
               for name in names)
    grid = np.asarray(Image.open(os.path.join(outdir, "fakes-tick000002.png")))
    assert grid.shape == (4 * 16, 8 * 16, 3) and grid.std() > 0
    config = json.load(open(os.path.join(outdir, "config.json")))
    assert config["resolution"] == 16 and config["cfg"] == "stylegan3-t"
    assert int(to_numpy(gan.iteration)) == 4


def _cli(outdir, kimg, extra=()):
    args = [sys.executable, "-m", "keras_afgan.cli.train", f"--outdir={outdir}",
            "--preset=tiny", "--resolution=16", "--batch=4", "--tick=0.008", "--snap=2",
            "--mbstd-group=2", f"--kimg={kimg}", *extra]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return args, env


@pytest.mark.slow
def test_snapshot_metrics_are_logged(trained):
    outdir, gan = trained
    stats = [json.loads(line) for line in open(os.path.join(outdir, "stats.jsonl"))]
    assert "eqt50k_int" not in stats[0] and np.isfinite(stats[1]["eqt50k_int"])
    (record,) = [json.loads(line) for line in open(os.path.join(outdir, "metrics.jsonl"))]
    assert record["tick"] == 2 and record["snapshot"] == "network-snapshot-tick000002.keras"
    # The logged value is the metric of the snapshot's G-EMA (same seed, same samples).
    G = keras.saving.load_model(os.path.join(outdir, record["snapshot"]))
    assert record["results"]["eqt50k_int"] == pytest.approx(
        sampled_equivariance(G, "eqt50k_int", num=2, seed=0), abs=1e-3)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(outdir, "logs")).Reload()
    assert "Metrics/eqt50k_int" in events.Tags()["tensors"]


def test_bad_metrics_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Expected metrics from .*Received: \['fid'\]"):
        resolve_config(outdir=str(tmp_path), metrics="eqt50k_int,fid", **SMALL)
    with pytest.raises(FileNotFoundError, match="InceptionV3 weights not found"):
        train(resolve_config(outdir=str(tmp_path / "f"), metrics="fid50k_full",
                             inception=str(tmp_path / "none.h5"), kimg=0.008, **SMALL))
    assert not os.path.exists(tmp_path / "f" / "checkpoint.keras")


def test_a_killed_run_resumes_to_the_same_weights(trained, tmp_path):
    """Killed after its first tick and restarted, a command-line run ends where
    the uninterrupted `trained` run (same settings but the snapshot metric,
    which changes no weight) did."""
    kimg = 0.016  # 2 ticks of 2 steps, as `trained`
    outdir = tmp_path / "killed"
    args, env = _cli(outdir, kimg)
    proc = subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    stats = outdir / "stats.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if stats.exists() and len(stats.read_text().splitlines()) >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    ticks_before = len(stats.read_text().splitlines())
    assert ticks_before < 2
    subprocess.run(args, env=env, check=True, capture_output=True, cwd=REPO_ROOT)
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert [s["tick"] for s in lines] == [1, 2]  # nothing lost, nothing repeated

    a = keras.saving.load_model(os.path.join(trained[0], "checkpoint.keras"))
    b = keras.saving.load_model(outdir / "checkpoint.keras")
    assert int(to_numpy(b.iteration)) == 4
    for va, vb in zip(a.variables, b.variables):
        np.testing.assert_allclose(to_numpy(vb), to_numpy(va), rtol=0, atol=1e-6, err_msg=va.path)
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables):
        np.testing.assert_allclose(to_numpy(vb), to_numpy(va), rtol=0, atol=1e-6, err_msg=va.path)


def test_restart_with_other_settings_keeps_the_run(trained):
    outdir, _ = trained
    before = {name: os.path.getmtime(os.path.join(outdir, name)) for name in os.listdir(outdir)}
    with pytest.raises(ValueError, match=r"holds a run with other settings \(\['gamma'\]\)"):
        train(resolve_config(outdir=outdir, kimg=0.016, **dict(SMALL, gamma=5.0)))
    after = {name: os.path.getmtime(os.path.join(outdir, name)) for name in os.listdir(outdir)}
    assert after == before


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"divisible by the minibatch-stddev group size 4. "
                                         r"Received: batch=6"):
        resolve_config(outdir=str(tmp_path), preset="tiny", batch=6)
    with pytest.raises(ValueError, match=r"Unknown preset 'huge'"):
        resolve_config(outdir=str(tmp_path), preset="huge")
    with pytest.raises(ValueError, match=r"Expected cfg in"):
        resolve_config(outdir=str(tmp_path), cfg="stylegan2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        train(resolve_config(outdir=str(tmp_path / "a"), data=str(empty), **SMALL))
    with pytest.raises(ValueError, match="labels"):
        train(resolve_config(outdir=str(tmp_path / "b"), data="builtin:faces", cond=True,
                             **SMALL))
    with pytest.raises(ValueError, match="no_such_dataset_xyz"):
        train(resolve_config(outdir=str(tmp_path / "c"), data="tfds:no_such_dataset_xyz",
                             **SMALL))


def test_seed_and_vector_parsing():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_vec2("0.1,-0.25") == (0.1, -0.25)
    with pytest.raises(ValueError, match=r"Expected seeds like '0-7' or '1,5,9'. Received: 'a-b'"):
        parse_seeds("a-b")
    with pytest.raises(ValueError, match=r"Received: '0.1'"):
        parse_vec2("0.1")


def test_translation_moves_the_content():
    """An integer translation of the input moves the picture by as many pixels."""
    import keras_afgan

    G = keras_afgan.Generator(z_dim=16, w_dim=16, img_resolution=32, channel_base=512,
                              channel_max=16, num_layers=6, margin_size=6, seed=4)
    still = generate_images(G, [1])[0]
    moved = generate_images(G, [1], translate=(0.25, 0.0))[0]  # 8 pixels along x
    inner = (slice(4, 28), slice(12, 28))
    expected = still[:, 4:20][inner[0]]  # content from x - 8
    err_shifted = np.abs(moved[inner] - expected).mean()
    err_unshifted = np.abs(moved[inner] - still[inner]).mean()
    assert err_shifted < 0.3 * err_unshifted


@pytest.mark.slow
def test_generate_cli_writes_one_png_per_seed(trained, tmp_path):
    outdir, _ = trained
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[keras.backend.backend()]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    images = tmp_path / "images"
    subprocess.run([sys.executable, "-m", "keras_afgan.cli.generate",
                    f"--network={outdir}/generator.keras", "--seeds=0-2,5", "--trunc=0.7",
                    f"--outdir={images}"], env=env, check=True, capture_output=True,
                   cwd=REPO_ROOT)
    names = sorted(os.listdir(images))
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0005.png"]
    pictures = [np.asarray(Image.open(images / n)) for n in names]
    assert all(p.shape == (16, 16, 3) for p in pictures)
    assert np.abs(pictures[0].astype(int) - pictures[1]).max() > 0
    G = keras.saving.load_model(f"{outdir}/generator.keras")
    ours = generate_images(G, [5], truncation_psi=0.7)[0]
    np.testing.assert_allclose(pictures[3], np.clip(np.floor(ours * 127.5 + 128), 0, 255), atol=1)
