"""StyleGAN2 generator (config A) against the reference (shared/golden s32, s32r).

s32 is the `skip` architecture (ToRGB at every block), s32r `resnet` (1x1
upsampling skips, ToRGB at the last block). Checked on every backend: the
parameter count, the mapping (three truncation settings), each block's
features and images, the images with the stored noise and without noise,
style mixing, and the path-length regularisation (lengths, moving average,
loss and its gradient w.r.t. every weight). Tolerances ~10x the largest
error measured on the three backends; gradients as the golden README says.
"""

import json

import numpy as np
import pytest
from keras import ops

from keras_afgan.convert import generator_from_reference
from keras_afgan.convert import reference_variables
from keras_afgan.convert.reference import _stylegan2_entries
from keras_afgan.convert.reference import _to_reference
from keras_afgan.models import Discriminator
from keras_afgan.models import StyleGAN2Generator
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training import losses
from keras_afgan.training.steps import backend_module
from keras_afgan.training.gan import mix_styles
from tests.conftest import GOLDEN_DIR
from tests.testing import assert_close
from tests.testing import run_compiled
from tests.testing import to_numpy

CASES = ("s32", "s32r")
CLASS_NAME = "training.networks_stylegan2.Generator"


class Case:
    def __init__(self, name):
        self.name = name
        self.meta = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
        with np.load(GOLDEN_DIR / f"{name}.npz") as data:
            self.arrays = {k: data[k] for k in data.files}

    def state(self):
        return {k[2:]: v for k, v in self.arrays.items() if k.startswith("G/")}

    def nhwc(self, key):
        return self.arrays[key].transpose(0, 2, 3, 1)

    def generator(self):
        return generator_from_reference(self.state(), class_name=CLASS_NAME,
                                        **self.meta["G_kwargs"])


_CASES = {}


@pytest.fixture(params=CASES, scope="module")
def case(request):
    if request.param not in _CASES:
        _CASES[request.param] = Case(request.param)
    return _CASES[request.param]


@pytest.fixture(scope="module")
def G(case):
    return case.generator()


def test_structure(case, G):
    assert isinstance(G, StyleGAN2Generator)
    assert G.num_ws == case.meta["num_ws"]
    assert sum(int(np.prod(w.shape)) for w in G.trainable_weights) == case.meta["G_params"]
    assert [int(b.name[1:]) for b in G.synthesis.blocks] == case.meta["block_resolutions"]
    assert G.synthesis.architecture == case.meta["G_kwargs"]["architecture"]


@pytest.mark.parametrize("setting", ["case", "psi1", "cutoff"])
def test_mapping(case, G, setting):
    z, c = case.arrays["in/z"], case.arrays["in/c"]
    if setting == "case":
        ws, key = G.mapping(z, c, truncation_psi=case.meta["truncation_psi"]), "out/ws"
    elif setting == "psi1":
        ws, key = G.mapping(z, c), "out/ws_psi1"
    else:
        cut = case.meta["ws_cut"]
        ws, key = G.mapping(z, c, truncation_psi=cut["truncation_psi"],
                            truncation_cutoff=cut["truncation_cutoff"]), "out/ws_cut"
    assert_close(ws, case.arrays[key], atol=2e-5, what=key)  # measured <= 1.6e-6


@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_images(case, G, noise_mode):
    img = G.synthesis(case.arrays["out/ws"], noise_mode=noise_mode)
    # Measured <= 9.2e-6 on images of magnitude <= 6.
    assert_close(img, case.nhwc(f"out/img_{noise_mode}"), atol=1e-4, what=noise_mode)


def test_generator_end_to_end(case, G):
    img = G(case.arrays["in/z"], case.arrays["in/c"], truncation_psi=case.meta["truncation_psi"],
            noise_mode="const")
    assert_close(img, case.nhwc("out/img_const"), atol=1e-4, what="G(z, c)")


def test_block_outputs(case, G):
    _, activations = G.synthesis(case.arrays["out/ws"][:1], noise_mode="const",
                                 return_activations=True)
    assert sorted(activations) == sorted(f"b{r}" for r in case.meta["block_resolutions"])
    for name, (x, img) in activations.items():
        assert_close(x, case.nhwc(f"out/act/{name}/x"), atol=1e-4, what=f"{name}/x")  # <= 6.6e-6
        key = f"out/act/{name}/img"
        if key in case.arrays:
            assert_close(img, case.nhwc(key), atol=1e-4, what=key)
        else:  # resnet: images only from the last block's ToRGB
            assert img is None, f"{name}: the reference has no image here"


