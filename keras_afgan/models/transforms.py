"""User transforms of the Fourier-feature input (translate / rotate content)."""

import numpy as np


def make_transform(translate=(0.0, 0.0), angle_degrees=0.0):
    """The 3x3 matrix that rotates by `angle_degrees` and translates by `translate`.

    Assign `np.linalg.inv(make_transform(...))` to `G.synthesis.input.transform`
    to move the generated content by that translation and rotation (the input
    grid moves the other way); see `set_content_transform`.
    """
    a = np.deg2rad(float(angle_degrees))
    s, c = np.sin(a), np.cos(a)
    tx, ty = (float(t) for t in translate)
    return np.array([[c, s, tx], [-s, c, ty], [0, 0, 1]], dtype=np.float64)


def set_content_transform(generator, translate=(0.0, 0.0), angle_degrees=0.0):
    """Move what `generator` draws by `translate` (fractions of the image) and rotate it."""
    m = np.linalg.inv(make_transform(translate, angle_degrees))
    generator.synthesis.input.transform.assign(m.astype(np.float32))
