"""Serialization: get_config round-trips, `.keras` files, and cross-backend loading.

Every public layer is rebuilt from its (JSON-encoded) config, given the
original's weights and must then compute the same output; every layer also
goes through a real `.keras` save/load inside `LayerHolder`. The Generator and
Discriminator round-trip `.keras` files, including their non-trainable state,
within one backend and across backends.
"""

import inspect
import json
import math
import textwrap

import keras
import numpy as np
import pytest

import keras_afgan
from keras_afgan import layers as afgan_layers
from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import preset_kwargs
from keras_afgan.layers.schedule import synthesis_spec
from tests.testing import assert_close
from tests.testing import other_backends
from tests.testing import run_python
from tests.testing import to_numpy

W_DIM = 8
# A non-identity user transform: rotate by 0.3 rad and translate by (0.1, -0.2).
TRANSFORM = np.array([
    [math.cos(0.3), -math.sin(0.3), 0.1],
    [math.sin(0.3), math.cos(0.3), -0.2],
    [0.0, 0.0, 1.0],
], np.float32)


@keras.saving.register_keras_serializable(package="keras_afgan_tests")
class LayerHolder(keras.Model):
    """A model around one layer, so that a layer goes through a `.keras` file.

    `call(inputs)` passes the list `inputs` positionally, plus `call_kwargs`
    (JSON-serialisable Python values) by keyword.
    """

    def __init__(self, layer, call_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.call_kwargs = dict(call_kwargs or {})

    def build(self, input_shape=None):
        # The held layer is built by its own first call, or, when loading, by
        # its own build config while it is deserialized.
        self.built = True

    def call(self, inputs):
        return self.layer(*inputs, **self.call_kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "layer": keras.saving.serialize_keras_object(self.layer),
            "call_kwargs": self.call_kwargs,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


def perturb_state(obj, seed=0):
    """Overwrite every variable of `obj` with seeded random values.

    Fresh layers have zero biases, unit `magnitude_ema`, zero `w_avg` and the
    identity transform, which a lost or mis-ordered variable would leave
    unnoticed. Random values make every variable count; `magnitude_ema` stays
    positive and `transform` becomes `TRANSFORM`.
    """
    rng = np.random.default_rng(seed)
    for v in obj.weights:
        shape = tuple(v.shape)
        if v.name == "magnitude_ema":
            value = rng.uniform(0.5, 2.0, size=shape)
        elif v.name == "transform":
            value = TRANSFORM
        else:
            value = 0.5 * rng.standard_normal(shape)
        v.assign(np.asarray(value, np.float32))


def normal(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def one_hot(labels, depth):
    return np.eye(depth, dtype=np.float32)[labels]


def synthesis_layer_from_spec(spec):
    """A `SynthesisLayer` built from its `LayerSpec`."""
    layer = afgan_layers.SynthesisLayer(W_DIM, spec, name=spec.name)
    x = normal(2, spec.in_size, spec.in_size, spec.in_channels, seed=spec.index)
    return layer, [x, normal(2, W_DIM, seed=100 + spec.index)], {}


def _synthesis_spec(**kwargs):
    return synthesis_spec(16, channel_base=512, channel_max=16, **kwargs)


def _synthesis_network():
    layer = afgan_layers.SynthesisNetwork(
        W_DIM, 16, channel_base=256, channel_max=8, num_layers=4, num_critical=1, seed=5,
        name="synthesis")
    return layer, [normal(2, layer.num_ws, W_DIM)], {}


# Each case returns (layer, inputs passed positionally, keyword arguments of call).
LAYER_CASES = {
    "dense": lambda: (
        afgan_layers.EqualizedDense(6, activation="lrelu", lr_multiplier=0.5,
                                    bias_init=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], weight_init=0.5),
        [normal(3, 5)], {}),
    "conv3x3": lambda: (
        afgan_layers.EqualizedConv2D(6, 3, activation="lrelu", conv_clamp=1.0),
        [normal(2, 8, 8, 4)], {}),
    "conv3x3_down2": lambda: (
        afgan_layers.EqualizedConv2D(6, 3, activation="lrelu", down=2),
        [normal(2, 8, 8, 4)], {}),
    "conv1x1_down2_no_bias": lambda: (
        afgan_layers.EqualizedConv2D(6, 1, use_bias=False, down=2),
        [normal(2, 8, 8, 4)], {}),
    "mapping_conditional_num_ws": lambda: (
        afgan_layers.MappingNetwork(z_dim=8, c_dim=3, w_dim=W_DIM, num_ws=5, w_avg_beta=0.9),
        [normal(2, 8), one_hot([0, 2], 3)],
        {"truncation_psi": 0.7, "truncation_cutoff": 3}),  # so w_avg matters
    "mapping_unconditional_no_num_ws": lambda: (
        afgan_layers.MappingNetwork(z_dim=8, c_dim=0, w_dim=W_DIM, num_ws=None, num_layers=3,
                                    lr_multiplier=0.1),
        [normal(2, 8)], {}),
    "mapping_unconditional_num_ws": lambda: (
        afgan_layers.MappingNetwork(z_dim=8, c_dim=0, w_dim=W_DIM, num_ws=4),
        [normal(2, 8)], {"truncation_psi": 0.5}),
    "synthesis_input": lambda: (
        afgan_layers.SynthesisInput(W_DIM, channels=16, size=36, sampling_rate=16, bandwidth=2,
                                    seed=3),
        [normal(2, W_DIM)], {}),
    "synthesis_layer": lambda: synthesis_layer_from_spec(_synthesis_spec().layers[0]),
    "synthesis_layer_critical": lambda: synthesis_layer_from_spec(_synthesis_spec().layers[13]),
    "synthesis_layer_torgb": lambda: synthesis_layer_from_spec(_synthesis_spec().layers[14]),
    "synthesis_layer_radial": lambda: synthesis_layer_from_spec(
        _synthesis_spec(conv_kernel=1, use_radial_filters=True).layers[0]),
    "synthesis_network": _synthesis_network,
    "discriminator_block_first": lambda: (
        afgan_layers.DiscriminatorBlock(16, 0, 8, 16, img_channels=3, conv_clamp=256),
        [normal(2, 16, 16, 3)], {}),
    "discriminator_block": lambda: (
        afgan_layers.DiscriminatorBlock(8, 8, 8, 16),
        [normal(2, 8, 8, 8)], {}),
    "minibatch_stddev": lambda: (
        afgan_layers.MinibatchStdDev(group_size=2, num_channels=2),
        [normal(4, 4, 4, 6)], {}),
    "epilogue_conditional": lambda: (
        afgan_layers.DiscriminatorEpilogue(16, cmap_dim=8, mbstd_group_size=2, conv_clamp=256),
        [normal(4, 4, 4, 16), normal(4, 8, seed=2)], {}),
    "epilogue_no_mbstd": lambda: (
        afgan_layers.DiscriminatorEpilogue(16, mbstd_num_channels=0),
        [normal(2, 4, 4, 16)], {}),
    # StyleGAN2 (noise from the stored buffers, so that outputs repeat).
    "style_conv": lambda: (
        afgan_layers.StyleConv(W_DIM, 4, 6, resolution=8, conv_clamp=256, seed=1),
        [normal(2, 8, 8, 4), normal(2, W_DIM, seed=2)], {"noise_mode": "const"}),
    "style_conv_up": lambda: (
        afgan_layers.StyleConv(W_DIM, 4, 6, resolution=16, up=2, seed=1),
        [normal(2, 8, 8, 4), normal(2, W_DIM, seed=2)], {"noise_mode": "const"}),
    "torgb": lambda: (
        afgan_layers.ToRGB(W_DIM, 6, 3, conv_clamp=256),
        [normal(2, 8, 8, 6), normal(2, W_DIM, seed=2)], {}),
    "stylegan2_block_skip": lambda: (
        afgan_layers.StyleGAN2Block(W_DIM, 4, 6, resolution=16, img_channels=3, is_last=False,
                                    seed=2),
        [normal(2, 8, 8, 4), normal(2, 8, 8, 3, seed=3), normal(2, 3, W_DIM, seed=4)],
        {"noise_mode": "const"}),
    "stylegan2_block_resnet_last": lambda: (
        afgan_layers.StyleGAN2Block(W_DIM, 4, 6, resolution=16, img_channels=3, is_last=True,
                                    architecture="resnet", seed=2),
        [normal(2, 8, 8, 4), normal(2, 8, 8, 3, seed=3), normal(2, 3, W_DIM, seed=4)],
        {"noise_mode": "const"}),
    "stylegan2_synthesis": lambda: (
        afgan_layers.StyleGAN2SynthesisNetwork(W_DIM, 16, channel_base=64, channel_max=8,
                                               architecture="resnet", seed=3, name="synthesis"),
        [normal(2, 6, W_DIM)], {"noise_mode": "const"}),
    "augment_pipe": lambda: (
        AugmentPipe(**preset_kwargs("bgcf"), xint_max=0.2, imgfilter_bands=[1, 0, 1, 1], p=0.3,
                    seed=4),
        [normal(2, 16, 16, 3)], {"debug_percentile": 0.35}),
}


def test_every_public_layer_has_a_case():
    public = {name for name, obj in vars(afgan_layers).items()
              if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)}
    covered = {type(make()[0]).__name__ for make in LAYER_CASES.values()}
    assert public <= covered, f"layers without a serialization case: {public - covered}"


def outputs_numpy(outputs):
    """A layer's output(s) as a list of numpy arrays (a StyleGAN2 block returns two)."""
    if isinstance(outputs, (tuple, list)):
        return [to_numpy(x) for x in outputs]
    return [to_numpy(outputs)]


def assert_outputs_close(actual, expected, what):
    actual = outputs_numpy(actual)
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, atol=1e-6, what=f"{what} output {i}")


