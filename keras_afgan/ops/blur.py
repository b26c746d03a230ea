"""Gaussian-like blur of the discriminator input (config R)."""

import math

import numpy as np
from keras import ops

from keras_afgan.ops.filter_design import gaussian_blur_filter
from keras_afgan.ops.upfirdn2d import upfirdn2d


def blur_images(images, sigma, max_sigma=None):
    """Blur `[N, H, W, C]` images with `exp2(-(x/sigma)^2)`, same size.

    The filter has taps at |x| <= floor(3 sigma), is normalised to sum 1 and
    runs separably with zero padding; `sigma <= 0` leaves the images as they
    are.

    Args:
        images: `[N, H, W, C]`.
        sigma: a Python number (the filter is a constant), or a scalar tensor
            (a training schedule: one compiled graph serves every sigma; once
            `floor(3 sigma)` is 0 the images pass through untouched).
        max_sigma: with a tensor `sigma`, the largest sigma it can take; it
            fixes the filter support at `floor(3 max_sigma)`.
    """
    if isinstance(sigma, (int, float, np.floating, np.integer)):
        f = gaussian_blur_filter(sigma)
        if f is None:
            return images
        radius = (f.shape[0] - 1) // 2
        return upfirdn2d(images, f, padding=radius)
    if max_sigma is None:
        raise ValueError("Expected max_sigma with a tensor sigma. Received: max_sigma=None")
    radius = int(math.floor(3 * max_sigma))
    sigma = ops.cast(sigma, "float32")
    # Once floor(3 sigma) is 0 the filter is the identity: skip it (the
    # reference does too) rather than multiply by identity matrices.
    return ops.cond(ops.floor(3 * sigma) > 0, lambda: _blur(images, sigma, radius),
                    lambda: images)


def _blur(images, sigma, radius):
    """`blur_images` for a tensor sigma with taps at |x| <= `radius`, masked to floor(3 sigma)."""
    taps = ops.convert_to_tensor(np.arange(-radius, radius + 1, dtype=np.float32))
    safe_sigma = ops.maximum(sigma, 1e-8)
    f = ops.where(ops.abs(taps) <= ops.floor(3 * safe_sigma),
                  ops.exp2(-ops.square(taps / safe_sigma)), 0.0)
    identity = ops.cast(taps == 0, "float32")
    f = ops.where(sigma > 0, f / ops.sum(f), identity)
    # Same-size convolution along one axis as a banded [out, in] matrix.
    blurred = images
    for axis in (2, 1):
        size = int(images.shape[axis])
        offset = np.arange(size)[None, :] - np.arange(size)[:, None]  # in - out
        index = ops.convert_to_tensor(np.clip(offset + radius, 0, 2 * radius).astype(np.int32))
        valid = ops.convert_to_tensor(np.abs(offset) <= radius)
        # True convolution: out[o] = sum_k f[k] x[o - (k - radius)], i.e. f[radius - (i - o)].
        matrix = ops.where(valid, ops.take(ops.flip(f, 0), index), 0.0)
        matrix = ops.cast(matrix, blurred.dtype)
        if axis == 2:
            blurred = ops.einsum("nhwc,vw->nhvc", blurred, matrix)
        else:
            blurred = ops.einsum("nhwc,uh->nuwc", blurred, matrix)
    return blurred
