"""ADA's augmentation pipe (Karras et al. 2020) as a Keras layer, in keras.ops.

`AugmentPipe(images)` transforms each image of a batch independently: every
enabled transform fires with probability `p * multiplier` and draws its
parameter at random. In order:

1. Geometric, composed into one inverse 3x3 map per image (output pixel ->
   input pixel, about the image centre): x-flip, 90-degree rotation,
   integer translation, isotropic scale, pre-rotation, anisotropic scale,
   post-rotation, fractional translation. The image is reflect-padded,
   upsampled 2x with a Symlet-6 low-pass, sampled bilinearly at the
   mapped grid, and downsampled 2x with the same filter.
2. Colour, one 4x4 affine map per image: brightness, contrast, luma flip,
   hue rotation about the luma axis, saturation. One-channel images use
   the mean of its RGB rows; a fourth channel (alpha) is left as it is.
3. Image filter: per-band gains of an octave filter bank, power-normalised.
4. Additive Gaussian noise, then cutout (a zeroed rectangle).

The random numbers come from `uniforms` `[N, NUM_DRAWS]` in [0, 1) when
given (keras_afgan's training pipeline draws them keyed by the step, so runs
repeat exactly on every backend and device count), else from the layer's
seed generator; Gaussian draws are `sqrt(2) erfinv(2u - 1)`. Only the
noise's per-pixel values always come from the seed generator.

The padding is the most the reference ever uses (the image size minus one
on each side), the same for every batch: each image depends on its own
draws only. The reference pads a whole batch just enough for its widest
transform, so the two differ only where a sample falls beyond the
reference's border (its zeros).
"""

import math

import keras
import numpy as np
from keras import ops

from keras_afgan.augment import filters
from keras_afgan.ops.upfirdn2d import apply_matrices
from keras_afgan.ops.upfirdn2d import upfirdn2d

# Probability multipliers of the transforms, in the pipe's order.
TRANSFORMS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
              "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")
GEOMETRIC = TRANSFORMS[:7]
COLOR = TRANSFORMS[7:12]
# The parameters the geometric transforms draw (`rotate` draws two angles).
_GEOMETRIC_PARAMETERS = ("xflip", "rotate90", "xint", "scale", "pre_rotate", "aniso",
                         "post_rotate", "xfrac")
# The constructor's numeric settings (multipliers, ranges, deviations), in order.
_NUMBER_SETTINGS = ("xflip", "rotate90", "xint", "xint_max", "scale", "rotate", "aniso", "xfrac",
                    "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness",
                    "contrast", "lumaflip", "hue", "saturation", "brightness_std",
                    "contrast_std", "hue_max", "saturation_std", "imgfilter", "imgfilter_std",
                    "noise", "cutout", "noise_std", "cutout_size")

# The ADA paper's transform sets (`--augpipe`); the reference trains with bgc.
PRESETS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": COLOR,
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": GEOMETRIC,
    "bgc": GEOMETRIC + COLOR,
    "bgcf": GEOMETRIC + COLOR + ("imgfilter",),
    "bgcfn": GEOMETRIC + COLOR + ("imgfilter", "noise"),
    "bgcfnc": TRANSFORMS,
}

# Columns of `uniforms`: each transform's parameter draws, then its gate
# (whether it fires); the image filter has a (value, gate) pair per band.
_COLUMNS = {}
for _name, _count in (("xflip", 2), ("rotate90", 2), ("xint", 3), ("scale", 2),
                      ("pre_rotate", 2), ("aniso", 2), ("post_rotate", 2), ("xfrac", 3),
                      ("brightness", 2), ("contrast", 2), ("lumaflip", 2), ("hue", 2),
                      ("saturation", 2), ("imgfilter", 8), ("noise", 2), ("cutout", 3)):
    _start = sum(len(c) for c in _COLUMNS.values())
    _COLUMNS[_name] = tuple(range(_start, _start + _count))
NUM_DRAWS = sum(len(c) for c in _COLUMNS.values())


