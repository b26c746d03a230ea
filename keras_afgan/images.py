"""Generator output as 8-bit pixels and PNG files: the one conversion every tool uses.

`to_uint8` is written in keras.ops so the exported serving signatures trace
the very function that the image files, metrics and videos use; the rest
are numpy and PIL. It sits below models, training, metrics, export and
visualize, which all import it from here.
"""

import numpy as np
from keras import ops


def to_uint8(images):
    """`[N, H, W, C]` floats around [-1, 1] to uint8: `img * 127.5 + 128`, clipped, truncated.

    In float32, in keras.ops (a backend tensor in, one out; traceable). The
    +128 (not +127.5) makes the truncation round to nearest, as the
    reference does.
    """
    pixels = ops.clip(ops.floor(ops.cast(images, "float32") * 127.5 + 128), 0, 255)
    return ops.cast(pixels, "uint8")


def to_uint8_array(images):
    """`to_uint8` for numpy: a numpy uint8 array of `images`' shape."""
    return np.asarray(ops.convert_to_numpy(to_uint8(np.asarray(images, np.float32))))


def from_uint8(pixels, dtype=np.float32):
    """uint8 pixels (a numpy array) to floats in [-1, 1]: `x / 127.5 - 1` (the
    training data's range)."""
    return np.asarray(pixels).astype(dtype) / 127.5 - 1


def save_image_grid(images, path, grid_shape):
    """Save `[N, H, W, C]` images (N = rows * cols) as one PNG grid."""
    from PIL import Image

    rows, cols = grid_shape
    images = to_uint8_array(images)
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"Expected {rows * cols} images for a {rows}x{cols} grid. Received: {n}")
    grid = images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(path)


def save_image(image, path):
    """Save one `[H, W, C]` image as PNG."""
    from PIL import Image

    image = to_uint8_array(np.asarray(image)[None])[0]
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
