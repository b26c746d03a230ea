"""Random latents and batches of generated images, for metrics and tools."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_afgan.images import to_uint8
from keras_afgan.models.transforms import set_content_transform


def inference_scope():
    """A context in which the networks record no gradients (for generating images).

    `torch.no_grad()` on torch, where `filtered_lrelu` then takes its CPU
    inference path (`keras_afgan.ops.torch_kernels`, ~2x faster on the 64 px
    bench); nothing on TensorFlow and JAX, which record gradients only when
    asked to.
    """
    if keras.config.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def seed_latents(G, seeds):
    """z `[len(seeds), z_dim]`, one `np.random.RandomState(seed).randn(z_dim)` per seed
    (how the reference draws z for a seed)."""
    return np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds]).astype(np.float32)


def class_labels(G, n, class_idx):
    """`[n, c_dim]` one-hot rows of class `class_idx` (zero-width for an unconditional G).

    A conditional G needs a class index in [0, c_dim); an unconditional one
    accepts None or 0.
    """
    if G.c_dim and class_idx is None:
        raise ValueError(
            f"This generator is conditional (c_dim={G.c_dim}): expected a class index "
            "(--class). Received: None")
    if class_idx is not None and not 0 <= class_idx < max(G.c_dim, 1):
        raise ValueError(f"Expected a class index in [0, {G.c_dim}). Received: {class_idx}")
    c = np.zeros((n, G.c_dim), np.float32)
    if G.c_dim:
        c[:, class_idx] = 1
    return c


def random_latents(G, n, rng, labels=None):
    """z `[n, z_dim]` ~ N(0, 1) and c: rows of `labels` `[M, c_dim]` drawn at random, or
    uniform one-hot classes for a conditional G without labels; None for an unconditional G."""
    z = rng.standard_normal((n, G.z_dim)).astype(np.float32)
    if not G.c_dim:
        return z, None
    if labels is not None:
        return z, np.asarray(labels, np.float32)[rng.integers(len(labels), size=n)]
    return z, np.eye(G.c_dim, dtype=np.float32)[rng.integers(G.c_dim, size=n)]


def generated_batches(G, num, batch_size=16, seed=0, truncation_psi=1.0, labels=None):
    """Yield uint8 image batches `[n, R, R, C]` (`keras_afgan.images.to_uint8`), `num` in all."""
    if int(num) < 1 or int(batch_size) < 1:
        raise ValueError(f"Expected num and batch_size >= 1. Received: {num}, {batch_size}")
    rng = np.random.default_rng(seed)
    for start in range(0, int(num), int(batch_size)):
        z, c = random_latents(G, min(int(batch_size), int(num) - start), rng, labels)
        with inference_scope():
            pixels = to_uint8(G(z, c, truncation_psi=truncation_psi))
        yield ops.convert_to_numpy(pixels)


def generate_images(generator, seeds, truncation_psi=1.0, class_idx=None, translate=(0, 0),
                    rotate=0.0, noise_mode="const"):
    """Images `[len(seeds), R, R, C]` for integer seeds, as the reference draws z.

    `noise_mode`: a StyleGAN2 generator's per-pixel noise, "const" (its
    stored noise: an image per seed, the reference's `gen_images.py`
    default), "random" or "none".
    """
    c = class_labels(generator, len(seeds), class_idx)
    set_content_transform(generator, translate, rotate)
    with inference_scope():
        return ops.convert_to_numpy(generator(seed_latents(generator, seeds), c,
                                              truncation_psi=truncation_psi,
                                              noise_mode=noise_mode))