def preset_kwargs(name):
    """The `AugmentPipe` multipliers of an `--augpipe` preset ("bgc", ...)."""
    if name not in PRESETS:
        raise ValueError(f"Expected an augmentation preset in {sorted(PRESETS)}. "
                         f"Received: {name!r}")
    return {t: 1 for t in PRESETS[name]}


class _Draws:
    """The pipe's random parameters: from uniforms, or all set by a debug
    percentile `q` (the reference's `debug_percentile`: every transform
    fires, uniform draws are `q`, Gaussian ones `erfinv(2q - 1)`)."""

    def __init__(self, uniforms, debug_percentile):
        self.u = uniforms
        self.q = debug_percentile

    def uniform(self, name, k=0):
        if self.q is not None:
            return self.q * ops.ones_like(self.u[:, 0])
        return self.u[:, _COLUMNS[name][k]]

    def normal(self, name, k=0):
        if self.q is not None:
            return float(_erfinv(2 * self.q - 1)) * ops.ones_like(self.u[:, 0])
        x = ops.clip(2 * self.u[:, _COLUMNS[name][k]] - 1, -1 + 2**-23, 1 - 2**-23)
        return math.sqrt(2) * ops.erfinv(x)

    def fires(self, name, probability, k=-1):
        """`[N]` bool: the transform applies (always, with a debug percentile)."""
        if self.q is not None:
            return ops.ones_like(self.u[:, 0]) > 0
        return self.u[:, _COLUMNS[name][k]] < probability


def _erfinv(x):
    from scipy.special import erfinv

    return erfinv(x)


def _matrix(rows, ones):
    """`[N, R, C]` from rows of scalars and `[N]` tensors."""
    return ops.stack([ops.stack([ones * e for e in row], axis=-1) for row in rows], axis=-2)


def _translate(tx, ty, ones):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], ones)


def _scale(sx, sy, ones):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], ones)


def _rotate(theta, ones):
    c, s = ops.cos(theta), ops.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], ones)


