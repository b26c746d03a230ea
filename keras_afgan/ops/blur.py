"""Gaussian-like blur of the discriminator input (config R)."""

from keras_afgan.ops.filter_design import gaussian_blur_filter
from keras_afgan.ops.upfirdn2d import upfirdn2d


def blur_images(images, sigma):
    """Blur `[N, H, W, C]` images with `exp2(-(x/sigma)^2)`, same size.

    The filter has radius `floor(3 sigma)`, is normalised to sum 1 and runs
    separably with zero padding. `sigma <= 0` returns the images unchanged.
    `sigma` is a Python float: the blur is a constant of the training
    schedule, recompiled when it changes.
    """
    f = gaussian_blur_filter(sigma)
    if f is None:
        return images
    radius = (f.shape[0] - 1) // 2
    return upfirdn2d(images, f, padding=radius)
