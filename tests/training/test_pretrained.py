"""Fine-tuning pretrained networks: `afgan-train --resume=PATH` into a new run.

The pretrained networks are a small StyleGAN3-T written as a reference
snapshot pickle with exactly the constructor arguments the reference's
train.py passes (tests/snapshot_writer.py; 14 layers as train.py builds
them, narrow channels), with an AugmentPipe. One run fine-tunes it through
the `afgan-train` command line with Freeze-D; a second one fine-tunes that
run's finished checkpoint into a conditional model on the built-in
textures. The expected values come from the pickle itself, as
`load_reference_pickle` reads it (checked against the golden outputs in
tests/test_snapshot.py).
"""

import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

from keras_afgan.cli.convert import convert
from keras_afgan.convert import load_reference_pickle
from keras_afgan.convert import reference_variables
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.training.pretrained import load_pretrained
from keras_afgan.training.run import _continued_config
from keras_afgan.training.run import build_transfer_gan
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.snapshot_writer import write_model_snapshot
from tests.testing import REPO_ROOT
from tests.testing import to_numpy

# What train.py would build for `--cbase=1024 --cmax=16 --batch=32` (with
# z_dim = w_dim = 32 instead of its fixed 512, to stay CPU-sized).
SOURCE = dict(z_dim=32, w_dim=32, img_resolution=32, channel_base=1024, channel_max=16)
AUGMENT_P = 0.2
FROZEN = ("b32.fromrgb.weight", "b32.fromrgb.bias", "b32.conv0.weight", "b32.conv0.bias")
# One tick of one step (Gmain, Dmain and R1).
RUN = ("--data=builtin", "--resolution=32", "--batch=4", "--tick=0.004", "--kimg=0.004",
       "--snap=100", "--gamma=1", "--glr=0.001", "--freezed=2")

