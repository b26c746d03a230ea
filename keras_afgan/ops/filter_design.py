"""Low-pass FIR filter design for the alias-free layers (numpy/scipy only).

Filters are constants computed once from a layer's configuration: the
separable Kaiser-windowed sinc of config T and the radial (jinc) down filter of
config R. Nothing here touches a Keras backend.
"""

import numpy as np
import scipy.signal
import scipy.special


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """Design a low-pass FIR filter.

    Args:
        numtaps: number of taps per axis. A single tap means "no filter" and
            returns `None`.
        cutoff: the cutoff frequency f_c, in the same units as `fs`.
        width: transition band width, `2 * f_h`.
        fs: sampling rate s of the signal the filter runs at.
        radial: design the rotation-invariant 2-D jinc filter (config R)
            instead of the separable 1-D Kaiser-windowed sinc.

    Returns:
        `None`, a float32 array `[numtaps]` (separable; equal to
        `scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)`), or a
        float32 array `[numtaps, numtaps]` (radial) that sums to 1.
    """
    numtaps = int(numtaps)
    if numtaps < 1:
        raise ValueError(f"Expected numtaps >= 1. Received: numtaps={numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return f.astype(np.float32)
    # Radial: jinc(2*pi*f_c*r) is the 2-D ideal low-pass; window it with the
    # outer product of the Kaiser window that firwin would use for this width.
    x = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    safe_r = np.where(r == 0, 1.0, r)
    f = np.where(r == 0, cutoff, scipy.special.j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r))
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
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
