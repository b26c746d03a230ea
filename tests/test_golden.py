"""Golden parity with the reference implementation (../shared/golden).

Every case found in the golden folder is checked: designed filters, mapping
outputs (three truncation settings), every synthesis layer's activations,
images (with the case's user transform), and discriminator logits on real,
generated and blurred images. Tolerances are ~10x the largest error measured
on the three backends (CPU, float32), tighter than the golden README's.
"""

import keras
import numpy as np
import pytest

from keras_afgan.models.sampling import inference_scope
from keras_afgan.ops import blur_images
from tests.conftest import GOLDEN_CASES
from tests.testing import assert_close
from tests.testing import to_numpy


@pytest.fixture
def models(case):
    return case.generator(), case.discriminator()


def test_layer_schedule_matches(case, models):
    G, _ = models
    spec = G.synthesis.spec
    meta_input = case.meta["input"]
    assert spec.input.channels == meta_input["channels"]
    assert spec.input.size == meta_input["size"]
    assert spec.input.sampling_rate == pytest.approx(meta_input["sampling_rate"])
    assert spec.input.bandwidth == pytest.approx(meta_input["bandwidth"])
    assert G.num_ws == case.meta["num_ws"]
    assert len(spec.layers) == len(case.meta["layers"])
    for layer, ref in zip(G.synthesis.synthesis_layers, case.meta["layers"]):
        assert layer.name == ref["name"]
        assert list(layer.spec.padding) == ref["padding"], layer.name
        assert (layer.spec.up_factor, layer.spec.down_factor) == (
            ref["up_factor"], ref["down_factor"])
        assert layer.spec.down_radial == ref["down_radial"], layer.name
        assert layer.spec.out_sampling_rate == pytest.approx(ref["out_sampling_rate"])
        assert layer.spec.out_cutoff == pytest.approx(ref["out_cutoff"])
        assert layer.spec.out_half_width == pytest.approx(ref["out_half_width"])


def test_parameter_counts(case, models):
    G, D = models
    assert sum(int(np.prod(w.shape)) for w in G.trainable_weights) == case.meta["G_params"]
    assert sum(int(np.prod(w.shape)) for w in D.trainable_weights) == case.meta["D_params"]


def test_filters(case, models):
    G, _ = models
    for layer in G.synthesis.synthesis_layers:
        for kind in ("up_filter", "down_filter"):
            key = f"out/filter/{layer.name}/{kind}"
            ours = getattr(layer, kind)
            if key not in case.arrays:
                assert ours is None, f"{key}: the reference uses no filter here"
                continue
            # Measured: bit-identical; 1e-7 allows a float32 rounding step.
            assert_close(ours, case.arrays[key], atol=1e-7, what=key)


@pytest.mark.parametrize("setting", ["case", "psi1", "cutoff"])
def test_mapping(case, models, setting):
    G, _ = models
    z, c = case.arrays["in/z"], case.arrays["in/c"]
    if setting == "case":
        ws, key = G.mapping(z, c, truncation_psi=case.meta["truncation_psi"]), "out/ws"
    elif setting == "psi1":
        ws, key = G.mapping(z, c), "out/ws_psi1"
    else:
        cut = case.meta["ws_cut"]
        ws = G.mapping(z, c, truncation_psi=cut["truncation_psi"],
                       truncation_cutoff=cut["truncation_cutoff"])
        key = "out/ws_cut"
    assert_close(ws, case.arrays[key], atol=1e-5, what=key)  # measured <= 1.4e-6


def test_synthesis_activations_and_images(case, models):
    G, _ = models
    img, activations = G.synthesis(case.arrays["out/ws"], return_activations=True)
    expected_names = {k[len("out/act/"):] for k in case.arrays if k.startswith("out/act/")}
    assert set(activations) == expected_names
    for name, act in activations.items():
        # Measured <= 5e-6.
        assert_close(to_numpy(act)[:1], case.nhwc(f"out/act/{name}"), atol=5e-5, what=name)
    assert_close(img, case.nhwc("out/img"), atol=1e-5, what="images")  # measured <= 5.1e-7


def test_generator_end_to_end(case, models):
    """In `inference_scope`: on torch that is the CPU inference path of the filtered
    leaky ReLU (`ops/torch_kernels.py`); the activations test above runs the other."""
    G, _ = models
    with inference_scope():
        img = G(case.arrays["in/z"], case.arrays["in/c"],
                truncation_psi=case.meta["truncation_psi"])
    assert_close(img, case.nhwc("out/img"), atol=2e-5, what="G(z, c)")  # measured <= 1.1e-6


class SynthesisModel(keras.Model):
    """A model around G's synthesis, for `predict` (ws in, images out)."""

    def __init__(self, synthesis):
        super().__init__()
        self.synthesis = synthesis

    def call(self, ws, training=None):
        return self.synthesis(ws, training=training)


@pytest.mark.parametrize("case", [c for c in GOLDEN_CASES if c != "t32"], indirect=True)
def test_synthesis_predict(case, models):
    """Keras's `predict`: compiled on TensorFlow and JAX (the polyphase resampling
    under XLA: `predict` passes training=False), no gradients on torch (its CPU
    inference path). t16 and r32c (T and R layers); t32 repeats t16's layer kinds
    and would add ~20 s of XLA compilation on TensorFlow."""
    G, _ = models
    model = SynthesisModel(G.synthesis)
    # XLA on TensorFlow and JAX (Keras would not pick it for TF on a CPU by
    # itself); torch runs eagerly, as afgan-bench does.
    model.compile(jit_compile=keras.config.backend() != "torch")
    img = model.predict_on_batch(case.arrays["out/ws"])
    assert_close(img, case.nhwc("out/img"), atol=1e-5, what="predict")  # measured <= 6.9e-7


def _logits_close(actual, expected, what):
    # Measured: <= 2.1e-6 absolute on logits of magnitude <= 1.2 (float32
    # rounding of the last sums); this bound is ~10x that at every logit.
    assert_close(actual, expected, rtol=1e-5, atol=1e-5, what=what)


def test_discriminator_logits(case, models):
    _, D = models
    c = case.arrays["in/c"]
    _logits_close(D(case.nhwc("in/real"), c), case.arrays["out/d_real"], "d_real")
    _logits_close(D(case.nhwc("out/img"), c), case.arrays["out/d_fake"], "d_fake")


def test_discriminator_input_blur(case, models):
    _, D = models
    blurred = blur_images(case.nhwc("in/real"), 2.0)
    _logits_close(D(blurred, case.arrays["in/c"]), case.arrays["out/d_real_blur2"], "d_real_blur2")


def test_user_transform_is_used(case, models):
    """The stored user transform is loaded and drives the image (r32c rotates and translates)."""
    G, _ = models
    transform = case.arrays["G/synthesis.input.transform"]
    assert_close(G.synthesis.input.transform, transform, what="transform")
    a = 0.3
    other = np.array([[np.cos(a), np.sin(a), 0.1], [-np.sin(a), np.cos(a), 0.0], [0, 0, 1]],
                     dtype="float32") @ transform
    G.synthesis.input.transform.assign(other)
    moved = to_numpy(G.synthesis(case.arrays["out/ws"]))
    assert np.abs(moved - case.nhwc("out/img")).max() > 1e-2
    G.synthesis.input.transform.assign(transform)
    assert_close(G.synthesis(case.arrays["out/ws"]), case.nhwc("out/img"), atol=1e-5,
                 what="images after restoring the transform")
