"""Frames for videos of a generator: latent interpolation and translation/rotation sweeps.

A sweep moves each sample's content through the Fourier input's transform
(the ws stay fixed): in an alias-free generator the details move with the
content, while "texture sticking" (details glued to the pixel grid) shows as
details standing still while the face moves.
"""

import math

import numpy as np
from keras import ops

from keras_afgan.images import to_uint8
from keras_afgan.models.sampling import class_labels
from keras_afgan.models.sampling import inference_scope
from keras_afgan.models.sampling import seed_latents
from keras_afgan.models.transforms import content_transform_matrices


def tile(frames, rows, cols):
    """`[T, rows * cols, H, W, C]` -> `[T, rows * H, cols * W, C]`."""
    t, n, h, w, c = frames.shape
    if n != rows * cols:
        raise ValueError(f"Expected {rows * cols} samples for a {rows}x{cols} grid. Received: {n}")
    return frames.reshape(t, rows, cols, h, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        t, rows * h, cols * w, c)


def _synthesize(G, ws, transforms=None, batch_size=8):
    out = []
    for i in range(0, len(ws), batch_size):
        extra = {} if transforms is None else {"transform": transforms[i:i + batch_size]}
        with inference_scope():
            # The stored per-pixel noise (StyleGAN2): frames differ only by what moves.
            images = G.synthesis(ws[i:i + batch_size], noise_mode="const", **extra)
        out.append(ops.convert_to_numpy(to_uint8(images)))
    return np.concatenate(out)


def interpolation_frames(G, seeds, frames_per_seed=30, truncation_psi=1.0, class_idx=None):
    """Loop through the seeds' ws with cosine-eased linear interpolation.

    Returns uint8 frames `[len(seeds) * frames_per_seed, R, R, C]`.
    """
    if len(seeds) < 2:
        raise ValueError(f"Expected at least two seeds to interpolate. Received: {seeds}")
    z = seed_latents(G, seeds)
    ws = ops.convert_to_numpy(G.mapping(z, class_labels(G, len(seeds), class_idx),
                                        truncation_psi=truncation_psi))
    frames = []
    for i in range(len(seeds)):
        a, b = ws[i], ws[(i + 1) % len(seeds)]
        s = (1 - np.cos(np.linspace(0, np.pi, frames_per_seed, endpoint=False))) / 2
        frames.append(_synthesize(G, (a[None] + s[:, None, None] * (b - a)[None]).astype(np.float32)))
    return np.concatenate(frames)


def sweep_transforms(mode, num_frames, max_translate=0.25, max_angle=360.0):
    """Per-frame content (translate [T, 2], angle [T] degrees) of a sweep.

    `translate`: a circle of radius `max_translate` (fractions of the image);
    `rotate`: angles from 0 to `max_angle` degrees.
    """
    phase = np.arange(num_frames) / num_frames * 2 * math.pi
    if mode == "translate":
        translate = max_translate * np.stack([np.sin(phase), 1 - np.cos(phase)], axis=1)
        return translate.astype(np.float32), np.zeros(num_frames, np.float32)
    if mode == "rotate":
        angle = np.arange(num_frames) / num_frames * max_angle
        return np.zeros((num_frames, 2), np.float32), angle.astype(np.float32)
    raise ValueError(f"Expected a sweep mode 'translate' or 'rotate'. Received: {mode!r}")


def sweep_frames(G, seeds, mode, num_frames=60, truncation_psi=1.0, class_idx=None,
                 max_translate=0.25, max_angle=360.0, translate=None, angle=None):
    """Frames `[T, len(seeds), R, R, C]` of the seeds' images under a content sweep.

    `translate` `[T, 2]` / `angle` `[T]` (degrees) override the sweep of `mode`.
    """
    if not G.has_input_transform:
        raise ValueError(
            f"A {type(G).__name__} has a learned constant input and no input transform to "
            "sweep: use an interpolation video for it.")
    if translate is None or angle is None:
        translate, angle = sweep_transforms(mode, num_frames, max_translate, max_angle)
    z = seed_latents(G, seeds)
    ws = ops.convert_to_numpy(G.mapping(z, class_labels(G, len(seeds), class_idx),
                                        truncation_psi=truncation_psi))
    n = len(seeds)
    frames = []
    for t, a in zip(np.asarray(translate, np.float32), np.asarray(angle, np.float32)):
        transforms = content_transform_matrices(np.tile(t[None], (n, 1)), np.full((n,), a))
        frames.append(_synthesize(G, ws, transforms))
    return np.stack(frames)


def write_video(frames, path, fps=30):
    """Write uint8 frames `[T, H, W, C]` as `.gif` (Pillow) or `.mp4` (imageio-ffmpeg)."""
    import os

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"Expected uint8 frames [T, H, W, 1 or 3]. Received: dtype={frames.dtype}, "
                         f"shape={frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    ext = os.path.splitext(path)[1].lower()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                       duration=max(1, round(1000 / fps)))
    elif ext == ".mp4":
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio uses)
        except ImportError as error:
            raise ImportError("Writing .mp4 needs imageio and imageio-ffmpeg "
                              "(pip install imageio imageio-ffmpeg); or write a .gif.") from error
        # Even sizes for yuv420p; macro_block_size=1 keeps the exact size when already even.
        h, w = frames.shape[1:3]
        frames = np.pad(frames, [[0, 0], [0, h % 2], [0, w % 2], [0, 0]], mode="edge")
        with imageio.get_writer(path, fps=fps, codec="libx264", quality=8,
                                macro_block_size=1, pixelformat="yuv420p") as writer:
            for frame in frames:
                writer.append_data(frame)
    else:
        raise ValueError(f"Expected a video path ending in .mp4 or .gif. Received: {path!r}")
    return path
