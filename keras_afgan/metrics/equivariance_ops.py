"""The image operators of the equivariance metrics (docs/design.md section 5), numpy, NHWC.

Each operator moves a batch of images `[N, H, W, C]` and returns the moved
images and a mask of the pixels that are valid after the move. They are
exact filters with fixed taps, computed in float64 on the host: the metric
needs a few per batch, and the generator dominates the cost.

- `translate_integer`: whole-pixel shift, vacated pixels 0 and masked.
- `translate_fractional`: Lanczos-3 (6 taps) shift along x, then y.
- `affine_filter`: the band-limited 2-D filter for a 2x2 matrix (windowed
  sinc of the input grid circularly convolved with that of the transformed grid).
- `rotate`: 4x upsampling with the band-limited rotation filter, then
  bilinear sampling of the rotated grid (as `grid_sample`, zeros outside).
- `pseudo_rotate`: the same-size band-limited filter that the rotated
  synthesis is compared through.
"""

import numpy as np
from scipy import signal

LANCZOS_A = 3
FILTER_AMAX = 6
FILTER_AFLT = 64
ROTATION_UP = 4


def rotation_matrix(angle):
    """`[[cos a, sin a, 0], [-sin a, cos a, 0], [0, 0, 1]]` (radians)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _shift_axis(x, i, axis):
    """`z[j] = x[j - i]` along `axis`, zeros where `j - i` falls outside."""
    n = x.shape[axis]
    out = np.zeros_like(x)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    if abs(i) >= n:
        return out
    src[axis] = slice(max(-i, 0), n - max(i, 0))
    dst[axis] = slice(max(i, 0), n - max(-i, 0))
    out[tuple(dst)] = x[tuple(src)]
    return out


def _axis_mask(n, lo, hi):
    """Length-n 0/1 vector, 1 on `[lo, hi)`."""
    j = np.arange(n)
    return ((j >= lo) & (j < hi)).astype(np.float64)


def translate_integer(images, tx, ty):
    """Move `[N, H, W, C]` images by whole pixels `i = round(t * size)` per axis.

    Positive t moves content toward larger indices. Returns `(moved, mask)`,
    the mask 1 where a pixel came from inside the image.
    """
    x = np.asarray(images, np.float64)
    _, h, w, _ = x.shape
    ix, iy = int(np.round(tx * w)), int(np.round(ty * h))
    moved = _shift_axis(_shift_axis(x, ix, 2), iy, 1)
    mask = _shift_axis(_shift_axis(np.ones_like(x), ix, 2), iy, 1)
    return moved, mask


def lanczos_taps(f, a=LANCZOS_A):
    """`h(k) = sinc(k - f) sinc((k - f) / a)` for k = -a+1..a, normalised to sum 1."""
    k = np.arange(-a + 1, a + 1)
    h = np.sinc(k - f) * np.sinc((k - f) / a)
    return h / h.sum()


def _translate_axis(x, t, axis, a=LANCZOS_A):
    n = x.shape[axis]
    i = int(np.floor(t * n))
    f = t * n - i
    taps = lanczos_taps(f, a)
    out = np.zeros_like(x)
    for k, hk in zip(range(-a + 1, a + 1), taps):
        out += hk * _shift_axis(x, i + k, axis)
    keep = _axis_mask(n, max(i - a + 1, 0), n + min(i + a, 0))
    valid = _axis_mask(n, max(i + a, 0), n + min(i - a + 1, 0))
    shape = [1] * x.ndim
    shape[axis] = n
    return out * keep.reshape(shape), valid.reshape(shape)


def translate_fractional(images, tx, ty):
    """Move `[N, H, W, C]` images by `t * size` pixels with Lanczos-3 taps, x then y.

    Per axis: `i = floor(t * size)`, `f = t * size - i`,
    `z[j] = sum_k h(k) x[j - i - k]`, kept on `[max(i-2, 0), size + min(i+3, 0))`.
    Returns `(moved, mask)`, the mask 1 on `[max(i+3, 0), size + min(i-2, 0))`
    on both axes.
    """
    x = np.asarray(images, np.float64)
    x, mask_x = _translate_axis(x, tx, axis=2)
    x, mask_y = _translate_axis(x, ty, axis=1)
    return x, np.broadcast_to(mask_x * mask_y, x.shape).copy()


def affine_filter(matrix, up, a=LANCZOS_A, amax=FILTER_AMAX, aflt=FILTER_AFLT):
    """The band-limited filter of the 2x2 `matrix`, `(2 amax up - 1)^2` taps.

    Steps: tap coordinates `u_j = (j + 1) / up - aflt` rotated so 0 is at
    index 0; input grid (xi, yi) and output grid `(xo, yo) = (xi, yi) @ M^T`;
    circular convolution (FFT) of `sinc(xi) sinc(yi)` with `sinc(xo) sinc(yo)`,
    times that of their Lanczos windows; roll back, crop to
    `2 amax up - 1`, and normalise each of the `up x up` polyphase
    components to sum `1 / up^2`.
    """
    m = np.asarray(matrix, np.float64)[:2, :2]
    n = 2 * aflt * up - 1
    shift = aflt * up - 1
    u = np.roll((np.arange(n) + 1) / up - aflt, -shift)
    xi, yi = np.meshgrid(u, u)
    xo = xi * m[0, 0] + yi * m[0, 1]
    yo = xi * m[1, 0] + yi * m[1, 1]

    def window(v):
        return np.where(np.abs(v) < a, np.sinc(v / a), 0.0)

    def circular(p, q):
        return np.real(np.fft.ifft2(np.fft.fft2(p) * np.fft.fft2(q)))

    f = (circular(np.sinc(xi) * np.sinc(yi), np.sinc(xo) * np.sinc(yo))
         * circular(window(xi) * window(yi), window(xo) * window(yo)))
    f = np.roll(f, shift, axis=(0, 1))
    crop = (aflt - amax) * up
    f = f[crop:n - crop, crop:n - crop]
    f = np.pad(f, [[0, 1], [0, 1]])
    for p in range(up):
        for q in range(up):
            f[p::up, q::up] /= f[p::up, q::up].sum() * up * up
    return f[:-1, :-1]


def _convolve_same_channels(x, kernel):
    """True 2-D convolution of every `[H, W]` plane of `x` `[N, H, W, C]` ('full')."""
    return signal.fftconvolve(x, kernel[None, :, :, None], mode="full", axes=(1, 2))


def _grid_sample(canvas, gx, gy, mode):
    """Sample `canvas` `[N, h, w, C]` at normalised coordinates (align_corners=False, zeros).

    `gx`, `gy` `[H, W]` in [-1, 1] across the canvas; a coordinate g lands on
    pixel `((g + 1) * size - 1) / 2`.
    """
    _, h, w, _ = canvas.shape
    px = ((gx + 1) * w - 1) / 2
    py = ((gy + 1) * h - 1) / 2

    def gather(iy, ix):
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        values = canvas[:, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1), :]
        return values * inside[None, :, :, None]

    if mode == "nearest":
        return gather(np.rint(py).astype(int), np.rint(px).astype(int))
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = (px - x0)[None, :, :, None], (py - y0)[None, :, :, None]
    return (gather(y0, x0) * (1 - fx) * (1 - fy) + gather(y0, x0 + 1) * fx * (1 - fy)
            + gather(y0 + 1, x0) * (1 - fx) * fy + gather(y0 + 1, x0 + 1) * fx * fy)


def rotate(images, angle, up=ROTATION_UP, amax=FILTER_AMAX):
    """Rotate `[N, H, W, C]` images by `angle` (radians) with band-limited resampling.

    Upsample `up`x with `affine_filter(rotation_matrix(angle), up)` (zero
    insertion, padding, true convolution, gain up^2: size `up * H + 2p`,
    p = amax * up - 1), then bilinear-sample the output grid mapped by
    `inverse(M)` (adjusted for the padding and the half-pixel offset).
    Returns `(rotated, mask)`; the mask is the canvas minus a border of
    2p + 1 pixels, sampled with nearest.
    """
    x = np.asarray(images, np.float64)
    n, h, w, c = x.shape
    m = rotation_matrix(angle)
    kernel = affine_filter(m, up, amax=amax)
    p = (kernel.shape[0] - 1) // 2  # 23 for up 4
    zeros = np.zeros((n, h * up, w * up, c))
    zeros[:, ::up, ::up, :] = x
    # upfirdn2d with padding (2p + 2, 2p - 2) = (48, 44) and a true convolution
    # is the 'full' convolution of the zero-inserted image from index -2 on.
    k = kernel.shape[0]
    size_h, size_w = up * h + 2 * p, up * w + 2 * p
    canvas = _crop_or_pad(_convolve_same_channels(zeros, kernel) * (up * up),
                          (k - 1) - (2 * p + 2), size_h, size_w)

    theta = np.linalg.inv(m)[:2, :]
    theta[0, 2] += 1 / (up * w)
    theta[1, 2] += 1 / (up * h)
    theta[0, :] *= w / (w + 2 * p / up)
    theta[1, :] *= h / (h + 2 * p / up)
    ox = (2 * np.arange(w) + 1) / w - 1
    oy = (2 * np.arange(h) + 1) / h - 1
    gx0, gy0 = np.meshgrid(ox, oy)
    gx = theta[0, 0] * gx0 + theta[0, 1] * gy0 + theta[0, 2]
    gy = theta[1, 0] * gx0 + theta[1, 1] * gy0 + theta[1, 2]
    rotated = _grid_sample(canvas, gx, gy, "bilinear")

    border = 2 * p + 1
    canvas_mask = np.zeros((1, size_h, size_w, 1))
    canvas_mask[:, border:size_h - border, border:size_w - border, :] = 1
    mask = _grid_sample(canvas_mask, gx, gy, "nearest")
    return rotated, np.broadcast_to(mask, rotated.shape).copy()


def _crop_or_pad(x, start, size_h, size_w):
    """`x[:, start:start + size_h, start:start + size_w]`, zero-padded where out of range."""
    out = np.zeros((x.shape[0], size_h, size_w, x.shape[3]))
    h, w = x.shape[1], x.shape[2]
    ys, xs = max(start, 0), max(start, 0)
    ye, xe = min(start + size_h, h), min(start + size_w, w)
    out[:, ys - start:ye - start, xs - start:xe - start] = x[:, ys:ye, xs:xe]
    return out


def pseudo_rotate(images, angle, amax=FILTER_AMAX):
    """Filter `[N, H, W, C]` images with `affine_filter(rotation_matrix(-angle), 1)`.

    Same size (pad amax - 1 on every side, true convolution). Returns
    `(filtered, mask)`; the mask excludes a border of amax - 1 pixels.
    """
    x = np.asarray(images, np.float64)
    _, h, w, _ = x.shape
    kernel = affine_filter(rotation_matrix(-angle), 1, amax=amax)
    p = (kernel.shape[0] - 1) // 2
    filtered = _convolve_same_channels(x, kernel)[:, p:p + h, p:p + w, :]
    mask = np.zeros((1, h, w, 1))
    mask[:, p:h - p, p:w - p, :] = 1
    return filtered, np.broadcast_to(mask, filtered.shape).copy()


def masked_psnr(a, b, mask):
    """`20 log10(2) - 10 log10(MSE)`, MSE = sum(mask * (a - b)^2) / sum(mask) over everything."""
    a, b, mask = (np.asarray(v, np.float64) for v in (a, b, mask))
    mse = np.sum(mask * np.square(a - b)) / np.sum(mask)
    return float(20 * np.log10(2) - 10 * np.log10(mse))