def make_case(name):
    layer, inputs, call_kwargs = LAYER_CASES[name]()
    inputs = [keras.ops.convert_to_tensor(x) for x in inputs]
    layer(*inputs, **call_kwargs)  # build
    perturb_state(layer)
    return layer, inputs, call_kwargs


def assert_same_weights(actual, expected):
    actual_names = [v.name for v in actual.weights]
    assert actual_names == [v.name for v in expected.weights]
    for name, a, e in zip(actual_names, actual.weights, expected.weights):
        assert_close(a, to_numpy(e), what=name)


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_config_round_trip(name):
    layer, inputs, call_kwargs = make_case(name)
    expected = outputs_numpy(layer(*inputs, **call_kwargs))
    config = layer.get_config()
    init_args = [
        p.name for p in inspect.signature(type(layer).__init__).parameters.values()
        if p.name != "self" and p.kind is not p.VAR_KEYWORD
    ]
    missing = [arg for arg in init_args if arg not in config]
    assert not missing, f"get_config lacks constructor arguments {missing}"

    text = json.dumps(config)  # the config must be JSON-serialisable
    clone = type(layer).from_config(json.loads(text))
    clone(*inputs, **call_kwargs)  # build
    clone.set_weights(layer.get_weights())

    assert json.loads(json.dumps(clone.get_config())) == json.loads(text)
    assert_same_weights(clone, layer)
    assert_outputs_close(clone(*inputs, **call_kwargs), expected, name)


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_keras_file_round_trip(name, tmp_path):
    layer, inputs, call_kwargs = make_case(name)
    holder = LayerHolder(layer, call_kwargs=call_kwargs)
    expected = outputs_numpy(holder(inputs))
    path = tmp_path / f"{name}.keras"
    holder.save(path)

    loaded = keras.saving.load_model(path)
    assert type(loaded.layer) is type(layer)
    assert loaded.layer.get_config() == layer.get_config()
    assert_same_weights(loaded.layer, layer)
    assert_outputs_close(loaded(inputs), expected, name)