@keras.saving.register_keras_serializable(package="keras_afgan")
class AugmentPipe(keras.layers.Layer):
    """ADA's augmentation pipe on `[N, H, W, C]` images (C = 1, 3 or 4).

    Called as `pipe(images, debug_percentile=None, uniforms=None)`; see the
    module docstring for what it does. Differentiable w.r.t. the images (G's
    loss and R1 flow through it) on every backend, inside compiled steps.

    Args:
        xflip, rotate90, xint, scale, rotate, aniso, xfrac: probability
            multipliers of the geometric transforms (0 disables one).
        xint_max: range of the integer translation, relative to the size.
        scale_std, aniso_std: log2 standard deviations of the scalings.
        rotate_max: range of the rotations (1 = the full circle).
        xfrac_std: standard deviation of the fractional translation,
            relative to the size.
        brightness, contrast, lumaflip, hue, saturation: multipliers of the
            colour transforms.
        brightness_std: standard deviation of the brightness offset.
        contrast_std, saturation_std: log2 standard deviations.
        hue_max: range of the hue rotation (1 = the full circle).
        imgfilter: multiplier of the image filter; `imgfilter_bands` per
            band; `imgfilter_std` the log2 standard deviation of a band's gain.
        noise, noise_std: multiplier and standard deviation of additive noise.
        cutout, cutout_size: multiplier and size (relative) of the cutout.
        p: initial value of the overall probability `p` (a float32
            variable; the reference's buffer starts at 1, training sets it).
        seed: seed of the layer's own random draws.
    """

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125, scale=0, rotate=0, aniso=0,
                 xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0, brightness_std=0.2,
                 contrast_std=0.5, hue_max=1, saturation_std=1, imgfilter=0,
                 imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1, noise=0, cutout=0,
                 noise_std=0.1, cutout_size=0.5, p=1.0, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        arguments = locals()
        for name in _NUMBER_SETTINGS:
            value = arguments[name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
                    math.isfinite(value) and value >= 0):
                raise ValueError(f"Expected {name} to be a finite number >= 0. "
                                 f"Received: {name}={value!r}")
            setattr(self, name, float(value))
        bands = list(imgfilter_bands)
        if len(bands) != 4 or any(not math.isfinite(float(b)) or b < 0 for b in bands):
            raise ValueError("Expected imgfilter_bands to be 4 numbers >= 0 (one per octave "
                             f"band). Received: {imgfilter_bands!r}")
        self.imgfilter_bands = [float(b) for b in bands]
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="augment_seed")
        self.p = self.add_weight(name="p", shape=(), initializer=keras.initializers.Constant(p),
                                 trainable=False, dtype="float32", autocast=False)
        self._initial_p = float(p)
        self.built = True  # its only weight, p, depends on no input shape

    @property
    def enabled(self):
        """The names of the transforms with a nonzero multiplier."""
        return tuple(t for t in TRANSFORMS if getattr(self, t) > 0)

    def call(self, images, debug_percentile=None, uniforms=None):
        x = ops.cast(images, "float32")  # [N, H, W, C]
        h, w, c = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        if c not in (1, 3, 4):
            raise ValueError(f"Expected images with 1, 3 or 4 channels (L, RGB, RGBA). "
                             f"Received: shape={tuple(x.shape)}")
        params = self.parameters(ops.shape(x)[0], uniforms, debug_percentile, channels=c)
        if any(t in params for t in _GEOMETRIC_PARAMETERS):
            x = _resample(x, _geometric_matrix(params, h, w))
        if any(t in params for t in COLOR):
            x = _apply_color(x, _color_matrix(params))
        if "imgfilter" in params:
            x = _apply_imgfilter(x, params["imgfilter"])
        if "noise" in params:
            noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)
            x = x + noise * params["noise"][:, None, None, None]
        if "cutout" in params:
            x = _apply_cutout(x, params["cutout"], params["cutout_center"])
        return x

    def parameters(self, batch_size=None, uniforms=None, debug_percentile=None, channels=3):
        """The transforms' parameters per image, as `call` draws them.

        Returns a dict with an entry per enabled transform, the identity
        (0, or 1 for the scalings and gains) where it does not fire:
        `xflip` [N] 0/1; `rotate90` [N] quarter turns 0-3; `xint` [N, 2]
        and `xfrac` [N, 2] translations relative to the size (`xint` before
        rounding to pixels); `scale`, `aniso` [N] factors; `pre_rotate`,
        `post_rotate`, `hue` [N] angles; `brightness` [N] offsets;
        `contrast`, `saturation` [N] factors; `lumaflip` [N] 0/1;
        `imgfilter` [N, 4] band gains (before power normalisation);
        `noise` [N] standard deviations; `cutout` [N] sizes (0: none) and
        `cutout_center` [N, 2]. Hue and saturation only for `channels > 1`.
        """
        if uniforms is None:
            if batch_size is None:
                raise ValueError("Expected batch_size or uniforms. Received neither")
            uniforms = keras.random.uniform((batch_size, NUM_DRAWS), seed=self.seed_generator)
        elif tuple(uniforms.shape[1:]) != (NUM_DRAWS,):
            raise ValueError(f"Expected uniforms of shape [N, {NUM_DRAWS}]. "
                             f"Received: shape={tuple(uniforms.shape)}")
        q = None if debug_percentile is None else float(debug_percentile)
        if q is not None and not 0 <= q <= 1:
            raise ValueError(f"Expected debug_percentile in [0, 1]. Received: {q}")
        d = _Draws(ops.cast(uniforms, "float32"), q)
        p = ops.convert_to_tensor(self.p)
        out = {}

        def gated(name, multiplier, value, identity, k=-1):
            return ops.where(d.fires(name, multiplier * p, k), value, identity)

        if self.xflip > 0:
            out["xflip"] = gated("xflip", self.xflip, ops.floor(d.uniform("xflip") * 2), 0.0)
        if self.rotate90 > 0:
            out["rotate90"] = gated("rotate90", self.rotate90,
                                    ops.floor(d.uniform("rotate90") * 4), 0.0)
        if self.xint > 0:
            t = ops.stack([d.uniform("xint", 0), d.uniform("xint", 1)], axis=-1)
            out["xint"] = ops.where(d.fires("xint", self.xint * p)[:, None],
                                    (t * 2 - 1) * self.xint_max, 0.0)
        if self.scale > 0:
            out["scale"] = gated("scale", self.scale,
                                 ops.exp2(d.normal("scale") * self.scale_std), 1.0)
        if self.rotate > 0:
            # Pre- or post-rotation each with p_rot: one or both with (rotate * p).
            p_rot = 1 - ops.sqrt(ops.clip(1 - self.rotate * p, 0.0, 1.0))
            for name in ("pre_rotate", "post_rotate"):
                theta = (d.uniform(name) * 2 - 1) * np.pi * self.rotate_max
                out[name] = ops.where(d.fires(name, p_rot), theta, 0.0)
            if q is not None:
                # The reference's debug percentile sets the pre-rotation only.
                out["post_rotate"] = 0.0 * out["post_rotate"]
        if self.aniso > 0:
            out["aniso"] = gated("aniso", self.aniso,
                                 ops.exp2(d.normal("aniso") * self.aniso_std), 1.0)
        if self.xfrac > 0:
            t = ops.stack([d.normal("xfrac", 0), d.normal("xfrac", 1)], axis=-1)
            out["xfrac"] = ops.where(d.fires("xfrac", self.xfrac * p)[:, None],
                                     t * self.xfrac_std, 0.0)
        if self.brightness > 0:
            out["brightness"] = gated("brightness", self.brightness,
                                      d.normal("brightness") * self.brightness_std, 0.0)
        if self.contrast > 0:
            out["contrast"] = gated("contrast", self.contrast,
                                    ops.exp2(d.normal("contrast") * self.contrast_std), 1.0)
        if self.lumaflip > 0:
            out["lumaflip"] = gated("lumaflip", self.lumaflip,
                                    ops.floor(d.uniform("lumaflip") * 2), 0.0)
        if self.hue > 0 and channels > 1:
            out["hue"] = gated("hue", self.hue,
                               (d.uniform("hue") * 2 - 1) * np.pi * self.hue_max, 0.0)
        if self.saturation > 0 and channels > 1:
            out["saturation"] = gated("saturation", self.saturation,
                                      ops.exp2(d.normal("saturation") * self.saturation_std), 1.0)
        if self.imgfilter > 0:
            gains = []
            for band, strength in enumerate(self.imgfilter_bands):
                t = ops.exp2(d.normal("imgfilter", 2 * band) * self.imgfilter_std)
                if q is not None and strength == 0:
                    t = ops.ones_like(t)
                gains.append(ops.where(d.fires("imgfilter", self.imgfilter * p * strength,
                                               k=2 * band + 1), t, 1.0))
            out["imgfilter"] = ops.stack(gains, axis=-1)
        if self.noise > 0:
            sigma = ops.abs(d.normal("noise")) * self.noise_std
            if q is not None:
                sigma = float(_erfinv(q)) * self.noise_std * ops.ones_like(sigma)
            out["noise"] = gated("noise", self.noise, sigma, 0.0)
        if self.cutout > 0:
            out["cutout"] = gated("cutout", self.cutout,
                                  self.cutout_size * ops.ones_like(d.u[:, 0]), 0.0, k=0)
            out["cutout_center"] = ops.stack([d.uniform("cutout", 1), d.uniform("cutout", 2)],
                                             axis=-1)
        return out

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name)
                       for name in _NUMBER_SETTINGS + ("imgfilter_bands", "seed")})
        config["p"] = self._initial_p
        return config

    def compute_output_shape(self, input_shape):
        return input_shape


