"""afgan-train / afgan-generate end to end: outputs, resume after a kill, bad input."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_afgan.cli.common import finite
from keras_afgan.cli.common import parse_seeds
from keras_afgan.cli.common import parse_vec2
from keras_afgan.data import ImageDataset
from keras_afgan.metrics import sampled_equivariance
from keras_afgan.metrics import snapshot_metrics
from keras_afgan.models.sampling import generate_images
from keras_afgan.training import callbacks
from keras_afgan.training.run import describe_source
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.testing import REPO_ROOT
from tests.testing import to_numpy

# 16 px, batch 4, ticks of 2 steps: seconds per tick on CPU.
SMALL = dict(preset="tiny", resolution=16, batch=4, tick=0.008, snap=2, mbstd_group=2, verbose=0)

pytestmark = pytest.mark.usefixtures("builtin_data_dir")


# The shared run: 3 ticks of 2 steps; snapshots at tick 2 (--snap=2) and at
# the last tick, each with a cheap snapshot metric (2 samples).
RUN = dict(kimg=0.024, metrics="eqt50k_int", metrics_num=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short uninterrupted run, shared by the tests that read it."""
    outdir = str(tmp_path_factory.mktemp("run"))
    return outdir, train(resolve_config(outdir=outdir, **RUN, **SMALL),
                         snapshot_metrics=snapshot_metrics)


def test_run_writes_its_outputs(trained):
    outdir, gan = trained
    files = set(os.listdir(outdir))
    assert files == {"config.json", "stats.jsonl", "metrics.jsonl", "checkpoint.keras",
                     "generator.keras", "reals.png", "logs", "fakes-tick000002.png",
                     "network-snapshot-tick000002.keras", "fakes-tick000003.png",
                     "network-snapshot-tick000003.keras"}
    stats = [json.loads(line) for line in open(os.path.join(outdir, "stats.jsonl"))]
    assert [s["tick"] for s in stats] == [1, 2, 3]
    assert stats[-1]["kimg"] == pytest.approx(0.024)
    for key in ("loss_G", "loss_D", "r1_penalty", "img_per_sec", "augment_p", "rt"):
        assert np.isfinite(stats[-1][key]), key  # ADA is on by default
    assert gan.augment_pipe is not None and gan.ada_target == 0.6
    assert any(name.startswith("events") for _, _, names in os.walk(os.path.join(outdir, "logs"))
               for name in names)
    grid = np.asarray(Image.open(os.path.join(outdir, "fakes-tick000002.png")))
    assert grid.shape == (4 * 16, 8 * 16, 3) and grid.std() > 0
    config = json.load(open(os.path.join(outdir, "config.json")))
    assert config["resolution"] == 16 and config["cfg"] == "stylegan3-t"
    assert int(to_numpy(gan.iteration)) == 6
    # The last tick's snapshot is the final G-EMA (not a snapshot's of tick 2).
    final = keras.saving.load_model(os.path.join(outdir, "generator.keras"))
    for a, b in zip(gan.generator_ema.variables, final.variables):
        np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)


@pytest.mark.slow
def test_snapshot_metrics_are_logged(trained):
    outdir, gan = trained
    stats = [json.loads(line) for line in open(os.path.join(outdir, "stats.jsonl"))]
    assert "eqt50k_int" not in stats[0] and np.isfinite(stats[1]["eqt50k_int"])
    records = [json.loads(line) for line in open(os.path.join(outdir, "metrics.jsonl"))]
    assert [r["tick"] for r in records] == [2, 3]
    record = records[0]
    assert record["snapshot"] == "network-snapshot-tick000002.keras"
    # The logged value is the metric of the snapshot's G-EMA (same seed, same samples).
    G = keras.saving.load_model(os.path.join(outdir, record["snapshot"]))
    assert record["results"]["eqt50k_int"] == pytest.approx(
        sampled_equivariance(G, "eqt50k_int", num=2, seed=0), abs=1e-3)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(outdir, "logs")).Reload()
    assert "Metrics/eqt50k_int" in events.Tags()["tensors"]