def small_generator():
    return keras_afgan.Generator(z_dim=8, w_dim=8, c_dim=3, img_resolution=16,
                                 channel_base=256, channel_max=8)


def small_discriminator():
    return keras_afgan.Discriminator(c_dim=3, img_resolution=16, channel_base=256,
                                     channel_max=16, mbstd_group_size=2)


def generator_state(G):
    """The non-trainable state: w_avg, user transform, Fourier features, EMAs."""
    state = {
        "w_avg": G.mapping.w_avg,
        "transform": G.synthesis.input.transform,
        "freqs": G.synthesis.input.freqs,
        "phases": G.synthesis.input.phases,
    }
    for layer in G.synthesis.synthesis_layers:
        state[f"{layer.name}/magnitude_ema"] = layer.magnitude_ema
    return {k: to_numpy(v) for k, v in state.items()}


def test_generator_keras_file_round_trip(tmp_path):
    G = small_generator()
    perturb_state(G)
    G.synthesis.input.transform.assign(TRANSFORM)
    z, c = normal(2, 8), one_hot([0, 2], 3)
    # Truncation makes the output depend on w_avg.
    expected = to_numpy(G(z, c, truncation_psi=0.7, truncation_cutoff=4))
    state = generator_state(G)
    assert not np.allclose(state["transform"], np.eye(3))
    path = tmp_path / "generator.keras"
    G.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_afgan.Generator)
    assert loaded.get_config() == G.get_config()
    assert_same_weights(loaded, G)
    loaded_state = generator_state(loaded)
    for key, value in state.items():
        assert_close(loaded_state[key], value, what=key)
    assert_close(loaded(z, c, truncation_psi=0.7, truncation_cutoff=4), expected, atol=1e-6)


