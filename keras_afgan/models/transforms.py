"""User transforms of the Fourier-feature input (translate / rotate content)."""

import numpy as np
from keras import ops


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
    """Move what `generator` draws by `translate` (fractions of the image) and rotate it.

    A generator without an input transform (StyleGAN2's learned constant)
    accepts only the identity.
    """
    if not generator.has_input_transform:
        if any(float(t) for t in translate) or float(angle_degrees):
            raise ValueError(
                f"A {type(generator).__name__} has no input transform (its input is a learned "
                f"constant): expected translate=(0, 0) and rotate=0. Received: "
                f"translate={tuple(translate)}, rotate={angle_degrees}")
        return
    m = np.linalg.inv(make_transform(translate, angle_degrees))
    generator.synthesis.input.transform.assign(m.astype(np.float32))


def content_transform_matrices(translate, angle_degrees):
    """Per-sample input transforms that move the content, in keras.ops.

    The batched, differentiable form of `inv(make_transform(translate, angle))`:
    `[[c, -s, -(c tx - s ty)], [s, c, -(s tx + c ty)], [0, 0, 1]]` with
    `c, s = cos, sin(angle)`.

    Args:
        translate: `[N, 2]` content translation (tx, ty), fractions of the image.
        angle_degrees: `[N]` content rotation in degrees.

    Returns:
        `[N, 3, 3]` float32, for `SynthesisNetwork(ws, transform=...)`.
    """
    translate = ops.cast(translate, "float32")
    a = ops.cast(angle_degrees, "float32") * (np.pi / 180)
    c, s = ops.cos(a), ops.sin(a)
    tx, ty = translate[:, 0], translate[:, 1]
    zero, one = ops.zeros_like(c), ops.ones_like(c)
    return ops.stack([
        ops.stack([c, -s, -(c * tx - s * ty)], axis=1),
        ops.stack([s, c, -(s * tx + c * ty)], axis=1),
        ops.stack([zero, zero, one], axis=1),
    ], axis=1)
