"""Mixed-precision training: mixed_bfloat16 and mixed_float16 on every backend.

A tiny GAN trains two iterations in each precision (losses, weights and
G-EMA finite; R1 under mixed_float16); under mixed_float16 a forced overflow
is skipped, counted and halves the loss scale, and the scales and counters
survive a `.keras` round trip. The golden generator in bfloat16 and float16
stays within stated tolerances of the reference's float32 images (measured
in BUILD_NOTES.md).

Compilation takes most of this file's time. On TensorFlow the training
steps run as a graph without XLA, whose compile of a mixed-precision step
takes 30-60 s on CI's CPUs (the XLA steps were run by hand, see
BUILD_NOTES.md); everything compiled uses the matrix form of the resampling
(the default for mixed precision anyway); the bfloat16 GAN runs
without R1, whose double backward takes a third of a step's compile time.
The arithmetic checked here depends on none of these.
"""

import dataclasses
import importlib
import json
import os

import keras
import numpy as np
import pytest

from keras_afgan.bench import BenchConfig
from keras_afgan.bench import build_models
from keras_afgan.cli.common import load_generator
from keras_afgan.convert.reference import generator_kwargs_from_reference
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.models import generator_with_dtype
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training.callbacks import TrainingMonitor
from keras_afgan.training.gan import default_optimizers
from keras_afgan.training.run import build_networks
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.conftest import golden_case
from tests.testing import to_numpy

N = 4
TINY_G = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8,
              num_layers=3, mapping_layers=1)
TINY_D = dict(img_resolution=16, channel_base=128, channel_max=8, mbstd_group_size=2)
# G(z) of the golden t16 generator against the reference's float32 images
# (std 0.10): max |error| and RMS error. Measured on this CPU (eager):
#   bfloat16: TF 0.070 / 0.0126, JAX 0.016 / 0.0035, torch 0.015 / 0.0035
#   float16:  TF 1.1e-3 / 2.3e-4, JAX 7.5e-4 / 1.8e-4, torch 1.2e-3 / 2.9e-4
# TF's bfloat16 matrix products round more; see BUILD_NOTES.md "Mixed precision".
TOLERANCES = {"mixed_bfloat16": (0.1, 0.02), "mixed_float16": (3e-3, 6e-4)}


def _batch(seed):
    rng = np.random.default_rng(seed)
    return {"images": rng.uniform(-1, 1, (N, 16, 16, 3)).astype("float32"),
            "latents": rng.standard_normal((N, 2, 8)).astype("float32")}


def _tiny_gan(precision, r1_interval=2, **compile_kwargs):
    keras.utils.set_random_seed(0)
    G = Generator(**TINY_G, dtype=precision)
    D = Discriminator(**TINY_D, dtype=precision)
    gan = AliasFreeGAN(G, D, r1_interval=r1_interval, ema_kimg=0.01, ema_rampup=0.5,
                       blur_init_sigma=2.0, blur_fade_kimg=0.1)
    if keras.config.backend() == "tensorflow":
        compile_kwargs.setdefault("jit_compile", False)
    gan.compile(**compile_kwargs)
    return gan


def _assert_finite(gan):
    for model in (gan.generator, gan.generator_ema, gan.discriminator):
        for v in model.variables:
            assert np.all(np.isfinite(to_numpy(v))), v.path


def _fit(gan, batch):
    history = gan.fit(batch, batch_size=N, epochs=1, shuffle=False, verbose=0)
    return {k: v[-1] for k, v in history.history.items()}


def _matrix_resampling(monkeypatch):
    upfirdn2d = importlib.import_module("keras_afgan.ops.upfirdn2d")
    monkeypatch.setattr(upfirdn2d, "default_method", lambda x: "matrix")


