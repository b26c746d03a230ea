"""The paper's ablation switches on the StyleGAN3 generator, each against an
independent computation of what it changes (the filter windows: see
tests/ops/test_filter_design.py and test_synthesis_network.py)."""

import numpy as np
import pytest

from keras_afgan.layers.schedule import synthesis_spec
from keras_afgan.models import Generator
from tests.testing import to_numpy

KWARGS = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=256, channel_max=8,
              num_layers=4, num_critical=1, seed=1)


def _ws(G, seed=0):
    return np.random.default_rng(seed).standard_normal((2, G.num_ws, 8)).astype("float32")


@pytest.mark.parametrize("resolution,num_layers", [(16, 4), (64, 8), (256, 14)])
def test_critical_sampling_schedule(resolution, num_layers):
    """f_c = s/2 and f_t = f_c * 2^0.3 in every layer; rates, sizes, channels and
    the input as in the default schedule; no radial filters."""
    kwargs = dict(channel_base=32768, channel_max=512, num_layers=num_layers,
                  use_radial_filters=True)
    base = synthesis_spec(resolution, **kwargs)
    crit = synthesis_spec(resolution, critical_sampling=True, **kwargs)
    assert crit.input == base.input
    for b, c in zip(base.layers, crit.layers):
        assert (c.out_sampling_rate, c.out_size, c.out_channels, c.name) == (
            b.out_sampling_rate, b.out_size, b.out_channels, b.name)
        assert c.out_cutoff == c.out_sampling_rate / 2
        np.testing.assert_allclose(c.out_half_width, c.out_cutoff * (2**0.3 - 1), rtol=1e-12)
        assert c.is_critically_sampled and not c.down_radial
    # The default schedule has non-critical layers; this one none.
    assert not all(b.is_critically_sampled for b in base.layers)


def _copy_shared_weights(target, source):
    """Give `target` the values of `source`'s variables of the same path."""
    by_path = {v.path: v for v in target.weights}
    for v in source.weights:
        if v.path in by_path:  # fixed_fourier has no input affine
            by_path[v.path].assign(v)


def test_noise_inputs():
    G = Generator(noise_inputs=True, name="g", **KWARGS)
    plain = Generator(name="g", **KWARGS)
    _copy_shared_weights(G, plain)
    layers = G.synthesis.synthesis_layers
    assert [layer.spec.noise for layer in layers] == [True] * (len(layers) - 1) + [False]
    for layer in layers[:-1]:
        size = layer.spec.in_size + layer.spec.conv_kernel - 1  # the conv output
        assert tuple(layer.noise_const.shape) == (size, size)
    # 1 strength per layer; the buffers are not parameters.
    count = lambda g: sum(int(np.prod(w.shape)) for w in g.trainable_weights)  # noqa: E731
    assert count(G) == count(plain) + len(layers) - 1
    ws = _ws(G)
    # The strengths start at 0: the images equal the plain generator's.
    np.testing.assert_allclose(to_numpy(G.synthesis(ws)), to_numpy(plain.synthesis(ws)),
                               atol=1e-6)
    for layer in layers[:-1]:
        layer.noise_strength.assign(0.5)
    const = [to_numpy(G.synthesis(ws, noise_mode="const")) for _ in range(2)]
    random = [to_numpy(G.synthesis(ws, noise_mode="random")) for _ in range(2)]
    none = to_numpy(G.synthesis(ws, noise_mode="none"))
    np.testing.assert_array_equal(const[0], const[1])
    assert np.abs(random[0] - random[1]).max() > 1e-3
    assert np.abs(const[0] - none).max() > 1e-3
    np.testing.assert_allclose(none, to_numpy(plain.synthesis(ws)), atol=1e-6)


def test_fixed_fourier_ignores_w0():
    G = Generator(fixed_fourier=True, name="g", **KWARGS)
    plain = Generator(name="g", **KWARGS)
    _copy_shared_weights(G, plain)
    assert G.synthesis.input.affine is None and not G.synthesis.spec.input.transformed
    count = lambda g: sum(int(np.prod(w.shape)) for w in g.trainable_weights)  # noqa: E731
    assert count(plain) - count(G) == 8 * 4 + 4  # the input's affine layer
    ws = _ws(G)
    moved = ws.copy()
    moved[:, 0] += 3.0
    np.testing.assert_array_equal(to_numpy(G.synthesis(ws)), to_numpy(G.synthesis(moved)))
    # The plain generator's w_0 drives the features (its affine starts at the
    # identity; give it weights so that w_0 matters).
    plain.synthesis.input.affine.kernel.assign(np.ones((8, 4), "float32"))
    assert np.abs(to_numpy(plain.synthesis(ws)) - to_numpy(plain.synthesis(moved))).max() > 1e-3


def test_switches_survive_config_and_training_settings(tmp_path):
    from keras_afgan.training.run import build_networks
    from keras_afgan.training.run import resolve_config

    config = resolve_config(outdir=str(tmp_path), preset="tiny", critical_sampling=True,
                            noise_inputs=True, fixed_fourier=True, filter_window="gaussian",
                            stopband_start=2**2.5)
    G, _ = build_networks(config, c_dim=0, resolution=32)
    s = G.synthesis
    assert (s.critical_sampling, s.noise_inputs, s.fixed_fourier, s.filter_window) == (
        True, True, True, "gaussian")
    assert s.first_stopband == 2**2.5
    clone = Generator.from_config(G.get_config())
    assert clone.synthesis.spec == s.spec
    with pytest.raises(ValueError, match="Expected noise_inputs=False for cfg='stylegan2'"):
        resolve_config(outdir=str(tmp_path), cfg="stylegan2", noise_inputs=True)