pytestmark = pytest.mark.usefixtures("builtin_data_dir")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The pretrained pickle, and its networks as keras_afgan reads them."""
    tmp = tmp_path_factory.mktemp("pretrained")
    keras.utils.set_random_seed(7)
    G = Generator(**SOURCE, magnitude_ema_beta=0.5 ** (32 / 20000), seed=3)
    D = Discriminator(img_resolution=32, channel_base=1024, channel_max=16, mbstd_group_size=4)
    G_ema = Generator.from_config(G.get_config())
    rng = np.random.default_rng(0)
    for variable in G_ema.trainable_variables:  # a G_ema that differs from G
        variable.assign(to_numpy(variable) + rng.normal(0, 0.01, variable.shape))
    path = write_model_snapshot(str(tmp / "network-snapshot-000200.pkl"), G, D, G_ema,
                                augment_p=AUGMENT_P)
    return types.SimpleNamespace(path=path, tmp=tmp, models=load_reference_pickle(path))


@pytest.fixture(scope="module")
def finetuned(source):
    """`afgan-train --resume=PKL` into a new outdir, through the command line."""
    outdir = source.tmp / "finetuned"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.train", f"--outdir={outdir}",
         f"--resume={source.path}", *RUN],
        env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    return types.SimpleNamespace(outdir=outdir, stdout=result.stdout,
                                 gan=keras.saving.load_model(outdir / "checkpoint.keras"))


def _weights(model):
    return {name: to_numpy(v) for name, v in reference_variables(model).items()}


def test_a_new_run_starts_at_zero_from_the_pickle(source, finetuned):
    stats = [json.loads(line) for line in open(finetuned.outdir / "stats.jsonl")]
    assert [s["tick"] for s in stats] == [1]
    assert stats[0]["kimg"] == pytest.approx(0.004)  # one tick, not the pickle's 200 kimg
    gan = finetuned.gan
    assert int(to_numpy(gan.iteration)) == 1 and int(to_numpy(gan.images_seen)) == 4
    # The reference's fine-tuning semantics and the flags given.
    assert gan.ema_rampup is None and gan.blur_init_sigma == 0.0
    assert gan.r1_gamma == 1.0
    assert float(to_numpy(gan.g_optimizer.learning_rate)) == pytest.approx(0.001)
    assert "Fine-tuning the networks of" in finetuned.stdout
    assert f"p={AUGMENT_P:.3f}" in finetuned.stdout
    # config.json records what ran: the pickle's architecture, the flags' recipe.
    config = json.load(open(finetuned.outdir / "config.json"))
    assert (config["cbase"], config["cmax"], config["z_dim"], config["num_layers"]) == (
        1024, 16, 32, 14)
    assert (config["gamma"], config["glr"], config["freezed"]) == (1, 0.001, 2)
    assert config["resume"] == source.path and config["mbstd_group"] == 4


def test_the_kimg0_snapshot_is_the_pickles_g_ema(source, finetuned):
    start = keras.saving.load_model(finetuned.outdir / "network-snapshot-tick000000.keras")
    expected = _weights(source.models["G_ema"])
    actual = _weights(start)
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():  # every weight and statistic, bit for bit
        np.testing.assert_array_equal(actual[name], value, err_msg=name)
    # G started from the pickle's G (not its G_ema): the first step moved it from there.
    assert not np.array_equal(to_numpy(finetuned.gan.generator.synthesis.input.kernel),
                              to_numpy(source.models["G_ema"].synthesis.input.kernel))


def test_freeze_d_leaves_the_first_layers_untouched(source, finetuned):
    before = _weights(source.models["D"])
    after = _weights(finetuned.gan.discriminator)
    frozen = {v.path.split("/", 1)[1] for v in finetuned.gan.discriminator.non_trainable_variables}
    assert frozen == {"b32/fromrgb/kernel", "b32/fromrgb/bias", "b32/conv0/kernel",
                      "b32/conv0/bias"}
    for name in FROZEN:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    trained = [name for name in before if not name.endswith("_filter") and name not in FROZEN]
    unchanged = [name for name in trained if np.array_equal(after[name], before[name])]
    assert not unchanged, f"not updated: {unchanged}"
    # The setting is in the checkpoint: it reloads frozen.
    assert finetuned.gan.discriminator.freeze_layers == 2


def test_conditional_finetune_of_a_finished_run_lists_new_weights(source, finetuned, tmp_path,
                                                                  capsys):
    """From the (finished) run's checkpoint into a 5-class model on the textures."""
    outdir = tmp_path / "textures"
    checkpoint = str(finetuned.outdir / "checkpoint.keras")
    gan = train(resolve_config(outdir=str(outdir), resume=checkpoint, data="builtin:textures",
                               resolution=32, cond=True, batch=4, tick=0.004, kimg=0.004,
                               snap=100, mbstd_group=2))
    printed = capsys.readouterr().out
    assert int(to_numpy(gan.iteration)) == 1  # the source had reached its kimg: this trained
    assert gan.generator.c_dim == gan.discriminator.c_dim == 5
    # This run's recipe (defaults here), not the source run's gamma 1 and glr 0.001.
    assert gan.r1_gamma == 2.0
    assert float(to_numpy(gan.g_optimizer.learning_rate)) == pytest.approx(0.0025)
    g_line = next(line for line in printed.splitlines() if line.startswith("Initialised G"))
    d_line = next(line for line in printed.splitlines() if line.startswith("Initialised D"))
    # G: the label embedding, and fc0 whose input grew by the embedding.
    assert g_line.endswith(": mapping.embed.{weight,bias}, mapping.fc0.weight")
    # D: its label mapping, and the output projected on it (cmap_dim wide).
    for name in ["mapping.embed.{weight,bias}"] + [f"mapping.fc{i}.{{weight,bias}}"
                                                    for i in range(8)] + ["b4.out.{weight,bias}"]:
        assert name in d_line, name
    # Everything else came from the source G-EMA.
    start = _weights(keras.saving.load_model(outdir / "network-snapshot-tick000000.keras"))
    expected = _weights(finetuned.gan.generator_ema)
    copied = [name for name in start if name.startswith("synthesis.")]
    assert copied
    for name in copied:
        np.testing.assert_array_equal(start[name], expected[name], err_msg=name)