def test_outputs_past_tick_1_without_a_checkpoint_are_refused(tmp_path):
    """Outputs a killed first tick cannot have left: refused, nothing changed."""
    lines = "".join(json.dumps({"tick": t}) + "\n" for t in (1, 2, 3))
    (tmp_path / "stats.jsonl").write_text(lines)
    with pytest.raises(ValueError, match="holds outputs up to tick 3 but no checkpoint.keras"):
        train(resolve_config(outdir=str(tmp_path), kimg=0.008, **SMALL))
    assert sorted(os.listdir(tmp_path)) == ["stats.jsonl"]
    assert (tmp_path / "stats.jsonl").read_text() == lines


def test_noaug_trains_without_augmentation(tmp_path):
    """--aug=noaug: no pipe, no p or rt in the stats; the config records it."""
    gan = train(resolve_config(outdir=str(tmp_path), aug="noaug", kimg=0.008, **SMALL))
    assert gan.augment_pipe is None
    stats = [json.loads(line) for line in open(tmp_path / "stats.jsonl")]
    assert len(stats) == 1 and "augment_p" not in stats[0] and "rt" not in stats[0]
    assert json.load(open(tmp_path / "config.json"))["aug"] == "noaug"


@pytest.mark.parametrize("settings, message", [
    (dict(aug="adaptive"), "Expected aug in"), (dict(augpipe="bgcx"), "Expected augpipe"),
    (dict(target=1.5), "Expected target in"), (dict(p=-0.1), "Expected p in"),
    (dict(ada_kimg=0), "Expected ada_kimg > 0")])
