"""The named presets vs the reference networks (../shared/golden/preset_params.json).

For stylegan3-t and stylegan3-r at 256, 512 and 1024 (z = w = 512, c_dim = 0;
D: channel base 32768, channel max 512, minibatch-std group 4): G's and D's
parameter counts, the synthesis layer names and num_ws, for the networks
users get: `generator_from_preset` / `discriminator_from_preset`
(models/presets.py) and the training run's `build_networks` (`afgan-train
--cfg`, training/run.py).

Parameters are counted as the reference counts them: trainable weights only.
The reference's buffers (Fourier `freqs`, `phases` and `transform`,
`magnitude_ema`, `w_avg`, the low-pass filters) are not parameters.

The networks are built shape-only (`StatelessScope(initialize_variables=False)`):
every variable is created with its shape and dtype, but its initializer never
runs. Initializing a 1024 px G and D took ~6 s per network on JAX; shape-only
builds take ~0.03 s. One case is also built for real, so shape-only building
cannot hide a variable created differently.
"""

import contextlib
import json

import keras
import numpy as np
import pytest
from keras.src.backend.common import global_state

from keras_afgan.models.presets import discriminator_from_preset
from keras_afgan.models.presets import generator_from_preset
from keras_afgan.training.run import build_networks
from keras_afgan.training.run import resolve_config
from tests.conftest import GOLDEN_DIR

PRESETS_FILE = GOLDEN_DIR / "preset_params.json"
REFERENCE = json.loads(PRESETS_FILE.read_text())["stylegan3"] if PRESETS_FILE.exists() else {}
KEYS = sorted(REFERENCE)  # "stylegan3-t/256", ...

# The reference's buffers, by the end of our variable names (filters are constants).
BUFFERS = ("freqs", "phases", "transform", "magnitude_ema", "w_avg", "filter")


def test_reference_file_has_the_cases():
    # Guard against testing nothing: the golden file lists all six networks.
    assert KEYS == sorted(f"stylegan3-{k}/{r}" for k in "tr" for r in (256, 512, 1024))


@contextlib.contextmanager
def shapes_only():
    """Variables created inside get their shapes but no values.

    Keras keeps such variables in a global list and initializes them all at the
    next stateless scope that does; the list is restored on exit so that they
    are never initialized (a 1024 px G + D is ~1 GB).
    """
    pending = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def _split(key):
    cfg, resolution = key.split("/")
    return cfg, int(resolution)


def _from_presets(key):
    cfg, resolution = _split(key)
    return generator_from_preset(cfg, resolution), discriminator_from_preset(cfg, resolution)


def _from_training(key, tmp_path):
    cfg, resolution = _split(key)
    config = resolve_config(outdir=str(tmp_path), cfg=cfg, resolution=resolution)
    return build_networks(config, c_dim=0, resolution=resolution)


def _num_params(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def _check_against_reference(key, G, D):
    ref = REFERENCE[key]
    # The configuration the reference's numbers are for.
    assert (G.z_dim, G.w_dim, G.c_dim, D.c_dim) == (512, 512, 0, 0)
    assert (D.channel_base, D.channel_max, D.mbstd_group_size) == (32768, 512, 4)
    assert G.num_ws == ref["num_ws"]
    assert [layer.name for layer in G.synthesis.synthesis_layers] == ref["layers"]
    for net in (G, D):
        buffers = [w.path for w in net.trainable_weights if w.path.endswith(BUFFERS)]
        assert not buffers, f"{key}: buffers counted as parameters: {buffers}"
    g_params, d_params = _num_params(G.trainable_weights), _num_params(D.trainable_weights)
    assert (g_params, d_params) == (ref["G_params"], ref["D_params"]), (
        f"{key}: G {g_params} (reference {ref['G_params']}, "
        f"{g_params - ref['G_params']:+d}), D {d_params} (reference {ref['D_params']}, "
        f"{d_params - ref['D_params']:+d})")


@pytest.mark.parametrize("key", KEYS)
def test_presets_match_reference(key):
    with shapes_only():
        G, D = _from_presets(key)
    _check_against_reference(key, G, D)


@pytest.mark.parametrize("key", KEYS)
def test_training_networks_match_reference(key, tmp_path):
    with shapes_only():
        G, D = _from_training(key, tmp_path)
    _check_against_reference(key, G, D)


def test_buffers_are_not_parameters():
    # The reference's buffers exist in G, as non-trainable variables.
    with shapes_only():
        G, _ = _from_presets("stylegan3-t/256")
    names = [w.path.rsplit("/", 1)[-1] for w in G.non_trainable_weights]
    assert sorted(set(names)) == ["freqs", "magnitude_ema", "phases", "transform", "w_avg"]
    assert names.count("magnitude_ema") == len(G.synthesis.synthesis_layers)


def test_real_build_matches_reference():
    """One preset with initialized weights (the cheapest on JAX: R's 1x1 convs)."""
    key = "stylegan3-r/1024"
    G, D = _from_presets(key)
    _check_against_reference(key, G, D)
    assert np.isfinite(keras.ops.convert_to_numpy(G.synthesis.synthesis_layers[-1].kernel)).all()


STYLEGAN2 = json.loads(PRESETS_FILE.read_text())["stylegan2"] if PRESETS_FILE.exists() else {}


def _stylegan2_settings(key):
    # "stylegan2/1024" or "stylegan2/256/cbase16384"
    _, resolution, *rest = key.split("/")
    cbase = int(rest[0][len("cbase"):]) if rest else 32768
    return int(resolution), cbase


def test_stylegan2_reference_file_has_the_cases():
    assert sorted(STYLEGAN2) == ["stylegan2/1024", "stylegan2/256/cbase16384"]


@pytest.mark.parametrize("key", sorted(STYLEGAN2))
@pytest.mark.parametrize("source", ["preset", "training"])
def test_stylegan2_matches_reference(key, source, tmp_path):
    """`stylegan2` (config A) at 1024 and at 256 with channel base 16384: G's
    parameter count (trainable weights; the `noise_const` buffers and `w_avg`
    excluded), num_ws and the mapping depth."""
    from keras_afgan.models import StyleGAN2Generator

    ref = STYLEGAN2[key]
    resolution, cbase = _stylegan2_settings(key)
    with shapes_only():
        if source == "preset":
            G = generator_from_preset("stylegan2", resolution, channel_base=cbase)
        else:
            config = resolve_config(outdir=str(tmp_path), cfg="stylegan2", resolution=resolution,
                                    cbase=cbase)
            G, _ = build_networks(config, c_dim=0, resolution=resolution)
    assert isinstance(G, StyleGAN2Generator)
    assert (G.z_dim, G.w_dim, G.c_dim) == (512, 512, 0)
    assert G.num_ws == ref["num_ws"]
    assert G.mapping_layers == ref["mapping_layers"]
    buffers = [w.path for w in G.trainable_weights if w.path.endswith(("noise_const", "w_avg"))]
    assert not buffers, f"buffers counted as parameters: {buffers}"
    assert _num_params(G.trainable_weights) == ref["G_params"]