def test_stylegan2_generator_keras_file_round_trip(tmp_path):
    G = keras_afgan.StyleGAN2Generator(z_dim=8, w_dim=8, c_dim=3, img_resolution=16,
                                       channel_base=64, channel_max=8, mapping_layers=3, seed=2)
    perturb_state(G)
    z, c = normal(2, 8), one_hot([0, 2], 3)
    expected = to_numpy(G(z, c, truncation_psi=0.7, noise_mode="const"))
    path = tmp_path / "stylegan2.keras"
    G.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_afgan.StyleGAN2Generator)
    assert loaded.get_config() == G.get_config()
    assert_same_weights(loaded, G)
    assert_close(loaded(z, c, truncation_psi=0.7, noise_mode="const"), expected, atol=1e-6)


def test_discriminator_keras_file_round_trip(tmp_path):
    D = small_discriminator()
    perturb_state(D)
    img, c = normal(4, 16, 16, 3), one_hot([0, 2, 1, 1], 3)
    expected = to_numpy(D(img, c))
    path = tmp_path / "discriminator.keras"
    D.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_afgan.Discriminator)
    assert loaded.get_config() == D.get_config()
    assert_same_weights(loaded, D)
    assert_close(loaded(img, c), expected, atol=1e-6)


LOAD_AND_RUN = textwrap.dedent("""
    import keras
    import numpy as np

    import keras_afgan  # registers the classes

    data = dict(np.load({inputs!r}))
    G = keras.saving.load_model({generator!r})
    D = keras.saving.load_model({discriminator!r})
    np.savez(
        {outputs!r},
        img=keras.ops.convert_to_numpy(
            G(data["z"], data["c"], truncation_psi=0.7, truncation_cutoff=4)),
        logits=keras.ops.convert_to_numpy(D(data["img"], data["c"])),
    )
""")


@pytest.mark.slow
def test_models_load_under_other_backends(tmp_path):
    G, D = small_generator(), small_discriminator()
    perturb_state(G, seed=1)
    perturb_state(D, seed=2)
    inputs = {"z": normal(2, 8), "c": one_hot([0, 2], 3), "img": normal(2, 16, 16, 3)}
    expected = {
        "img": to_numpy(G(inputs["z"], inputs["c"], truncation_psi=0.7, truncation_cutoff=4)),
        "logits": to_numpy(D(inputs["img"], inputs["c"])),
    }
    files = {name: str(tmp_path / f"{name}.keras") for name in ("generator", "discriminator")}
    G.save(files["generator"])
    D.save(files["discriminator"])
    np.savez(tmp_path / "inputs.npz", **inputs)

    for backend in other_backends():
        outputs = str(tmp_path / f"outputs_{backend}.npz")
        run_python(LOAD_AND_RUN.format(inputs=str(tmp_path / "inputs.npz"), outputs=outputs,
                                       **files), backend)
        with np.load(outputs) as actual:
            for key, value in expected.items():
                assert_close(actual[key], value, atol=1e-5, what=f"{key} under {backend}")
