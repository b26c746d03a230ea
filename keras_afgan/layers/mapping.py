"""Mapping network: z (and label c) to intermediate latents w."""

import keras
from keras import ops

from keras_afgan.layers.dense import EqualizedDense
from keras_afgan.layers.statistics import batch_mean


def normalize_2nd_moment(x, eps=1e-8):
    """`x * rsqrt(mean(x^2) + eps)` over the last axis."""
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + eps)


def check_width(name, x, expected):
    """Raise a ValueError unless `x` is `[N, expected]`."""
    shape = tuple(x.shape)
    if len(shape) != 2 or (shape[1] is not None and int(shape[1]) != expected):
        raise ValueError(f"Expected {name} of shape [N, {expected}]. Received: shape={shape}")


@keras.saving.register_keras_serializable(package="keras_afgan")
class MappingNetwork(keras.layers.Layer):
    """StyleGAN mapping network (docs/design.md section 2).

    Steps: RMS-normalise z; for a conditional model embed c with a dense
    layer (learning-rate multiplier 1), RMS-normalise it and concatenate;
    `num_layers` lrelu dense layers with `lr_multiplier`; with `num_ws`, track
    `w_avg` (on `update_emas`), broadcast to `num_ws` copies and apply the
    truncation trick `w_avg + (w - w_avg) * psi` to the first
    `truncation_cutoff` copies.

    The discriminator's label mapping is the same network with `z_dim=0`,
    `num_ws=None` and 8 layers.

    Args:
        z_dim: latent width (0 for none).
        c_dim: label width (0 for unconditional).
        w_dim: output width.
        num_ws: number of w copies, or `None` to return `[N, w_dim]`.
        num_layers: dense layers after the input.
        lr_multiplier: learning-rate multiplier of those layers.
        w_avg_beta: decay of the `w_avg` moving average (with `num_ws`).
    """

    def __init__(self, z_dim, c_dim, w_dim, num_ws=None, num_layers=2, lr_multiplier=0.01,
                 w_avg_beta=0.998, **kwargs):
        super().__init__(**kwargs)
        if z_dim == 0 and c_dim == 0:
            raise ValueError("Expected z_dim > 0 or c_dim > 0. Received: z_dim=0, c_dim=0")
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.num_ws = None if num_ws is None else int(num_ws)
        self.num_layers = int(num_layers)
        self.lr_multiplier = float(lr_multiplier)
        self.w_avg_beta = w_avg_beta
        self.embed = None
        if self.c_dim > 0:
            self.embed = EqualizedDense(self.w_dim, dtype=self.dtype_policy, name="embed")
        self.fcs = [
            EqualizedDense(self.w_dim, activation="lrelu", lr_multiplier=self.lr_multiplier,
                           dtype=self.dtype_policy, name=f"fc{i}")
            for i in range(self.num_layers)
        ]

    def build(self, input_shape=None):
        features = self.z_dim
        if self.embed is not None:
            self.embed.build((None, self.c_dim))
            features += self.w_dim
        for fc in self.fcs:
            fc.build((None, features))
            features = self.w_dim
        self.w_avg = None
        if self.num_ws is not None:
            self.w_avg = self.add_weight(name="w_avg", shape=(self.w_dim,), initializer="zeros",
                                         trainable=False, autocast=False)

    def call(self, z=None, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        parts = []
        if self.z_dim > 0:
            if z is None:
                raise ValueError(f"Expected z of shape [N, {self.z_dim}]. Received: None")
            check_width("z", z, self.z_dim)
            parts.append(normalize_2nd_moment(ops.cast(z, self.compute_dtype)))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(
                    f"This model is conditional: expected labels c of shape [N, {self.c_dim}]. "
                    "Received: None"
                )
            check_width("c", c, self.c_dim)
            parts.append(normalize_2nd_moment(self.embed(ops.cast(c, self.compute_dtype))))
        elif c is not None and len(c.shape) == 2 and c.shape[1] not in (0, None):
            raise ValueError(
                f"This model is unconditional: expected c of shape [N, 0] or None. "
                f"Received: shape={tuple(c.shape)}"
            )
        x = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        for fc in self.fcs:
            x = fc(x)
        if self.num_ws is None:
            return x
        if update_emas:
            mean = batch_mean(ops.cast(x, "float32"), axis=0)
            self.w_avg.assign(mean + (self.w_avg - mean) * self.w_avg_beta)
        x = ops.repeat(x[:, None, :], self.num_ws, axis=1)  # [N, num_ws, w_dim]
        return self.truncate(x, truncation_psi, truncation_cutoff)

    def truncate(self, ws, truncation_psi=1.0, truncation_cutoff=None):
        """`w_avg + (ws - w_avg) * psi` on the first `truncation_cutoff` ws.

        `truncation_psi` is a Python number or a tensor of shape `[]` or `[N]`
        (one psi per sample, as the serving signature sends it).
        """
        if truncation_cutoff is not None and (
                isinstance(truncation_cutoff, bool) or int(truncation_cutoff) != truncation_cutoff
                or truncation_cutoff < 0):
            raise ValueError(
                f"Expected truncation_cutoff to be None or an integer >= 0. "
                f"Received: {truncation_cutoff}"
            )
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        w_avg = ops.cast(self.w_avg, ws.dtype)
        psi = ops.cast(truncation_psi, ws.dtype)
        if len(psi.shape) == 1:
            psi = psi[:, None, None]
        truncated = w_avg + (ws - w_avg) * psi
        if truncation_cutoff is None or truncation_cutoff >= self.num_ws:
            return truncated
        mask = (ops.arange(self.num_ws) < int(truncation_cutoff))[None, :, None]
        return ops.where(mask, truncated, ws)

    def get_config(self):
        config = super().get_config()
        config.update({
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "num_layers": self.num_layers,
            "lr_multiplier": self.lr_multiplier,
            "w_avg_beta": self.w_avg_beta,
        })
        return config