def test_bad_augmentation_settings_are_refused(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(outdir=str(tmp_path), **settings, **SMALL)


def test_bad_metrics_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Expected metrics from .*Received: \['fid'\]"):
        train(resolve_config(outdir=str(tmp_path / "n"), metrics="eqt50k_int,fid", **SMALL),
              snapshot_metrics=snapshot_metrics)
    with pytest.raises(FileNotFoundError, match="InceptionV3 weights not found"):
        train(resolve_config(outdir=str(tmp_path / "f"), metrics="fid50k_full",
                             inception=str(tmp_path / "none.h5"), kimg=0.008, **SMALL),
              snapshot_metrics=snapshot_metrics)
    # Training knows no metric: a config naming some needs the callback.
    with pytest.raises(ValueError, match="no snapshot_metrics callback"):
        train(resolve_config(outdir=str(tmp_path / "c"), metrics="eqt50k_int", **SMALL))
    for name in ("n", "f", "c"):
        assert not os.path.exists(tmp_path / name / "checkpoint.keras")


class _Killed(BaseException):
    """Stands for SIGKILL in this process: nothing below the kill point runs
    (atomic_save's clean-up included), and nothing but an interpreter exit
    catches it."""


KILL_AT = """
import os, signal, sys
from keras_afgan.cli import train as cli
from keras_afgan.data import ImageDataset
from keras_afgan.training import callbacks
original, count = callbacks.atomic_save, 0
def atomic_save(model, path):
    global count
    hit = os.path.basename(path) == {name!r}
    count += hit
    if hit and count == {nth} and {when!r} == "during":
        model.save(f"{{path}}.tmp-{{os.getpid()}}.keras")
        os.kill(os.getpid(), signal.SIGKILL)
    original(model, path)
    if hit and count == {nth} and {when!r} == "after":
        os.kill(os.getpid(), signal.SIGKILL)
callbacks.atomic_save = atomic_save
sys.argv = ["afgan-train", *{args!r}]
cli.run()
"""


def _kill_in_process(monkeypatch, name, nth, when):
    """`callbacks.atomic_save` stops the run dead at the `nth` write of `name`:
    "during" it (its temporary file written, not renamed) or "after" it."""
    original, count = callbacks.atomic_save, [0]

    def atomic_save(model, path):
        hit = os.path.basename(path) == name
        count[0] += hit
        if hit and count[0] == nth and when == "during":
            model.save(f"{path}.tmp-{os.getpid()}.keras")
            raise _Killed(f"during {name}")
        original(model, path)
        if hit and count[0] == nth and when == "after":
            raise _Killed(f"after {name}")

    monkeypatch.setattr(callbacks, "atomic_save", atomic_save)


def _outputs(outdir):
    """What a run leaves: file names, stats and metrics lines without their
    timings, and the weights of every .keras file."""
    files = sorted(os.listdir(outdir))
    timings = ("sec_per_tick", "img_per_sec", "timestamp", "sec")
    logs = {name: [{k: v for k, v in json.loads(line).items() if k not in timings}
                   for line in open(os.path.join(outdir, name))]
            for name in ("stats.jsonl", "metrics.jsonl")}
    weights = {name: [to_numpy(v) for v in keras.saving.load_model(
        os.path.join(outdir, name), compile=False).variables]
        for name in files if name.endswith(".keras")}
    return files, logs, weights


@pytest.mark.slow
def test_a_run_killed_at_any_point_of_a_tick_ends_as_an_uninterrupted_one(trained, tmp_path,
                                                                          monkeypatch):
    """Killed after tick 1's checkpoint (a real SIGKILL, by the command line
    run itself), then during tick 2's snapshot, then during the last tick's
    generator.keras, each time restarted: the directory ends as `trained`'s."""
    outdir = tmp_path / "killed"
    args = [f"--outdir={outdir}", "--preset=tiny", "--resolution=16", "--batch=4",
            "--tick=0.008", "--snap=2", "--mbstd-group=2", "--kimg=0.024",
            "--metrics=eqt50k_int", "--metrics-num=2", "--verbosity=-1"]
    code = KILL_AT.format(name="checkpoint.keras", nth=1, when="after", args=args)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert [json.loads(line)["tick"] for line in open(outdir / "stats.jsonl")] == [1]

    config = resolve_config(outdir=str(outdir), **RUN, **SMALL)
    for name, nth in (("network-snapshot-tick000002.keras", 1), ("generator.keras", 2)):
        _kill_in_process(monkeypatch, name, nth, "during")
        with pytest.raises(_Killed):
            train(config, snapshot_metrics=snapshot_metrics)
        assert os.path.exists(outdir / f"{name}.tmp-{os.getpid()}.keras")
        monkeypatch.undo()
    train(config, snapshot_metrics=snapshot_metrics)

    expected_files, expected_logs, expected_weights = _outputs(trained[0])
    files, logs, weights = _outputs(outdir)
    assert files == expected_files  # no temporary file left, every snapshot there
    assert logs == expected_logs  # every line once, the same values
    for name, values in expected_weights.items():
        assert len(weights[name]) == len(values), name
        for a, b in zip(weights[name], values):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=name)


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
        resolve_config(outdir=str(tmp_path), cfg="stylegan4")
    with pytest.raises(ValueError, match=r"Expected filter_window='kaiser' for cfg='stylegan2'"):
        resolve_config(outdir=str(tmp_path), cfg="stylegan2", filter_window="lanczos")
    with pytest.raises(ValueError, match=r"Expected filter_window in"):
        resolve_config(outdir=str(tmp_path), filter_window="hann")
    with pytest.raises(ValueError, match=r"Expected mixing_prob in \[0, 1\]"):
        resolve_config(outdir=str(tmp_path), mixing_prob=1.5)
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
    with pytest.raises(ValueError, match=r"two finite numbers.*Received: 'nan,0'"):
        parse_vec2("nan,0")
    # A typo must not build a list of two billion seeds first.
    with pytest.raises(ValueError, match=r"at most 100000 seeds. Received: '0-2000000000'"):
        parse_seeds("0-2000000000")
    with pytest.raises(ValueError, match=r"below 2\*\*32"):
        parse_seeds("4294967296")
    with pytest.raises(ValueError, match=r"Expected seeds like"):
        parse_seeds("\u00b2")  # a superscript two is a digit to str.isdigit, not a seed


def test_generate_refuses_non_finite_settings(tmp_path):
    """--trunc=nan used to write black PNGs and exit 0; --rotate and
    --translate go through the same checks (`finite`, `parse_vec2`)."""
    outdir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.generate", "--network=unused.keras",
         f"--outdir={outdir}", "--trunc=nan"], capture_output=True, text=True, cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode != 0
    assert "Expected --trunc to be a finite number. Received: nan" in result.stderr
    assert not outdir.exists()  # refused before anything was read or written
    with pytest.raises(ValueError, match=r"Expected --rotate to be a finite number"):
        finite(float("inf"), "--rotate")


def test_the_run_summary_counts_skipped_files():
    source = ImageDataset("photos.zip", np.zeros((3, 16, 16, 3), np.uint8),
                          skipped=("bad1.png", "bad2.jpg"))
    assert describe_source(source, 0) == (
        "photos.zip (3 images, 2 unreadable files skipped, c_dim=0)")


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