@pytest.fixture(scope="module")
def trained():
    """Per precision: a tiny GAN after two `fit` iterations, and their logs.

    mixed_float16 (with R1 at iterations 0 and 2) then takes a third iteration
    with both loss scales forced to 2**100, where every gradient overflows.
    """
    out = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        _matrix_resampling(monkeypatch)
        gan = _tiny_gan("mixed_bfloat16", r1_interval=0)
        out["mixed_bfloat16"] = gan, _fit(gan, _double(_batch(0))), None

        # Small scales that double after two finite steps: growth is seen too.
        g_opt, d_opt = default_optimizers(2)
        gan = _tiny_gan("mixed_float16", **{name: keras.optimizers.LossScaleOptimizer(
            opt, initial_scale=2.0**10, dynamic_growth_steps=2)
            for name, opt in (("g_optimizer", g_opt), ("d_optimizer", d_opt))})
        logs = _fit(gan, _double(_batch(0)))
        before = [to_numpy(v) for v in gan.trainable_variables]
        counts = (to_numpy(gan.g_optimizer.iterations), to_numpy(gan.d_optimizer.iterations))
        gan.g_optimizer.dynamic_scale.assign(2.0**100)
        gan.d_optimizer.dynamic_scale.assign(2.0**100)
        # The same batch structure as before: the compiled step is reused.
        out["mixed_float16"] = gan, logs, (before, counts, _fit(gan, _batch(1)))
    return out


def _double(batch):
    return {k: np.concatenate([v, v]) for k, v in batch.items()}


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_trains_without_nan(trained, precision):
    gan, logs, _ = trained[precision]
    assert gan.precision == precision
    assert int(to_numpy(gan.iteration)) == (3 if precision == "mixed_float16" else 2)
    for name in ("loss_G", "loss_D", "loss_D_gen", "loss_D_real", "r1_penalty", "D_real",
                 "D_fake"):
        assert np.isfinite(logs[name]), name
    if precision == "mixed_float16":
        assert logs["r1_penalty"] > 0
    _assert_finite(gan)
    layer = gan.generator.synthesis.synthesis_layers[0]
    compute = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    assert layer.compute_dtype == compute and layer.kernel.dtype == "float32"
    # Statistics and EMAs stay float32; the mapping and Fourier input run in it.
    assert layer.magnitude_ema.dtype == "float32"
    assert gan.generator.mapping.w_avg.dtype == "float32"
    assert gan.generator.mapping.compute_dtype == "float32"
    assert gan.generator.synthesis.input.compute_dtype == "float32"
    assert gan.generator_ema.synthesis.synthesis_layers[0].compute_dtype == compute


def test_bfloat16_needs_no_loss_scale(trained):
    gan, logs, _ = trained["mixed_bfloat16"]
    assert not gan.loss_scaling
    assert isinstance(gan.g_optimizer, keras.optimizers.Adam)
    assert not any(name.startswith(("skipped", "loss_scale")) for name in logs)


def test_float16_loss_scale_grows_and_overflow_is_skipped(trained):
    gan, logs, (before, counts, forced_logs) = trained["mixed_float16"]
    # Two finite iterations: G took 2 steps, D 3 (Dreg at iteration 0); the
    # scale doubled after each second finite step.
    assert logs["skipped_steps_G"] == 0 and logs["skipped_steps_D"] == 0
    assert logs["loss_scale_G"] == 2.0**11 and logs["loss_scale_D"] == 2.0**11
    assert tuple(int(c) for c in counts) == (2, 3)
    # Forced overflow at iteration 2 (with Dreg): every step skipped, each halving.
    assert forced_logs["skipped_steps_G"] == 1 and forced_logs["skipped_steps_D"] == 2
    assert forced_logs["loss_scale_G"] == 2.0**99 and forced_logs["loss_scale_D"] == 2.0**98
    assert to_numpy(gan.g_optimizer.dynamic_scale) == 2.0**99
    assert to_numpy(gan.d_optimizer.dynamic_scale) == 2.0**98
    assert int(to_numpy(gan.g_optimizer.iterations)) == 2
    assert int(to_numpy(gan.d_optimizer.iterations)) == 3
    for v, old in zip(gan.trainable_variables, before):
        np.testing.assert_array_equal(to_numpy(v), old, err_msg=v.path)
    _assert_finite(gan)


