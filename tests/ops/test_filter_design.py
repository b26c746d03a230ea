"""Filter design vs scipy.signal.firwin and an independent jinc * Kaiser."""

import math

import numpy as np
import pytest
import scipy.signal
import scipy.special

from keras_afgan.ops import filter_design

# (numtaps, cutoff f_c, width 2 f_h, sampling rate s): the schedule's values
# (t32: up/down filters of L0 and L5) and a few odd ones.
DESIGNS = [
    (12, 2.0, 12.0, 32.0),
    (12, 2.378414230005442, 11.243171539989116, 32.0),
    (24, 4.0, 8.0, 64.0),
    (12, 4.756828460010884, 22.486343079978234, 64.0),
    (6, 1.5, 3.0, 8.0),
    (13, 3.0, 4.0, 16.0),
    (7, 0.9, 1.4, 4.0),
]


def jinc_kaiser_np(numtaps, cutoff, width, fs, window=None):
    """docs/design.md section 1: J1(2 pi f_c r)/(pi r) times an outer Kaiser window
    (or the 1-D `window` given), sum 1."""
    centre = (numtaps - 1) / 2
    if window is None:
        beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
        window = np.kaiser(numtaps, beta)
    f = np.zeros((numtaps, numtaps))
    for i in range(numtaps):
        for j in range(numtaps):
            r = math.hypot((i - centre) / fs, (j - centre) / fs)
            # lim_{r->0} J1(2 pi f_c r)/(pi r) = f_c, since J1(z) ~ z/2.
            jinc = cutoff if r == 0 else scipy.special.j1(2 * math.pi * cutoff * r) / (math.pi * r)
            f[i, j] = jinc * window[i] * window[j]
    return f / f.sum()


@pytest.mark.parametrize("numtaps,cutoff,width,fs", DESIGNS)
def test_separable_equals_firwin(numtaps, cutoff, width, fs):
    f = filter_design.design_lowpass_filter(numtaps, cutoff, width, fs)
    expected = scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)
    assert f.dtype == np.float32 and f.shape == (numtaps,)
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(f.sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(f, f[::-1], atol=1e-7)  # linear phase


@pytest.mark.parametrize("numtaps,cutoff,width,fs", DESIGNS)
def test_radial_equals_jinc_kaiser(numtaps, cutoff, width, fs):
    f = filter_design.design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
    expected = jinc_kaiser_np(numtaps, cutoff, width, fs)
    assert f.dtype == np.float32 and f.shape == (numtaps, numtaps)
    assert np.all(np.isfinite(f))
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-7 * np.abs(expected).max() + 1e-9)
    np.testing.assert_allclose(f.astype(np.float64).sum(), 1.0, atol=1e-6)


@pytest.mark.parametrize("numtaps,cutoff,width,fs", DESIGNS)
def test_radial_symmetries(numtaps, cutoff, width, fs):
    f = filter_design.design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
    np.testing.assert_allclose(f, f.T, atol=1e-8)
    np.testing.assert_allclose(f, np.rot90(f), atol=1e-8)
    np.testing.assert_allclose(f, f[::-1, :], atol=1e-8)
    np.testing.assert_allclose(f, f[:, ::-1], atol=1e-8)


def test_radial_kaiser_window_is_firwins():
    # The radial window is the one firwin uses for the same numtaps and width:
    # firwin's centre row, normalised, is the window times a sinc.
    numtaps, cutoff, width, fs = 12, 2.0, 12.0, 32.0
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    sinc = 2 * cutoff * np.sinc(2 * cutoff * t)
    firwin = scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)
    windowed = sinc * np.kaiser(numtaps, beta)
    np.testing.assert_allclose(firwin, windowed / windowed.sum(), atol=1e-12)


@pytest.mark.parametrize("numtaps", [5, 7, 13])
def test_radial_odd_centre(numtaps):
    f = filter_design.design_lowpass_filter(numtaps, 2.0, 4.0, 16.0, radial=True)
    c = numtaps // 2
    assert np.all(np.isfinite(f))
    assert f[c, c] == f.max()
    expected = jinc_kaiser_np(numtaps, 2.0, 4.0, 16.0)
    np.testing.assert_allclose(f[c, c], expected[c, c], rtol=1e-6)


