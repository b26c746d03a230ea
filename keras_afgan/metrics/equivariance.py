"""EQ-T, EQ-T_frac and EQ-R (Alias-Free GAN, sec. 4 and appendix E).

For a batch of ws, synthesise `orig` with the identity input transform and
again with the input transform set to the inverse of a test transform
(translation t, or rotation by an angle), move `orig` by the matching image
operator (`equivariance_ops`), and report the PSNR between the two over the
valid pixels, `20 log10(2) - 10 log10(MSE)` in dB, all samples pooled. EQ-R
compares both sides after the pseudo-rotation of the rotated synthesis.

The generator's stored `synthesis.input.transform` is left as it is: the
per-sample transforms passed to the synthesis undo it.
"""

import math

import numpy as np
from keras import ops

from keras_afgan.metrics import equivariance_ops
from keras_afgan.models.sampling import inference_scope
from keras_afgan.models.sampling import random_latents
from keras_afgan.models.transforms import content_transform_matrices

EQ_METRICS = ("eqt50k_int", "eqt50k_frac", "eqr50k")
MAX_TRANSLATE = 0.125


def transformed_synthesis(G, ws, translate=(0.0, 0.0), angle=0.0):
    """G's synthesis of `ws` with the input transform set to the inverse of the test transform.

    Args:
        G: a `Generator`.
        ws: `[N, num_ws, w_dim]`.
        translate: (tx, ty), fractions of the image (content moves by +t).
        angle: content rotation in radians.

    Returns:
        numpy float64 images `[N, R, R, C]`.
    """
    check_input_transform(G)
    n = ws.shape[0]
    test = ops.convert_to_numpy(content_transform_matrices(
        np.tile(np.asarray(translate, np.float32)[None], (n, 1)),
        np.full((n,), math.degrees(angle), np.float32)))
    # The synthesis applies `stored @ transform`: undo the stored one.
    stored = np.asarray(ops.convert_to_numpy(G.synthesis.input.transform), np.float64)
    transforms = (np.linalg.inv(stored) @ test).astype(np.float32)
    with inference_scope():
        # The stored per-pixel noise (where a generator has noise inputs), as
        # the reference measures: both sides see the same noise.
        images = G.synthesis(ws, transform=transforms, noise_mode="const")
    return np.asarray(ops.convert_to_numpy(images), np.float64)


def check_input_transform(G):
    """Raise unless `G` has an input transform for the EQ metrics to move."""
    if not G.has_input_transform:
        raise ValueError(
            f"EQ-T, EQ-T_frac and EQ-R move the content through the generator's input transform. "
            f"A {type(G).__name__} (StyleGAN2, config A) has a learned constant input and no "
            "input transform, so there is nothing to move: these metrics do not apply to it.")


def _mapping(G, z, c):
    return G.mapping(ops.convert_to_tensor(np.asarray(z, np.float32)),
                     None if c is None else ops.convert_to_tensor(np.asarray(c, np.float32)))


def _check_batch(G, z, c):
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != G.z_dim:
        raise ValueError(f"Expected z of shape [N, {G.z_dim}]. Received shape: {z.shape}")
    if G.c_dim and (c is None or np.shape(c) != (z.shape[0], G.c_dim)):
        raise ValueError(f"Expected c of shape [{z.shape[0]}, {G.c_dim}] for this conditional "
                         f"generator. Received: {None if c is None else np.shape(c)}")


class _Pooled:
    """Sums of masked squared errors and of masks over batches."""

    def __init__(self):
        self.error = 0.0
        self.count = 0.0

    def add(self, a, b, mask):
        self.error += float(np.sum(mask * np.square(a - b)))
        self.count += float(np.sum(mask))

    def psnr(self):
        if self.count == 0:
            raise ValueError("No valid pixels: the transform moved the whole image out of view.")
        return float(20 * np.log10(2) - 10 * np.log10(self.error / self.count))


def _eqt_batch(G, ws, tx, ty, integer, pooled):
    size = G.img_resolution
    if integer:  # the synthesis moves by the same whole pixels as the reference image
        tx, ty = round(tx * size) / size, round(ty * size) / size
    orig = transformed_synthesis(G, ws)
    moved = transformed_synthesis(G, ws, (tx, ty))
    operator = (equivariance_ops.translate_integer if integer
                else equivariance_ops.translate_fractional)
    ref, mask = operator(orig, tx, ty)
    pooled.add(moved, ref, mask)


def _eqr_batch(G, ws, angle, pooled):
    orig = transformed_synthesis(G, ws)
    rotated = transformed_synthesis(G, ws, angle=angle)
    ref, ref_mask = equivariance_ops.rotate(orig, angle)
    pseudo, pseudo_mask = equivariance_ops.pseudo_rotate(rotated, angle)
    pooled.add(pseudo, ref, ref_mask * pseudo_mask)


def eqt_psnr(G, z, c=None, tx=0.0, ty=0.0, integer=True):
    """EQ-T (integer=True; t rounded to whole pixels) or EQ-T_frac for one batch, in dB.

    Args:
        G: a `Generator` (psi 1).
        z: `[N, z_dim]` latents; c: `[N, c_dim]` labels or None.
        tx, ty: translation, fractions of the image.
        integer: whole-pixel translation (EQ-T) or fractional (EQ-T_frac).
    """
    _check_batch(G, z, c)
    pooled = _Pooled()
    _eqt_batch(G, _mapping(G, z, c), tx, ty, integer, pooled)
    return pooled.psnr()


def eqr_psnr(G, z, c=None, angle=0.0):
    """EQ-R for one batch, in dB: rotation by `angle` radians vs the pseudo-rotated synthesis."""
    _check_batch(G, z, c)
    pooled = _Pooled()
    _eqr_batch(G, _mapping(G, z, c), angle, pooled)
    return pooled.psnr()


def sampled_equivariance(G, metric, num=50000, batch_size=4, seed=0, labels=None):
    """`eqt50k_int`, `eqt50k_frac` or `eqr50k` over `num` samples (pooled), in dB.

    z ~ N(0, 1); one test transform per batch: t uniform in
    [-0.125, 0.125]^2, angle uniform in [-pi, pi]. `labels` `[M, c_dim]`
    (e.g. the dataset's) are drawn for conditional models; without them,
    classes are drawn uniformly.
    """
    check_input_transform(G)
    if metric not in EQ_METRICS:
        raise ValueError(f"Expected metric in {EQ_METRICS}. Received: {metric!r}")
    if int(num) < 1 or int(batch_size) < 1:
        raise ValueError(f"Expected num and batch_size >= 1. Received: {num}, {batch_size}")
    rng = np.random.default_rng(seed)
    pooled = _Pooled()
    done = 0
    while done < num:
        n = min(batch_size, num - done)
        ws = _mapping(G, *random_latents(G, n, rng, labels))
        if metric == "eqr50k":
            _eqr_batch(G, ws, rng.uniform(-np.pi, np.pi), pooled)
        else:
            tx, ty = rng.uniform(-MAX_TRANSLATE, MAX_TRANSLATE, size=2)
            _eqt_batch(G, ws, tx, ty, metric == "eqt50k_int", pooled)
        done += n
    return pooled.psnr()