def test_float16_state_survives_save_and_load(trained, tmp_path):
    gan = trained["mixed_float16"][0]
    path = str(tmp_path / "checkpoint.keras")
    gan.save(path)
    restored = keras.saving.load_model(path)
    assert restored.precision == "mixed_float16"
    assert restored.discriminator.blocks[0].conv0.compute_dtype == "float16"
    assert restored.generator_ema.synthesis.synthesis_layers[-1].compute_dtype == "float16"
    for name in ("g_optimizer", "d_optimizer"):
        opt = getattr(restored, name)
        assert isinstance(opt, keras.optimizers.LossScaleOptimizer), name
        assert opt.dynamic_growth_steps == 2
    assert len(restored.optimizer.variables) == len(gan.optimizer.variables)
    for a, b in zip(gan.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)
    # A float32 generator for inference from the checkpoint, same weights.
    generator = load_generator(path)
    assert generator.dtype_policy.name == "float32"
    assert generator.synthesis.synthesis_layers[0].compute_dtype == "float32"
    for a, b in zip(gan.generator_ema.variables, generator.variables):
        np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)


def test_snapshots_are_float32(trained, tmp_path):
    gan = trained["mixed_bfloat16"][0]
    z = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    monitor = TrainingMonitor(str(tmp_path), 1, N, 1, z, np.zeros((2, 0), "float32"), (1, 2))
    monitor.set_model(gan)
    snapshot = monitor.snapshot(1, 0.0)
    assert snapshot.dtype_policy.name == "float32"
    assert os.path.exists(tmp_path / "fakes-tick000001.png")
    saved = keras.saving.load_model(str(tmp_path / "generator.keras"))
    assert saved.synthesis.synthesis_layers[0].compute_dtype == "float32"
    for a, b in zip(gan.generator_ema.variables, saved.variables):
        np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)


def test_compile_wraps_only_float16(trained):
    del trained  # after the module's fits: this builds more models
    assert isinstance(_tiny_gan("mixed_float16").d_optimizer,
                      keras.optimizers.LossScaleOptimizer)
    assert isinstance(_tiny_gan("float32").g_optimizer, keras.optimizers.Adam)
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    with pytest.raises(ValueError, match="loss scaling is for mixed_float16"):
        _tiny_gan("mixed_bfloat16", g_optimizer=scaled)
    with pytest.raises(ValueError, match="same dtype policy"):
        AliasFreeGAN(Generator(**TINY_G), Discriminator(**TINY_D, dtype="mixed_bfloat16"))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_golden_generator_in_mixed_precision(precision, monkeypatch):
    case = golden_case("t16")  # truncation psi 1
    reference = case.generator()
    # The golden case's num_fp16_res=0 would keep every layer in float32; the
    # reference's default (4) puts all of a 16 px G's layers in reduced precision.
    settings = dict(generator_kwargs_from_reference(**case.meta["G_kwargs"]), num_fp16_res=4)
    G = Generator(**settings, dtype=precision)
    assert all(layer.compute_dtype == precision.split("_")[1]
               for layer in G.synthesis.synthesis_layers)
    G.set_weights(reference.get_weights())
    # Eager JAX compiles every op for every shape: one compiled call is quicker.
    _matrix_resampling(monkeypatch)
    G.compile(jit_compile=keras.config.backend() == "jax")
    images = G.predict_on_batch((case.arrays["in/z"], case.arrays["in/c"]))
    assert keras.backend.standardize_dtype(images.dtype) == "float32"
    err = to_numpy(images).astype(np.float64) - case.nhwc("out/img")
    max_err, rms_err = TOLERANCES[precision]
    assert np.abs(err).max() <= max_err, f"max |error| {np.abs(err).max():.3g}"
    assert np.sqrt(np.mean(err**2)) <= rms_err, f"RMS error {np.sqrt(np.mean(err**2)):.3g}"
    float32 = generator_with_dtype(G, "float32")
    assert float32.synthesis.synthesis_layers[0].compute_dtype == "float32"
    for a, b in zip(reference.variables, float32.variables):
        np.testing.assert_array_equal(to_numpy(b), to_numpy(a), err_msg=a.path)