def _geometric_matrix(params, h, w):
    """`[N, 3, 3]`: output pixel -> input pixel (centred coordinates), the
    inverse of each geometric transform composed in the pipe's order."""
    first = next(params[k] for k in _GEOMETRIC_PARAMETERS if k in params)
    ones = ops.ones_like(first if len(first.shape) == 1 else first[:, 0])  # [N]
    g = _matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ones)

    def then(m):
        return ops.matmul(g, m)

    if "xflip" in params:
        g = then(_scale(1 - 2 * params["xflip"], 1, ones))
    if "rotate90" in params:
        g = then(_rotate(np.pi / 2 * params["rotate90"], ones))
    if "xint" in params:
        t = params["xint"]
        g = then(_translate(-ops.round(t[:, 0] * w), -ops.round(t[:, 1] * h), ones))
    if "scale" in params:
        s = params["scale"]
        g = then(_scale(1 / s, 1 / s, ones))
    if "pre_rotate" in params:
        g = then(_rotate(params["pre_rotate"], ones))
    if "aniso" in params:
        s = params["aniso"]
        g = then(_scale(1 / s, s, ones))
    if "post_rotate" in params:
        g = then(_rotate(params["post_rotate"], ones))
    if "xfrac" in params:
        t = params["xfrac"]
        g = then(_translate(-t[:, 0] * w, -t[:, 1] * h, ones))
    return g


