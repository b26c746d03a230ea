"""The fixed filters of the augmentation pipe, as numpy (float64) arrays.

- `GEOMETRIC_LOWPASS`: the 12-tap Symlet-6 wavelet low-pass, normalised to
  sum 1, used to upsample before and downsample after the geometric
  resampling (an orthogonal wavelet filter: down(up(x)) returns x).
- `filter_bank()`: four zero-phase filters that split an image into
  octave bands (lowest first), built from the Symlet-2 wavelet: the image
  filter's per-band gains multiply these rows.
- `reflect_matrix` and the helpers below turn "reflect-pad then filter"
  into one `[out, in]` matrix per axis, so each runs as matrix products.
"""

import functools

import numpy as np

from keras_afgan.ops.upfirdn2d import resampling_matrix

# Daubechies' least-asymmetric (Symlet) wavelet low-pass coefficients.
_SYM2 = np.array([-0.12940952255092145, 0.22414386804185735, 0.836516303737469,
                  0.48296291314469025])
_SYM6 = np.array([0.015404109327027373, 0.0034907120842174702, -0.11799011114819057,
                  -0.048311742585633, 0.4910559419267466, 0.787641141030194,
                  0.3379294217276218, -0.07263752278646252, -0.021060292512300564,
                  0.04472490177066578, 0.0017677118642428036, -0.007800708325034148])

GEOMETRIC_LOWPASS = _SYM6 / _SYM6.sum()
# Half the margin, in input pixels, the geometric resampling keeps around
# the image for the low-pass filter's support (taps / 4).
GEOMETRIC_PAD = GEOMETRIC_LOWPASS.size // 4

# The image filter's expected power per band (a 1/f spectrum), lowest first.
BAND_POWER = np.array([10.0, 1.0, 1.0, 1.0]) / 13


@functools.lru_cache(maxsize=1)
def filter_bank():
    """`[4, 43]`: row b keeps octave band b (row 0 the lowest); the rows sum to
    a unit impulse.

    Row 0 starts as the impulse; three times, every row is upsampled by 2
    (zeros between taps) and low-passed with `lo2 = lo * lo~ / 2`, and the
    next row gets the matching high-pass `hi2 = hi * hi~ / 2` at its
    centre (`lo` the Symlet-2 low-pass, `hi[k] = (-1)^k lo[k]`, `~`
    time reversal). Each pass halves the band of what is already there.
    """
    lo = _SYM2
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.zeros((4, 1))
    bank[0, 0] = 1.0
    for band in range(1, 4):
        spread = np.zeros((4, 2 * bank.shape[1] - 1))
        spread[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in spread])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start:start + hi2.size] += hi2
    bank.setflags(write=False)
    return bank


def reflect_indices(size, lo, hi):
    """Source index of each sample of a length-`size` axis reflect-padded by
    `(lo, hi)` (mirrored about the edge samples, as `numpy.pad(mode="reflect")`;
    pads longer than the axis keep reflecting)."""
    period = 2 * (size - 1)
    index = np.arange(-lo, size + hi)
    if period == 0:
        return np.zeros_like(index)
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def reflect_matrix(size, lo, hi):
    """`[size + lo + hi, size]`: reflect padding as a matrix."""
    index = reflect_indices(size, lo, hi)
    matrix = np.zeros((index.size, size))
    matrix[np.arange(index.size), index] = 1.0
    return matrix


@functools.lru_cache(maxsize=64)
def geometric_upsampling_matrix(size, pad):
    """`[2 (size + 2 pad), size]`: reflect-pad by `pad` on both sides, then
    upsample 2x with `GEOMETRIC_LOWPASS` (gain 2 per axis; the filter's
    `(taps + 1) // 2` and `(taps - 2) // 2` zero padding, trimmed to `2x`)."""
    taps = GEOMETRIC_LOWPASS.size
    padded = size + 2 * pad
    up = resampling_matrix(padded, GEOMETRIC_LOWPASS, up=2, pad_lo=(taps + 1) // 2,
                           pad_hi=(taps - 2) // 2, gain=2.0)
    return up @ reflect_matrix(size, pad, pad)


@functools.lru_cache(maxsize=64)
def band_matrices(size):
    """`[4, size, size]`: each row of `filter_bank()` as a same-size
    correlation over the reflect-padded axis (the image filter's bands)."""
    bank = filter_bank()
    half = bank.shape[1] // 2
    pad = reflect_matrix(size, half, half)  # [size + 2 half, size]
    # Correlation with a row is the ('valid') convolution with it reversed.
    return np.stack([resampling_matrix(size + 2 * half, row[::-1]) @ pad for row in bank])
