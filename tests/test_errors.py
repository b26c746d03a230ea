"""Bad input raises a ValueError that names the value and what was expected."""

import numpy as np
import pytest

import keras_afgan


@pytest.fixture(scope="module")
def small_models():
    G = keras_afgan.Generator(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, channel_base=128,
                              channel_max=8)
    D = keras_afgan.Discriminator(c_dim=2, img_resolution=16, channel_base=128, channel_max=8,
                                  mbstd_group_size=2)
    return G, D


def _z(n=2, width=8):
    return np.zeros((n, width), "float32")


def _c(n=2, width=2):
    return np.eye(width, dtype="float32")[np.arange(n) % max(width, 1)] if width else np.zeros((n, 0), "float32")


@pytest.mark.parametrize("resolution", [48, 8, 100, 0, 16.0])
def test_resolution_must_be_a_power_of_two(resolution):
    with pytest.raises(ValueError, match=rf"power of 2 >= 16. Received: {resolution!r}"):
        keras_afgan.Generator(img_resolution=resolution, channel_base=128, channel_max=8)
    with pytest.raises(ValueError, match=rf"power of 2 >= 16. Received: {resolution!r}"):
        keras_afgan.Discriminator(img_resolution=resolution)


def test_wrong_z_width(small_models):
    G, _ = small_models
    with pytest.raises(ValueError, match=r"Expected z of shape \[N, 8\]. Received: shape=\(2, 5\)"):
        G(_z(width=5), _c())


def test_wrong_c_width(small_models):
    G, D = small_models
    with pytest.raises(ValueError, match=r"Expected c of shape \[N, 2\]. Received: shape=\(2, 3\)"):
        G(_z(), _c(width=3))
    with pytest.raises(ValueError, match=r"Expected c of shape \[N, 2\]. Received: shape=\(2, 3\)"):
        D(np.zeros((2, 16, 16, 3), "float32"), _c(width=3))


def test_missing_labels_for_a_conditional_model(small_models):
    G, D = small_models
    with pytest.raises(ValueError, match=r"conditional: expected labels c of shape \[N, 2\]"):
        G(_z())
    with pytest.raises(ValueError, match=r"conditional: expected labels c of shape \[N, 2\]"):
        D(np.zeros((2, 16, 16, 3), "float32"))


def test_labels_for_an_unconditional_model():
    G = keras_afgan.Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=128,
                              channel_max=8)
    assert tuple(G(_z(), _c(width=0)).shape) == (2, 16, 16, 3)  # zero-width c is fine
    with pytest.raises(ValueError, match=r"unconditional: expected c of shape \[N, 0\]"):
        G(_z(), _c(width=2))


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (2, 16, 16, 1), (2, 3, 16, 16), (16, 16, 3)])
def test_wrong_image_shape(small_models, shape):
    _, D = small_models
    with pytest.raises(ValueError, match=rf"Expected images of shape \[N, 16, 16, 3\] \(NHWC\). "
                                         rf"Received: shape={re_tuple(shape)}"):
        D(np.zeros(shape, "float32"), _c(n=shape[0]))


def re_tuple(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_wrong_ws_shape(small_models):
    G, _ = small_models
    with pytest.raises(ValueError, match=r"Expected ws of shape \[N, 16, 8\]. Received: shape=\(2, 15, 8\)"):
        G.synthesis(np.zeros((2, 15, 8), "float32"))


def test_batch_not_divisible_by_mbstd_group(small_models):
    _, D = small_models
    with pytest.raises(ValueError, match=r"divisible by the minibatch-stddev group size 2. "
                                         r"Received: batch size 3"):
        D(np.zeros((3, 16, 16, 3), "float32"), _c(n=3))


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"Unknown preset 'stylegan3-x'. Expected one of: "
                                         r"\['config-b', 'stylegan2', 'stylegan3-r', "
                                         r"'stylegan3-t'\]"):
        keras_afgan.generator_from_preset("stylegan3-x", 64)


@pytest.mark.parametrize("cutoff", [-1, 2.5])
def test_bad_truncation_cutoff(small_models, cutoff):
    G, _ = small_models
    with pytest.raises(ValueError, match=rf"truncation_cutoff.*Received: {cutoff}"):
        G(_z(), _c(), truncation_psi=0.5, truncation_cutoff=cutoff)


@pytest.mark.parametrize("kwargs, name", [({"z_dim": 0}, "z_dim"), ({"c_dim": -1}, "c_dim"),
                                          ({"conv_kernel": 2}, "conv_kernel"),
                                          ({"num_critical": 14}, "num_critical")])
def test_bad_generator_settings(kwargs, name):
    settings = dict(img_resolution=16, channel_base=128, channel_max=8)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=name):
        keras_afgan.Generator(**settings)


def test_an_empty_batch_gives_empty_results():
    """N = 0, as the first call of fresh models: G (called, with a psi,
    through predict), G.mapping and D answer empty arrays of the right shape
    (D used to divide by zero in its minibatch-std groups; Keras's predict
    fails on zero samples)."""
    G = keras_afgan.Generator(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, channel_base=128,
                              channel_max=8)
    D = keras_afgan.Discriminator(c_dim=2, img_resolution=16, channel_base=128, channel_max=8,
                                  mbstd_group_size=2)
    z, c = _z(0), _c(0)
    assert tuple(G(z, c).shape) == (0, 16, 16, 3)
    assert tuple(G(z, c, truncation_psi=0.5).shape) == (0, 16, 16, 3)
    assert G.predict((z, c), verbose=0).shape == (0, 16, 16, 3)
    assert tuple(G.mapping(z, c).shape) == (0, G.num_ws, 8)
    images = np.zeros((0, 16, 16, 3), "float32")
    assert tuple(D(images, c).shape) == (0, 1)
    assert D.predict((images, c), verbose=0).shape == (0, 1)
    assert tuple(G(_z(2), _c(2)).shape) == (2, 16, 16, 3)  # and nothing broke


def test_one_bad_row_spoils_only_itself(small_models):
    """A NaN z row and a NaN psi leave the batch's other images as they are alone."""
    G, _ = small_models
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    c = _c(4)
    psi = np.array([0.7, 0.7, np.nan, 0.7], "float32")
    z[1] = np.nan
    images = _numpy(G(z, c, truncation_psi=psi))
    for i in (0, 3):
        alone = _numpy(G(z[i:i + 1], c[i:i + 1], truncation_psi=0.7))
        np.testing.assert_allclose(images[i:i + 1], alone, rtol=0, atol=1e-5, err_msg=f"row {i}")
    assert np.isnan(images[1]).all() and np.isnan(images[2]).all()


def _numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))
