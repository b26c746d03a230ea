"""Low-pass FIR filter design for the alias-free layers (numpy/scipy only).

Filters are constants computed once from a layer's configuration: the
separable windowed sinc of config T and the radial (jinc) down filter of
config R. The window is Kaiser's (the paper's), or, for the paper's filter
ablation, Lanczos's or a Gaussian. Nothing here touches a Keras backend.
"""

import numpy as np
import scipy.signal
import scipy.special


FILTER_WINDOWS = ("kaiser", "lanczos", "gaussian")


def filter_window(numtaps, width, fs, window="kaiser"):
    """The 1-D window `[numtaps]` of the filter design.

    - "kaiser": the Kaiser window whose beta `scipy.signal.firwin` picks for
      the transition band `width` (Kaiser's formula for the attenuation).
    - "lanczos": `sinc(2 n / (numtaps - 1) - 1)`, the central lobe of a
      sinc (`scipy.signal.windows.lanczos`); it ignores `width`.
    - "gaussian": `exp(-n'^2 / (2 sigma^2))` with `sigma = (numtaps - 1) / 6`
      (the ends at 3 sigma); it ignores `width`.
    """
    if window not in FILTER_WINDOWS:
        raise ValueError(f"Expected filter_window in {FILTER_WINDOWS}. Received: {window!r}")
    if window == "kaiser":
        beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
        return scipy.signal.get_window(("kaiser", beta), numtaps, fftbins=False)
    if window == "lanczos":
        return scipy.signal.get_window("lanczos", numtaps, fftbins=False)
    return scipy.signal.get_window(("gaussian", (numtaps - 1) / 6), numtaps, fftbins=False)


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False, window="kaiser"):
    """Design a low-pass FIR filter.

    Args:
        numtaps: number of taps per axis. A single tap means "no filter" and
            returns `None`.
        cutoff: the cutoff frequency f_c, in the same units as `fs`.
        width: transition band width, `2 * f_h`.
        fs: sampling rate s of the signal the filter runs at.
        radial: design the rotation-invariant 2-D jinc filter (config R)
            instead of the separable 1-D windowed sinc.
        window: "kaiser", "lanczos" or "gaussian" (see `filter_window`).

    Returns:
        `None`, a float32 array `[numtaps]` (separable: the sinc of `cutoff`
        times the window, summing to 1; with Kaiser's window equal to
        `scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)`), or a
        float32 array `[numtaps, numtaps]` (radial: the jinc times the
        outer product of the window) that sums to 1.
    """
    numtaps = int(numtaps)
    if numtaps < 1:
        raise ValueError(f"Expected numtaps >= 1. Received: numtaps={numtaps}")
    if numtaps == 1:
        return None
    w = filter_window(numtaps, width, fs, window)
    if not radial and window == "kaiser":  # bit-identical to the reference's design
        return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width,
                                   fs=fs).astype(np.float32)
    if not radial:
        # The ideal low-pass sinc(2 f_c t) times the window, DC gain 1 (firwin's steps).
        t = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
        f = np.sinc(2 * cutoff * t) * w
        return (f / np.sum(f)).astype(np.float32)
    # Radial: jinc(2*pi*f_c*r) is the 2-D ideal low-pass; window it with the
    # outer product of the 1-D window.
    x = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    safe_r = np.where(r == 0, 1.0, r)
    f = np.where(r == 0, cutoff, scipy.special.j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r))
    f = f * np.outer(w, w)
    f = f / np.sum(f)
    return f.astype(np.float32)


def resample_filter_1d(taps=(1, 3, 3, 1)):
    """The StyleGAN2 discriminator's binomial resampling filter, 1-D, summing to 1."""
    f = np.asarray(taps, dtype=np.float64)
    return (f / f.sum()).astype(np.float32)


def gaussian_blur_filter(sigma):
    """The discriminator-input blur of config R: `exp2(-(x/sigma)^2)`.

    Taps at x = -floor(3 sigma) .. floor(3 sigma), normalised to sum 1. Returns
    `None` for sigma <= 0 (no blur).
    """
    sigma = float(sigma)
    if sigma <= 0:
        return None
    radius = int(np.floor(sigma * 3))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    f = np.exp2(-np.square(x / sigma))
    return (f / f.sum()).astype(np.float32)