def test_run_settings(tmp_path):
    with pytest.raises(ValueError, match="Expected precision in"):
        resolve_config(outdir=str(tmp_path), precision="float16")
    config = resolve_config(outdir=str(tmp_path), preset="tiny", precision="mixed_bfloat16")
    assert json.loads(config.to_json())["precision"] == "mixed_bfloat16"
    small = dataclasses.replace(config, cbase=128, cmax=8, z_dim=8, w_dim=8, num_layers=3)
    G, D = build_networks(small, c_dim=0, resolution=16)
    assert G.dtype_policy.name == D.dtype_policy.name == "mixed_bfloat16"
    assert D.blocks[0].conv0.compute_dtype == "bfloat16"
    assert D.epilogue.fc.compute_dtype == "float32"
    # A run continues only in the precision it started with.
    (tmp_path / "checkpoint.keras").write_text("")
    (tmp_path / "config.json").write_text(config.to_json())
    with pytest.raises(ValueError, match=r"other settings \(\['precision'\]\)"):
        train(dataclasses.replace(config, precision="mixed_float16"))


def test_reduced_precision_only_where_the_reference_has_it():
    """G: synthesis layers with s_i * 2^num_fp16_res > R; D: blocks at
    resolutions >= max(2^(log2 R + 1 - num_fp16_res), 8). Everything else,
    and the styles of every layer, in float32. Checked on the dtypes of each
    layer's output under each policy (64 px, num_fp16_res 2), traced
    symbolically: nothing is computed."""
    from keras.src.backend import compute_output_spec

    for precision, reduced in (("float32", "float32"), ("mixed_bfloat16", "bfloat16"),
                               ("mixed_float16", "float16")):
        G = Generator(z_dim=8, w_dim=8, img_resolution=64, channel_base=256, channel_max=8,
                      num_layers=4, margin_size=2, num_fp16_res=2, dtype=precision)
        ws = keras.KerasTensor((2, G.num_ws, 8), dtype="float32")
        images, activations = compute_output_spec(
            lambda w: G.synthesis(w, return_activations=True), ws)
        assert images.dtype == activations["input"].dtype == "float32"
        rates = {s.name: s.out_sampling_rate for s in G.synthesis.spec.layers}
        expected = {name: reduced if rate * 2**2 > 64 else "float32"
                    for name, rate in rates.items()}
        assert len(set(expected.values())) == (1 if precision == "float32" else 2)
        assert {name: x.dtype for name, x in activations.items() if name != "input"} == expected
        for layer in G.synthesis.synthesis_layers:
            assert layer.affine.compute_dtype == "float32", layer.name  # styles in float32
        assert G.mapping.compute_dtype == "float32"

        D = Discriminator(img_resolution=64, channel_base=256, channel_max=8, c_dim=3,
                          mbstd_group_size=2, num_fp16_res=2, dtype=precision)

        def blocks(x):
            outputs = []
            for block in D.blocks:
                x = block(x)
                outputs.append(x)
            return outputs

        outputs = compute_output_spec(blocks, keras.KerasTensor((2, 64, 64, 3)))
        # min(2^(6 + 1 - 2), 8) = 32: b64 and b32 reduced, b16 and b8 not.
        assert [x.dtype for x in outputs] == [reduced, reduced, "float32", "float32"]
        assert D.epilogue.compute_dtype == D.mapping.compute_dtype == "float32"
        logits = compute_output_spec(D, keras.KerasTensor((2, 64, 64, 3)),
                                     keras.KerasTensor((2, 3)))
        assert logits.dtype == "float32"


def test_bench_builds_the_networks_as_training():
    G, D = build_models(BenchConfig(res=16, cbase=128, cmax=8, zdim=8, wdim=8, batch=2,
                                    mode="train", precision="mixed_float16"))
    assert G.dtype_policy.name == D.dtype_policy.name == "mixed_float16"
    gan = AliasFreeGAN(G, D)
    gan.compile()
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
