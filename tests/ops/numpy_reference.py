"""Independent numpy/scipy references for the signal ops (float64, NHWC).

Written from docs/design.md section 1, step by step and without any keras_afgan
code, so that the tests compare keras_afgan against something it did not
produce.
"""

import numpy as np
import scipy.signal


def upfirdn2d_np(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
    """upfirdn2d of `[N, H, W, C]` images, one channel at a time.

    Zero-insert by `up` (each sample followed by `up - 1` zeros); pad, or crop
    where negative, by `(x_lo, x_hi, y_lo, y_hi)` (x = width, y = height);
    true 2-D convolution ('valid') with `f * gain`, where a 1-D `f` stands for
    its outer product and a 2-D `f` is indexed `[y, x]`; keep every
    `down`-th sample from index 0.
    """
    x = np.asarray(x, dtype=np.float64)
    f = np.ones([1]) if f is None else np.asarray(f, dtype=np.float64)
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    x_lo, x_hi, y_lo, y_hi = padding
    n, h, w, c = x.shape
    z = np.zeros((n, h * up, w * up, c))
    z[:, ::up, ::up, :] = x
    # Crop (negative padding) ...
    z = z[:, max(-y_lo, 0): z.shape[1] - max(-y_hi, 0), max(-x_lo, 0): z.shape[2] - max(-x_hi, 0)]
    # ... then zero-pad (positive padding).
    z = np.pad(z, [(0, 0), (max(y_lo, 0), max(y_hi, 0)), (max(x_lo, 0), max(x_hi, 0)), (0, 0)])
    out = np.stack(
        [np.stack([scipy.signal.convolve2d(z[i, :, :, j], f2, mode="valid") for j in range(c)],
                  axis=-1) for i in range(n)]
    )
    return out[:, ::down, ::down, :]


def lrelu_np(x, slope=0.2):
    return np.where(x >= 0, x, x * slope)