@pytest.mark.parametrize("radial", [False, True])
def test_single_tap_is_no_filter(radial):
    assert filter_design.design_lowpass_filter(1, 2.0, 4.0, 16.0, radial=radial) is None


@pytest.mark.parametrize("numtaps", [0, -3])
def test_bad_numtaps(numtaps):
    with pytest.raises(ValueError, match="numtaps"):
        filter_design.design_lowpass_filter(numtaps, 2.0, 4.0, 16.0)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 2.0, 2.7])
def test_gaussian_blur_filter(sigma):
    f = filter_design.gaussian_blur_filter(sigma)
    radius = int(np.floor(3 * sigma))
    x = np.arange(-radius, radius + 1)
    expected = 2.0 ** (-((x / sigma) ** 2))
    expected = expected / expected.sum()
    assert f.dtype == np.float32 and f.shape == (2 * radius + 1,)
    np.testing.assert_allclose(f, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("sigma", [0, 0.0, -1.5])
def test_gaussian_blur_filter_off(sigma):
    assert filter_design.gaussian_blur_filter(sigma) is None


def test_resample_filter_1d():
    np.testing.assert_allclose(filter_design.resample_filter_1d(), np.array([1, 3, 3, 1]) / 8)
    np.testing.assert_allclose(filter_design.resample_filter_1d([1, 2, 1]), np.array([1, 2, 1]) / 4)


# The paper's filter ablation: Lanczos and Gaussian windows instead of Kaiser.

def _numpy_window(window, numtaps):
    n = np.arange(numtaps, dtype=np.float64)
    if window == "lanczos":  # sinc(2n/(N-1) - 1)
        return np.sinc(2 * n / (numtaps - 1) - 1)
    sigma = (numtaps - 1) / 6  # the documented choice: the ends at 3 sigma
    return np.exp(-0.5 * ((n - (numtaps - 1) / 2) / sigma) ** 2)


@pytest.mark.parametrize("window", ["lanczos", "gaussian"])
@pytest.mark.parametrize("numtaps,cutoff,width,fs", DESIGNS)
def test_separable_windows_equal_firwin(window, numtaps, cutoff, width, fs):
    """scipy's own design with the same window (scipy.signal.firwin)."""
    scipy_window = "lanczos" if window == "lanczos" else ("gaussian", (numtaps - 1) / 6)
    expected = scipy.signal.firwin(numtaps, cutoff, window=scipy_window, fs=fs)
    ours = filter_design.design_lowpass_filter(numtaps, cutoff, width, fs, window=window)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-7)
    np.testing.assert_allclose(filter_design.filter_window(numtaps, width, fs, window),
                               _numpy_window(window, numtaps), rtol=0, atol=1e-12)


@pytest.mark.parametrize("window", ["lanczos", "gaussian"])
def test_radial_windows_equal_jinc_times_window(window):
    numtaps, cutoff, width, fs = 12, 2.378414230005442, 11.243171539989116, 32.0
    expected = jinc_kaiser_np(numtaps, cutoff, width, fs, window=_numpy_window(window, numtaps))
    ours = filter_design.design_lowpass_filter(numtaps, cutoff, width, fs, radial=True,
                                               window=window)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-7)


def test_windows_differ_and_unknown_window_is_refused():
    designs = {w: filter_design.design_lowpass_filter(12, 2.0, 12.0, 32.0, window=w)
               for w in filter_design.FILTER_WINDOWS}
    assert np.abs(designs["lanczos"] - designs["kaiser"]).max() > 1e-3
    assert np.abs(designs["gaussian"] - designs["kaiser"]).max() > 1e-3
    with pytest.raises(ValueError, match="Expected filter_window in"):
        filter_design.design_lowpass_filter(12, 2.0, 12.0, 32.0, window="hann")
