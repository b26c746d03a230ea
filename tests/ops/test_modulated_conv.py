"""modulated_conv2d vs a naive grouped per-sample convolution (docs/design.md section 1)."""

import numpy as np
import pytest
from keras import ops

from keras_afgan.ops import modulated_conv2d
from tests.testing import assert_close


def _modulated_conv2d_np(x, w_oikk, styles, demodulate, input_gain):
    """x `[N, H, W, I]`, weight `[O, I, k, k]` (reference layout), styles `[N, I]`.

    Per sample: pre-normalise (weight by its RMS per output channel over
    (in, kh, kw); styles by the RMS of the whole styles tensor, as the
    reference does), modulate the
    weight's input channels by the styles, demodulate by
    rsqrt(sum w^2 + 1e-8) per output channel, times input_gain; then a
    correlation (no flip, like torch conv2d) with padding k - 1 on each side.
    """
    x = x.astype(np.float64)
    w = w_oikk.astype(np.float64)
    s = styles.astype(np.float64)
    if demodulate:
        w = w / np.sqrt(np.mean(w**2, axis=(1, 2, 3), keepdims=True))
        s = s / np.sqrt(np.mean(s**2))
    n, h, wd, _ = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, [(0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)])
    out = np.zeros((n, h + k - 1, wd + k - 1, o))
    for i in range(n):
        wi = w * s[i][None, :, None, None]  # [O, I, k, k]
        if demodulate:
            wi = wi / np.sqrt(np.sum(wi**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
        if input_gain is not None:
            wi = wi * input_gain
        for ky in range(k):
            for kx in range(k):
                patch = xp[i, ky:ky + h + k - 1, kx:kx + wd + k - 1, :]  # [H', W', I]
                out[i] += np.einsum("yxi,oi->yxo", patch, wi[:, :, ky, kx])
    return out


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("input_gain", [None, 0.37, "tensor"])
def test_matches_numpy(k, demodulate, input_gain):
    rng = np.random.default_rng(k + 10 * demodulate)
    n, h, w, c_in, c_out = 3, 7, 5, 4, 6
    x = rng.normal(size=(n, h, w, c_in)).astype(np.float32)
    w_oikk = rng.normal(size=(c_out, c_in, k, k)).astype(np.float32)
    styles = (rng.normal(size=(n, c_in)) * 1.5 + 0.5).astype(np.float32)
    gain_value = 0.37 if input_gain is not None else None
    gain = ops.convert_to_tensor(np.float32(0.37)) if input_gain == "tensor" else input_gain
    expected = _modulated_conv2d_np(x, w_oikk, styles, demodulate, gain_value)
    y = modulated_conv2d(ops.convert_to_tensor(x),
                         ops.convert_to_tensor(w_oikk.transpose(2, 3, 1, 0)),  # [k, k, I, O]
                         ops.convert_to_tensor(styles), demodulate=demodulate, input_gain=gain)
    assert tuple(y.shape) == (n, h + k - 1, w + k - 1, c_out)
    assert_close(y, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("k", [1, 3])
def test_demodulation_removes_weight_and_style_scale(k):
    # Demodulation normalises every output channel of each sample's weight, so
    # scaling the weight per output channel, or the styles globally, changes
    # nothing -- even at scales where the 1e-8 would dominate without the
    # pre-normalisation by RMS (per output channel, and over all styles).
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    w_oikk = rng.normal(size=(5, 3, k, k)).astype(np.float32)
    styles = rng.normal(size=(2, 3)).astype(np.float32)
    expected = _modulated_conv2d_np(x, w_oikk, styles, True, None)
    channel_scale = np.array([1e-4, 1.0, 30.0, 1e-3, 0.2], dtype=np.float32)[:, None, None, None]
    y = modulated_conv2d(ops.convert_to_tensor(x),
                         ops.convert_to_tensor((w_oikk * channel_scale).transpose(2, 3, 1, 0)),
                         ops.convert_to_tensor(1e-3 * styles))
    assert_close(y, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("k", [1, 3])
def test_samples_stay_apart(k):
    """A NaN sample (styles and input) leaves every other sample's output
    as it is alone: the styles' RMS is per sample (the reference's batch-wide
    RMS spread one bad sample to all; the numpy reference above keeps it, and
    the outputs still agree: demodulation cancels either)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 6, 5, 4)).astype(np.float32)
    weight = ops.convert_to_tensor(rng.normal(size=(k, k, 4, 2)).astype(np.float32))
    styles = rng.normal(size=(3, 4)).astype(np.float32)
    x[1, 2, 3, 0], styles[1, 2] = np.nan, np.nan
    y = modulated_conv2d(ops.convert_to_tensor(x), weight, ops.convert_to_tensor(styles))
    for i in (0, 2):
        alone = modulated_conv2d(ops.convert_to_tensor(x[i:i + 1]), weight,
                                 ops.convert_to_tensor(styles[i:i + 1]))
        assert_close(ops.convert_to_numpy(y)[i:i + 1], alone, atol=1e-6, what=f"sample {i}")
    assert np.isnan(ops.convert_to_numpy(y)[1]).all()
