"""Reference state-dict import and export (keras_afgan.convert)."""

import numpy as np
import pytest

import keras_afgan
from keras_afgan.convert import discriminator_from_reference
from keras_afgan.convert import discriminator_to_reference
from keras_afgan.convert import generator_from_reference
from keras_afgan.convert import generator_to_reference
from tests.conftest import golden_case
from tests.testing import assert_close


def test_generator_round_trip_is_exact(case):
    state = case.state("G")
    back = generator_to_reference(case.generator())
    assert set(back) == set(state)
    for name, value in state.items():
        atol = 1e-7 if name.endswith("_filter") else 0.0  # filters measured bit-identical
        assert_close(back[name], value, atol=atol, what=name)


def test_discriminator_round_trip_is_exact(case):
    state = case.state("D")
    back = discriminator_to_reference(case.discriminator())
    assert set(back) == set(state)
    for name, value in state.items():
        atol = 1e-7 if name.endswith("resample_filter") else 0.0
        assert_close(back[name], value, atol=atol, what=name)


@pytest.mark.parametrize("config", ["t", "r"])
def test_random_generator_survives_export_and_import(config):
    kwargs = dict(z_dim=12, c_dim=3, w_dim=10, img_resolution=32, channel_base=512,
                  channel_max=24, num_layers=6, num_critical=1, margin_size=4)
    if config == "r":
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    G = keras_afgan.Generator(seed=3, **kwargs)
    G.synthesis.input.transform.assign(np.array([[0.8, 0.6, 0.1], [-0.6, 0.8, -0.2], [0, 0, 1]],
                                                dtype="float32"))
    state = generator_to_reference(G)
    ref_kwargs = dict(kwargs, mapping_kwargs={"num_layers": 2})
    G2 = generator_from_reference(state, **ref_kwargs)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 12)).astype("float32")
    c = np.eye(3, dtype="float32")[[0, 2]]
    assert_close(G2(z, c, truncation_psi=0.7), G(z, c, truncation_psi=0.7), atol=0,
                 what="images")


def test_random_discriminator_survives_export_and_import():
    kwargs = dict(c_dim=4, img_resolution=32, channel_base=256, channel_max=16,
                  conv_clamp=256)
    D = keras_afgan.Discriminator(mbstd_group_size=2, **kwargs)
    state = discriminator_to_reference(D)
    D2 = discriminator_from_reference(state, epilogue_kwargs={"mbstd_group_size": 2}, **kwargs)
    rng = np.random.default_rng(1)
    img = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    c = np.eye(4, dtype="float32")
    assert_close(D2(img, c), D(img, c), atol=0, what="logits")


def test_fc_weight_is_permuted_from_nchw():
    """b4.fc reads NCHW-flattened features in the reference: check the permutation."""
    D = keras_afgan.Discriminator(img_resolution=16, channel_base=64, channel_max=2,
                                  mbstd_group_size=2)
    state = discriminator_to_reference(D)
    ref_fc = state["b4.fc.weight"]  # [out, C*4*4], column index = c*16 + h*4 + w
    kernel = np.asarray(D.epilogue.fc.kernel)  # [4*4*C, out], row index = h*4*C + w*C + c
    channels = D.epilogue.in_channels
    for c_ in range(channels):
        for h in range(4):
            for w in range(4):
                np.testing.assert_array_equal(
                    kernel[h * 4 * channels + w * channels + c_], ref_fc[:, c_ * 16 + h * 4 + w])


def test_missing_and_unexpected_names_are_listed():
    case = golden_case("t16")
    state = case.state("G")
    del state["mapping.fc1.bias"]
    state["mapping.fc9.weight"] = np.zeros((3, 3), "float32")
    with pytest.raises(ValueError, match=r"mapping\.fc1\.bias.*mapping\.fc9\.weight"):
        generator_from_reference(state, **case.meta["G_kwargs"])
    d_state = case.state("D")
    d_state.pop("b4.out.weight")
    with pytest.raises(ValueError, match=r"Missing: \['b4\.out\.weight'\]"):
        discriminator_from_reference(d_state, **case.meta["D_kwargs"])


def test_settings_that_do_not_match_the_weights_are_refused():
    case = golden_case("t16")
    wrong = dict(case.meta["G_kwargs"], w_dim=16)
    with pytest.raises(ValueError, match=r"Expected 'mapping.fc0.weight' to have shape \(16, 32\)"):
        generator_from_reference(case.state("G"), **wrong)
    wrong_filter = dict(case.meta["G_kwargs"], use_radial_filters=True)
    with pytest.raises(ValueError, match="Filter 'synthesis.L0_36_32.down_filter'"):
        generator_from_reference(case.state("G"), **wrong_filter)
    with pytest.raises(ValueError, match="Unexpected generator arguments: \\['bogus'\\]"):
        generator_from_reference(case.state("G"), bogus=1, **case.meta["G_kwargs"])
    with pytest.raises(ValueError, match="architecture='resnet'"):
        discriminator_from_reference(case.state("D"), architecture="skip",
                                     **case.meta["D_kwargs"])


def test_a_long_mismatch_is_summarised():
    case = golden_case("t16")
    wrong = dict(case.meta["G_kwargs"], channel_max=16)  # renames every layer
    with pytest.raises(ValueError, match=r"Missing: \[.*\] and \d+ more"):
        generator_from_reference(case.state("G"), **wrong)
