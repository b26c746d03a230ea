"""Fourier-feature input of the synthesis network (Alias-Free GAN, sec. 3.1)."""

import math

import keras
import numpy as np
from keras import ops

from keras_afgan.layers.dense import EqualizedDense


def fourier_frequencies(channels, bandwidth, seed=None):
    """Random frequencies `[channels, 2]` and phases `[channels]` (numpy).

    Directions are Gaussian; the radius is shaped by
    `1 / (|f| * exp(|f|^2)^(1/4))` and scaled by the bandwidth `f_c,0`.
    Phases are uniform in [-0.5, 0.5).
    """
    rng = np.random.default_rng(seed)
    freqs = rng.standard_normal((channels, 2))
    radii = np.sqrt(np.sum(np.square(freqs), axis=1, keepdims=True))
    freqs = freqs / (radii * np.power(np.exp(np.square(radii)), 0.25)) * bandwidth
    phases = rng.uniform(size=channels) - 0.5
    return freqs.astype(np.float32), phases.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_afgan")
class SynthesisInput(keras.layers.Layer):
    """Spatially infinite Fourier features, sampled on a `size`^2 grid.

    Steps: map w_0 to (r_c, r_s, t_x, t_y) with a dense layer (weights 0, bias
    [1, 0, 0, 0]); normalise by |(r_c, r_s)|; `T = M_rot @ M_trans @ transform`;
    `phases += freqs @ T[:2, 2]`, `freqs = freqs @ T[:2, :2]`; fade out
    frequencies pushed above the band: `clip(1 - (|f| - bw) / (s/2 - bw), 0, 1)`;
    sample `sin(2 pi (grid . f + phase))` at `(j + 0.5 - size/2) / s`; mix the
    channels with a trainable `[C, C]` matrix / sqrt(C).

    `transform` is a non-trainable 3x3 user transform (identity by default):
    assign a translation or rotation to move the generated image's content
    (used at generation time and by the equivariance metrics). `call` also
    takes a per-sample `transform` `[N, 3, 3]` applied after the stored one
    (`T = M_rot @ M_trans @ self.transform @ transform`), as the exported
    `synthesis` signature does with its translate/rotate inputs.

    Args:
        w_dim: width of w.
        channels: number of Fourier features C.
        size: grid size (pixels per side).
        sampling_rate: s, samples per unit.
        bandwidth: f_c of the first layer, the largest frequency radius.
        seed: seed for the random frequencies and phases.
        transformed: whether w_0 rotates and translates the features (the
            paper's config H). False: no affine layer; only the user
            transforms move them (the ablation `fixed_fourier`).
    """

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth, seed=None,
                 transformed=True, **kwargs):
        super().__init__(**kwargs)
        self.w_dim = int(w_dim)
        self.channels = int(channels)
        self.size = int(size)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        self.seed = seed
        self.transformed = bool(transformed)
        self.affine = None
        if self.transformed:
            self.affine = EqualizedDense(4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0],
                                         dtype=self.dtype_policy, name="affine")

    def build(self, input_shape=None):
        freqs, phases = fourier_frequencies(self.channels, self.bandwidth, self.seed)
        if self.affine is not None:
            self.affine.build((None, self.w_dim))
        self.kernel = self.add_weight(
            name="kernel", shape=(self.channels, self.channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
        )
        self.transform = self.add_weight(
            name="transform", shape=(3, 3), initializer="identity", trainable=False, autocast=False,
        )
        self.freqs = self.add_weight(
            name="freqs", shape=(self.channels, 2), trainable=False, autocast=False,
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(freqs, dtype=dtype),
        )
        self.phases = self.add_weight(
            name="phases", shape=(self.channels,), trainable=False, autocast=False,
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(phases, dtype=dtype),
        )

    def call(self, w, transform=None):
        if self.affine is None:  # untransformed: the identity's (1, 0, 0, 0) per sample
            t = ops.cast(ops.stack([ops.ones_like(w[:, 0])] + [ops.zeros_like(w[:, 0])] * 3,
                                   axis=1), "float32")
        else:
            t = ops.cast(self.affine(w), "float32")  # [N, 4]
        t = t / ops.sqrt(ops.sum(ops.square(t[:, :2]), axis=1, keepdims=True))
        rc, rs, tx, ty = t[:, 0], t[:, 1], t[:, 2], t[:, 3]
        zero, one = ops.zeros_like(rc), ops.ones_like(rc)
        # M_rot @ M_trans, with M_rot = [[rc, -rs], [rs, rc]] and translation (-tx, -ty).
        m = ops.stack([
            ops.stack([rc, -rs, -rc * tx + rs * ty], axis=1),
            ops.stack([rs, rc, -rs * tx - rc * ty], axis=1),
            ops.stack([zero, zero, one], axis=1),
        ], axis=1)  # [N, 3, 3]
        if transform is None:
            transforms = ops.einsum("nij,jk->nik", m, self.transform)
        else:
            if len(transform.shape) != 3 or tuple(transform.shape[1:]) != (3, 3):
                raise ValueError(f"Expected transform of shape [N, 3, 3]. "
                                 f"Received: shape={tuple(transform.shape)}")
            user = ops.einsum("ij,njk->nik", self.transform, ops.cast(transform, "float32"))
            transforms = ops.einsum("nij,njk->nik", m, user)
        phases = self.phases[None, :] + ops.einsum("cj,nj->nc", self.freqs, transforms[:, :2, 2])
        freqs = ops.einsum("cj,njk->nck", self.freqs, transforms[:, :2, :2])  # [N, C, 2]
        norm = ops.sqrt(ops.sum(ops.square(freqs), axis=2))
        amplitudes = ops.clip(
            1 - (norm - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth), 0, 1)

        grid = (np.arange(self.size) + 0.5 - self.size / 2) / self.sampling_rate
        grid = ops.convert_to_tensor(grid.astype(np.float32))
        x = (grid[None, None, :, None] * freqs[:, None, None, :, 0]
             + grid[None, :, None, None] * freqs[:, None, None, :, 1]
             + phases[:, None, None, :])  # [N, H, W, C]
        x = ops.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = ops.cast(x, self.compute_dtype)
        return ops.einsum("nhwi,io->nhwo", x, self.kernel / math.sqrt(self.channels))

    def get_config(self):
        config = super().get_config()
        config.update({
            "w_dim": self.w_dim,
            "channels": self.channels,
            "size": self.size,
            "sampling_rate": self.sampling_rate,
            "bandwidth": self.bandwidth,
            "seed": self.seed,
            "transformed": self.transformed,
        })
        return config
