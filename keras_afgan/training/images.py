"""Writing generator output as PNG files."""

import numpy as np


def to_uint8(images):
    """`[N, H, W, C]` floats around [-1, 1] to uint8: `img * 127.5 + 128`, clipped, truncated.

    The +128 (not +127.5) makes the truncation round to nearest, as the
    reference does; the exported serving signature computes the same.
    """
    return np.clip(np.floor(np.asarray(images) * 127.5 + 128), 0, 255).astype(np.uint8)


def save_image_grid(images, path, grid_shape):
    """Save `[N, H, W, C]` images (N = rows * cols) as one PNG grid."""
    from PIL import Image

    rows, cols = grid_shape
    images = to_uint8(images)
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"Expected {rows * cols} images for a {rows}x{cols} grid. Received: {n}")
    grid = images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(path)


def save_image(image, path):
    """Save one `[H, W, C]` image as PNG."""
    from PIL import Image

    image = to_uint8(image[None])[0]
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
