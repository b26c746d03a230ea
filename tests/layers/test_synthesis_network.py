"""`SynthesisNetwork.input` (the reference's `G.synthesis.input`, the Fourier
input layer) shadows `keras.layers.Layer.input`; Keras must not trip over it.

What Keras does with a layer's `input`: `summary`, functional wrapping,
`.keras` files. (`keras.utils.plot_model(show_shapes=True)` reads
`layer.input.shape`, catches the AttributeError and shows no input shape
for this one layer; see BUILD_NOTES, known limits.)
"""

import keras
import numpy as np
import pytest

import keras_afgan
from keras_afgan.layers import SynthesisInput
from tests.testing import assert_close
from tests.testing import to_numpy


def _generator():
    return keras_afgan.generator_from_preset(
        "stylegan3-t", 16, z_dim=8, w_dim=8, channel_base=256, channel_max=8, num_layers=4,
        margin_size=2)


def _ws(G):
    z = np.random.default_rng(0).standard_normal((2, G.z_dim)).astype(np.float32)
    return G.mapping(z, None)


def test_input_is_the_fourier_input_layer_with_the_reference_transform():
    G = _generator()
    G(np.zeros((1, G.z_dim), np.float32))
    assert isinstance(G.synthesis.input, SynthesisInput)
    assert G.synthesis.input is G.synthesis.fourier_input
    ws = _ws(G)
    still = to_numpy(G.synthesis(ws))
    # The reference's idiom: write a 3x3 matrix into G.synthesis.input.transform.
    shift = np.array([[1, 0, 0.25], [0, 1, 0], [0, 0, 1]], np.float32)
    G.synthesis.input.transform.assign(np.linalg.inv(shift))
    # A quarter-image shift changes the image by a good fraction of its range
    # (measured 0.09 on images of magnitude 0.1 at an unseeded initialisation).
    assert np.abs(to_numpy(G.synthesis(ws)) - still).max() > 0.1 * np.abs(still).max()


def test_summary_lists_the_networks():
    G = _generator()
    G(np.zeros((1, G.z_dim), np.float32))
    lines = []
    G.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "synthesis (SynthesisNetwork)" in text and "mapping (MappingNetwork)" in text
    trainable = sum(int(np.prod(w.shape)) for w in G.trainable_weights)
    assert f"Trainable params: {trainable:,}" in text


def test_functional_wrapping_and_keras_file_round_trip(tmp_path):
    G = _generator()
    ws = _ws(G)
    expected = to_numpy(G.synthesis(ws))
    ws_in = keras.Input((G.num_ws, G.w_dim))
    model = keras.Model(ws_in, G.synthesis(ws_in))
    lines = []
    model.summary(print_fn=lambda line, **kwargs: lines.append(line))
    assert "(None, 16, 16, 3)" in "\n".join(lines)
    assert model.input is ws_in  # the model's own input is Keras's
    assert_close(model(ws), expected, atol=1e-6, what="wrapped synthesis")

    model.save(tmp_path / "wrapped.keras")
    loaded = keras.saving.load_model(tmp_path / "wrapped.keras")
    assert isinstance(loaded.get_layer("synthesis").input, SynthesisInput)
    assert_close(loaded(ws), expected, atol=1e-6, what="loaded wrapped synthesis")

    G.save(tmp_path / "G.keras")
    G2 = keras.saving.load_model(tmp_path / "G.keras")
    assert_close(G2.synthesis(ws), expected, atol=1e-6, what="loaded generator")
    assert_close(G2.synthesis.input.transform, G.synthesis.input.transform, what="transform")


@pytest.mark.parametrize("window", ["lanczos", "gaussian"])
def test_filter_window_reaches_every_layer(window):
    """The switch acts in the schedule: every layer's filters are the design of
    its spec's numbers with that window, and the images change."""
    from keras_afgan.models import Generator
    from keras_afgan.ops.filter_design import design_lowpass_filter

    kwargs = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=8,
                  num_layers=4, num_critical=1, seed=1)
    keras.utils.set_random_seed(0)
    G = Generator(filter_window=window, **kwargs)
    keras.utils.set_random_seed(0)
    plain = Generator(**kwargs)
    for layer in G.synthesis.synthesis_layers:
        s = layer.spec
        assert s.filter_window == window
        if s.up_taps > 1:
            np.testing.assert_array_equal(layer.up_filter, design_lowpass_filter(
                s.up_taps, s.in_cutoff, 2 * s.in_half_width, s.tmp_sampling_rate, window=window))
        if s.down_taps > 1:
            np.testing.assert_array_equal(layer.down_filter, design_lowpass_filter(
                s.down_taps, s.out_cutoff, 2 * s.out_half_width, s.tmp_sampling_rate,
                radial=s.down_radial, window=window))
    ws = np.random.default_rng(0).standard_normal((2, G.num_ws, 8)).astype("float32")
    a, b = keras.ops.convert_to_numpy(G.synthesis(ws)), keras.ops.convert_to_numpy(
        plain.synthesis(ws))
    assert np.isfinite(a).all() and np.abs(a - b).max() > 1e-4
    clone = Generator.from_config(G.get_config())
    assert clone.synthesis.spec == G.synthesis.spec