def test_random_noise_differs_per_call_and_sample(case, G):
    ws = np.repeat(case.arrays["out/ws"][:1], 2, axis=0)
    a, b = to_numpy(G.synthesis(ws)), to_numpy(G.synthesis(ws))
    const = case.nhwc("out/img_const")[:1]
    assert np.abs(a[0] - a[1]).max() > 1e-3  # independent noise per sample
    assert np.abs(a - b).max() > 1e-3  # fresh noise per call
    # The noise strengths are learned (non-zero in the golden weights), and the
    # image with random noise stays near the one with the stored noise.
    assert 1e-3 < np.abs(a[:1] - const).max() < 10 * np.abs(const).max()


def test_style_mixing(case, G):
    z, z2, c = case.arrays["in/z"], case.arrays["in/z2"], case.arrays["in/c"]
    ws = mix_styles(G.mapping(z, c), G.mapping(z2, c), case.meta["mix_cutoff"])
    assert_close(ws, case.arrays["out/ws_mix"], atol=2e-5, what="ws_mix")
    assert_close(G.synthesis(ws, noise_mode="const"), case.nhwc("out/img_mix_const"), atol=1e-4,
                 what="img_mix_const")


@pytest.fixture(scope="module")
def path_length(case, G):
    """Greg from the case's weights: AliasFreeGAN.phase_greg with the stored noise."""
    settings = case.meta["path_length"]
    D = Discriminator(img_resolution=32, channel_base=256, channel_max=8)
    gan = AliasFreeGAN(G, D, pl_weight=settings["pl_weight"], pl_decay=settings["pl_decay"],
                       g_reg_interval=settings["G_reg_interval"], mixing_prob=0.0)
    assert float(to_numpy(gan.pl_mean)) == settings["pl_mean_before"]
    z = case.arrays["in/z"][: settings["batch"] * gan.pl_batch_shrink]
    noise = case.nhwc("in/pl_noise")
    loss, (lengths, pl_mean), grads = run_compiled(
        lambda z: gan.phase_greg(z, None, pl_noise=noise, noise_mode=settings["noise_mode"]),
        gan.variables, z)
    return to_numpy(loss), to_numpy(lengths), to_numpy(pl_mean), grads


def test_path_lengths_at_the_reference_ws(case, G):
    """The input gradient alone, at the reference's own ws (`out/ws_psi1`: the
    path-length ws are the first samples' untruncated ws)."""
    batch = case.meta["path_length"]["batch"]
    ws = case.arrays["out/ws_psi1"][:batch]
    noise = ops.convert_to_tensor(case.nhwc("in/pl_noise"))

    def image_sum(ws):
        return ops.sum(G.synthesis(ws, noise_mode="const") * noise), None

    grads, _ = backend_module().input_gradient(image_sum, ops.convert_to_tensor(ws))
    # Measured <= 1e-7 relative.
    assert_close(losses.path_lengths(grads), case.arrays["out/pl_lengths"], rtol=2e-6,
                 what="pl_lengths")


def test_path_length_values(case, path_length):
    """The whole phase, ws from our mapping. The lengths are ill-conditioned in
    ws: the mapping's float32 rounding (ws within 1.6e-6 of the reference's)
    moves s32's lengths by up to 1.8e-5 relative on TensorFlow and JAX (at
    the reference's ws they agree to 1e-7, test above)."""
    loss, lengths, pl_mean, _ = path_length
    assert_close(lengths, case.arrays["out/pl_lengths"], rtol=2e-4, what="pl_lengths")
    assert_close(pl_mean, case.arrays["out/pl_mean"], rtol=2e-4, what="pl_mean")
    assert_close(loss, case.arrays["out/loss_Gpl"], rtol=3e-4, what="loss_Gpl")  # <= 2.7e-5