_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3)


def _color_matrix(params):
    """`[N, 4, 4]`: the colour transforms composed (color_out = C @ [rgb, 1])."""
    first = next(params[k] for k in COLOR if k in params)
    ones = ops.ones_like(first)
    eye = _matrix(np.eye(4).tolist(), ones)
    vv = ops.convert_to_tensor(np.outer(_LUMA, _LUMA), "float32")  # [4, 4]
    cm = eye
    if "brightness" in params:
        b = params["brightness"]
        cm = ops.matmul(_matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]],
                                ones), cm)
    if "contrast" in params:
        s = params["contrast"]
        cm = ops.matmul(_matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]],
                                ones), cm)
    if "lumaflip" in params:
        cm = ops.matmul(eye - 2 * vv * params["lumaflip"][:, None, None], cm)  # Householder
    if "hue" in params:
        cm = ops.matmul(_luma_rotation(_LUMA, params["hue"], ones), cm)
    if "saturation" in params:
        cm = ops.matmul(vv + (eye - vv) * params["saturation"][:, None, None], cm)
    return cm


def _apply_color(x, cm):
    """`C @ [rgb, 1]` per pixel; one channel: the mean of the RGB rows; alpha kept."""
    channels = int(x.shape[-1])
    if channels == 1:
        row = ops.mean(cm[:, :3, :], axis=1)  # [N, 4]
        gain = ops.sum(row[:, :3], axis=-1)
        return x * gain[:, None, None, None] + row[:, None, None, 3:]
    rgb = ops.einsum("nij,nhwj->nhwi", cm[:, :3, :3], x[..., :3]) + cm[:, None, None, :3, 3]
    return rgb if channels == 3 else ops.concatenate([rgb, x[..., 3:]], axis=-1)


def _apply_imgfilter(x, band_gains):
    """Boost each band by its gain `[N, 4]`, each boost normalised to unit
    expected power; the filter `gains @ bank` runs along x, then along y."""
    power = ops.convert_to_tensor(filters.BAND_POWER, "float32")
    gains = ops.ones_like(band_gains)
    for band in range(4):
        onehot = ops.convert_to_tensor(np.eye(4)[band], "float32")
        boost = 1 + onehot * (band_gains[:, band:band + 1] - 1)  # t at this band, 1 elsewhere
        gains = gains * boost * ops.rsqrt(ops.sum(power * ops.square(boost), -1, keepdims=True))
    h, w, c = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    bx = ops.convert_to_tensor(filters.band_matrices(w).reshape(4 * w, w), "float32")
    by = ops.convert_to_tensor(filters.band_matrices(h).reshape(4 * h, h), "float32")
    y = ops.reshape(ops.matmul(bx, x), (-1, h, 4, w, c))  # [N, H, 4, W, C]
    y = ops.sum(y * gains[:, None, :, None, None], axis=2)
    y = ops.reshape(ops.matmul(by, ops.reshape(y, (-1, h, w * c))), (-1, 4, h, w, c))
    return ops.sum(y * gains[:, :, None, None, None], axis=1)