@pytest.mark.parametrize("flag, message", [
    (dict(cbase=2048), r"--cbase=2048 \(the networks have 1024\)"),
    (dict(resolution=64), r"--resolution=64 \(the networks have 32\)"),
    (dict(cfg="stylegan3-r"), r"--cfg=stylegan3-r \(the networks have stylegan3-t\)"),
])
def test_flags_contradicting_the_architecture_are_refused(source, tmp_path, flag, message):
    outdir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train(resolve_config(outdir=str(outdir), resume=source.path, **flag))
    assert not outdir.exists()


def test_three_kinds_of_pretrained_source(source, finetuned, tmp_path):
    converted = tmp_path / "converted"
    convert(source.path, str(converted))
    assert json.load(open(converted / "augment.json"))["p"] == pytest.approx(AUGMENT_P)
    pickle_source = load_pretrained(source.path)
    directory = load_pretrained(str(converted))
    checkpoint = load_pretrained(str(finetuned.outdir / "checkpoint.keras"))
    assert (pickle_source.kind, directory.kind, checkpoint.kind) == (
        "reference snapshot", "afgan-convert directory", "training checkpoint")
    assert pickle_source.augment == directory.augment
    assert pickle_source.augment["p"] == pytest.approx(AUGMENT_P) and checkpoint.augment is None
    for key in ("G", "G_ema", "D"):
        a, b = _weights(getattr(pickle_source, key)), _weights(getattr(directory, key))
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{key} {name}")
    # Built (not trained) from the directory: the pickle's weights, counters at 0.
    config = resolve_config(outdir=str(tmp_path / "x"), batch=4, mbstd_group=4)
    gan, initialised = build_transfer_gan(config, directory, c_dim=0, img_channels=3)
    assert initialised == {"G": [], "D": []}
    assert int(to_numpy(gan.iteration)) == 0 and int(to_numpy(gan.g_optimizer.iterations)) == 0
    for model, key in ((gan.generator, "G"), (gan.generator_ema, "G_ema"),
                       (gan.discriminator, "D")):
        actual, expected = _weights(model), _weights(getattr(pickle_source, key))
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=f"{key} {name}")
    # The magnitude EMAs' decay follows this run's batch (as the reference builds G).
    assert gan.generator.synthesis.magnitude_ema_beta == pytest.approx(0.5 ** (4 / 20000))

    with pytest.raises(ValueError, match=r"training checkpoint \(AliasFreeGAN\) with a "
                                         "discriminator to fine-tune. Received: Generator"):
        load_pretrained(str(finetuned.outdir / "generator.keras"))
    (tmp_path / "only_g").mkdir()
    os.link(converted / "G_ema.keras", tmp_path / "only_g" / "G_ema.keras")
    with pytest.raises(ValueError, match=r"Expected a discriminator \(D\) in .*only_g"):
        load_pretrained(str(tmp_path / "only_g"))
    with pytest.raises(ValueError, match="Expected --resume to name a reference snapshot .pkl"):
        load_pretrained(str(tmp_path / "missing.pkl"))


def test_a_continued_run_keeps_its_settings(tmp_path):
    saved = json.loads(resolve_config(outdir=str(tmp_path), preset="tiny", gamma=3.0,
                                      kimg=100).to_json())
    # Flags left out take the run's values (the gamma, the preset's batch, the kimg) ...
    config = _continued_config(resolve_config(outdir=str(tmp_path)), saved)
    assert (config.gamma, config.batch, config.kimg, config.cbase) == (3.0, 8, 100, 2048)
    # ... a free one may change; anything else given explicitly must match.
    assert _continued_config(resolve_config(outdir=str(tmp_path), kimg=200), saved).kimg == 200
    with pytest.raises(ValueError, match=r"other settings \(\['batch', 'freezed'\]\)"):
        _continued_config(resolve_config(outdir=str(tmp_path), batch=16, freezed=1), saved)