def test_path_length_gradients(case, G, path_length):
    *_, grads = path_length
    entries = _stylegan2_entries(G)
    by_id = {id(v): (name, layout) for name, (v, layout) in entries.items()}
    prefix = "grad/Greg/G/"
    golden = {k[len(prefix):]: v for k, v in case.arrays.items() if k.startswith(prefix)}
    failures = []
    for variable, grad in zip(G.trainable_variables, grads):
        name, layout = by_id[id(variable)]
        g = _to_reference(to_numpy(grad), layout)
        if name not in golden:
            # The reference has no gradient where the loss does not depend on
            # the weight (ToRGB biases add constants to the image).
            assert np.abs(g).max() == 0, f"{name}: expected no gradient"
            continue
        ref = golden.pop(name)
        # README: ~1e-3 relative on each tensor's norm, ~1e-6 absolute.
        err = np.linalg.norm((g - ref).astype(np.float64))
        bound = 1e-3 * np.linalg.norm(ref.astype(np.float64)) + 1e-6 * np.sqrt(ref.size)
        if not err <= bound:
            failures.append(f"{name}: error {err:.3g} > {bound:.3g}")
    assert not golden, f"golden gradients without a variable: {sorted(golden)}"
    assert not failures, "\n".join(failures)


def test_reference_round_trip(case, G):
    from keras_afgan.convert import generator_to_reference

    state = generator_to_reference(G)
    for name, value in case.state().items():
        np.testing.assert_array_equal(state[name], value, err_msg=name)
    assert set(reference_variables(G)) <= set(state)


@pytest.mark.parametrize("flavour", ["stylegan3", "ada"])
def test_reference_pickle_loads_to_the_golden_images(case, flavour, tmp_path):
    """Snapshot pickles with exactly the kwargs the reference's train.py writes:
    the StyleGAN3 repository's `--cfg=stylegan2` (`networks_stylegan2`,
    `fused_modconv_default`, flat synthesis arguments) and
    stylegan2-ada-pytorch's (`networks`, `synthesis_kwargs`)."""
    from keras_afgan.convert import load_reference_pickle
    from tests.snapshot_writer import write_stylegan2_snapshot

    path = write_stylegan2_snapshot(str(tmp_path / "sg2.pkl"), case.state(),
                                    case.meta["G_kwargs"], flavour)
    loaded = load_reference_pickle(path)
    assert sorted(k for k in loaded if k in ("G", "D", "G_ema")) == ["G", "G_ema"]
    G = loaded["G_ema"]
    assert isinstance(G, StyleGAN2Generator)
    assert G.synthesis.architecture == case.meta["G_kwargs"]["architecture"]
    assert G.synthesis.num_fp16_res == 4 and G.synthesis.conv_clamp == 256
    img = G(case.arrays["in/z"], case.arrays["in/c"], truncation_psi=case.meta["truncation_psi"],
            noise_mode="const")
    assert_close(img, case.nhwc("out/img_const"), atol=1e-4, what=f"{flavour} pickle")


def test_unknown_stylegan2_argument_is_named(case):
    with pytest.raises(ValueError, match="resample_filter"):
        generator_from_reference(case.state(), class_name=CLASS_NAME,
                                 **dict(case.meta["G_kwargs"], resample_filter=[1, 2, 1]))
    with pytest.raises(ValueError, match="Unexpected generator arguments: \\['channels_first'\\]"):
        generator_from_reference(case.state(), class_name=CLASS_NAME,
                                 **dict(case.meta["G_kwargs"], channels_first=True))
    with pytest.raises(ValueError, match="Expected class_name in"):
        generator_from_reference(case.state(), class_name="training.networks_stylegan4.G",
                                 **case.meta["G_kwargs"])


def test_orig_architecture_structure():
    """`orig`: no skips, ToRGB only in the last block (as `resnet`), and each
    block's output is conv1's (no residual sum): checked against the block's
    own layers applied by hand."""
    G = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8,
                           architecture="orig", mapping_layers=2, seed=1)
    blocks = G.synthesis.blocks
    assert [b.torgb is not None for b in blocks] == [False, False, True]
    assert all(b.skip is None for b in blocks) and G.num_ws == 6
    ws = np.random.default_rng(0).standard_normal((2, 6, 8)).astype("float32")
    img, acts = G.synthesis(ws, noise_mode="const", return_activations=True)
    x8 = acts["b8"][0]
    expected = blocks[2].conv1(blocks[2].conv0(x8, ws[:, 3], noise_mode="const"), ws[:, 4],
                               noise_mode="const")
    assert_close(acts["b16"][0], expected, atol=1e-6, what="b16 features")
    assert_close(img, blocks[2].torgb(expected, ws[:, 5]), atol=1e-6, what="image")