def _apply_cutout(x, size, center):
    """Zero a `size` x `size` (relative) square about `center` [N, 2] (x, y)."""
    h, w = int(x.shape[1]), int(x.shape[2])
    px = (ops.arange(w, dtype="float32") + 0.5) / w
    py = (ops.arange(h, dtype="float32") + 0.5) / h
    outside_x = ops.abs(px[None, :] - center[:, :1]) >= size[:, None] / 2  # [N, W]
    outside_y = ops.abs(py[None, :] - center[:, 1:]) >= size[:, None] / 2  # [N, H]
    keep = ops.logical_or(outside_x[:, None, :], outside_y[:, :, None])
    return x * ops.cast(keep, "float32")[..., None]


def _luma_rotation(v, theta, ones):
    """`[N, 4, 4]`: rotation by `theta` about the unit axis `v[:3]` (Rodrigues)."""
    vx, vy, vz = (float(a) for a in v[:3])
    s, c = ops.sin(theta), ops.cos(theta)
    k = 1 - c
    return _matrix([
        [vx * vx * k + c, vx * vy * k - vz * s, vx * vz * k + vy * s, 0],
        [vy * vx * k + vz * s, vy * vy * k + c, vy * vz * k - vx * s, 0],
        [vz * vx * k - vy * s, vz * vy * k + vx * s, vz * vz * k + c, 0],
        [0, 0, 0, 1]], ones)


def _resample(x, g):
    """Apply the inverse maps `g [N, 3, 3]` (centred pixel coordinates) to `x`.

    Reflect-pad by `size - 1` and upsample 2x (one matrix per axis);
    bilinearly sample the upsampled image (zeros outside it) on a 2x grid
    covering the image and `GEOMETRIC_PAD` pixels around it; downsample 2x
    with the reversed low-pass, cropping back to the image.
    """
    h, w, c = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
    pad_x, pad_y = w - 1, h - 1
    up_x = filters.geometric_upsampling_matrix(w, pad_x)  # [Wu, W]
    up_y = filters.geometric_upsampling_matrix(h, pad_y)
    wu, hu = up_x.shape[0], up_y.shape[0]
    up = apply_matrices(x, up_x[None], up_y[None])  # [N, Hu, Wu, C]

    # Output grid in input pixels about the centre: k in [0, 2 (size + 2 pad)).
    margin = filters.GEOMETRIC_PAD
    ax = (np.arange(2 * (w + 2 * margin)) + 1) / 2 - (w + 2 * margin) / 2
    ay = (np.arange(2 * (h + 2 * margin)) + 1) / 2 - (h + 2 * margin) / 2
    ax = ops.convert_to_tensor(ax[None, None, :], "float32")  # [1, 1, Wo]
    ay = ops.convert_to_tensor(ay[None, :, None], "float32")  # [1, Ho, 1]

    def entry(i, j):
        return g[:, i, j][:, None, None]

    ux = entry(0, 0) * ax + entry(0, 1) * ay + entry(0, 2)  # [N, Ho, Wo]
    uy = entry(1, 0) * ax + entry(1, 1) * ay + entry(1, 2)
    # Index in the upsampled padded image: twice the padded image's index.
    sx = 2 * (ux + (w - 1) / 2 + pad_x)
    sy = 2 * (uy + (h - 1) / 2 + pad_y)
    x0, y0 = ops.floor(sx), ops.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    flat = ops.reshape(up, (-1, c))  # [N * Hu * Wu, C]
    base = ops.arange(ops.shape(x)[0], dtype="int32")[:, None, None] * (hu * wu)
    sampled = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            valid = (xi >= 0) & (xi < wu) & (yi >= 0) & (yi < hu)
            weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
            weight = ops.where(valid, weight, 0.0)
            index = base + ops.clip(yi, 0, hu - 1) * wu + ops.clip(xi, 0, wu - 1)
            sampled = sampled + ops.take(flat, index, axis=0) * weight[..., None]
    return upfirdn2d(sampled, filters.GEOMETRIC_LOWPASS[::-1], down=2, padding=-1)
