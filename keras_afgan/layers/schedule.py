"""Layer schedules of the synthesis network and the discriminator, pure Python.

Every synthesis layer's sampling rate s, cutoff f_c, minimum stopband f_t,
transition half-width f_h, size, channel count, resampling factors, filter
taps, filters and padding follow from a handful of settings
(docs/design.md section 2). This module is the one place that computes
them: `SynthesisNetwork` asks `synthesis_spec` for the schedule and each
`SynthesisLayer` builds itself from its `LayerSpec` (its filters from
`layer_filters`). The discriminator's channels and reduced-precision blocks
are here too. Nothing here touches a Keras backend.
"""

import dataclasses
import math

import numpy as np

from keras_afgan.ops.filter_design import FILTER_WINDOWS
from keras_afgan.ops.filter_design import design_lowpass_filter


def _check_resolution(img_resolution):
    r = img_resolution
    if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 16 or (r & (r - 1)) != 0:
        raise ValueError(
            f"Expected img_resolution to be a power of 2 >= 16. Received: {img_resolution!r}"
        )
    return int(r)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input: `channels` features on a `size`^2 grid."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float
    transformed: bool = True  # w_0 rotates and translates the features (False: config H off)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer, named like the paper's table (`L3_36_512`)."""

    index: int
    name: str
    in_size: int
    out_size: int
    in_channels: int
    out_channels: int
    in_sampling_rate: float
    out_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    tmp_sampling_rate: float
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple  # (x_lo, x_hi, y_lo, y_hi)
    conv_kernel: int
    is_torgb: bool
    is_critically_sampled: bool
    reduced_precision: bool  # among the `num_fp16_res` highest-resolution layers
    # Fields added later have defaults, so that configs saved before them load.
    filter_window: str = "kaiser"  # window of the up/down filters (filter_design)
    noise: bool = False  # per-pixel noise after the convolution, as StyleGAN2 adds it

    def to_config(self):
        """The fields as a JSON-able dict (for a layer's `get_config`)."""
        config = dataclasses.asdict(self)
        config["padding"] = list(self.padding)
        return config

    @classmethod
    def from_config(cls, config):
        """A `LayerSpec` from `to_config`'s dict (or a `LayerSpec`, returned as is)."""
        if isinstance(config, cls):
            return config
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING}
        if not isinstance(config, dict) or not required <= set(config) <= fields:
            raise ValueError(
                f"Expected a LayerSpec or a dict with the fields {sorted(fields)}. "
                f"Received: {config!r}")
        return cls(**dict(config, padding=tuple(config["padding"])))


def layer_filters(spec):
    """The up and down filters of a synthesis layer: `(up_filter, down_filter)`.

    Up: a windowed sinc (`spec.filter_window`: Kaiser by default) with the
    input side's cutoff and transition band at the temporary rate; down: the
    output side's, radial (jinc) where `spec.down_radial`. Each is None for a
    single tap (no resampling).
    """
    up = design_lowpass_filter(spec.up_taps, spec.in_cutoff, 2 * spec.in_half_width,
                               spec.tmp_sampling_rate, window=spec.filter_window)
    down = design_lowpass_filter(spec.down_taps, spec.out_cutoff, 2 * spec.out_half_width,
                                 spec.tmp_sampling_rate, radial=spec.down_radial,
                                 window=spec.filter_window)
    return up, down


@dataclasses.dataclass(frozen=True)
class SynthesisSpec:
    input: InputSpec
    layers: tuple  # of LayerSpec

    @property
    def num_ws(self):
        return len(self.layers) + 1


def synthesis_spec(
    img_resolution,
    img_channels=3,
    channel_base=32768,
    channel_max=512,
    num_layers=14,
    num_critical=2,
    first_cutoff=2,
    first_stopband=2**2.1,
    last_stopband_rel=2**0.3,
    margin_size=10,
    conv_kernel=3,
    use_radial_filters=False,
    filter_size=6,
    lrelu_upsampling=2,
    num_fp16_res=0,
    filter_window="kaiser",
    critical_sampling=False,
    noise_inputs=False,
    fixed_fourier=False,
):
    """Compute the per-layer schedule of the synthesis network.

    With `e_i = min(i / (num_layers - num_critical), 1)`:
    f_c,i = first_cutoff * (R/2 / first_cutoff)^e_i;
    f_t,i = first_stopband * (R/2 * last_stopband_rel / first_stopband)^e_i;
    s_i = 2^ceil(log2(min(2 f_t,i, R))); f_h,i = max(f_t,i, s_i/2) - f_c,i;
    size_i = s_i + 2 margin (the last two: R);
    channels_i = rint(min(channel_base / 2 / f_c,i, channel_max)) (last: img_channels).
    Layer i reads layer max(i-1, 0)'s specs as its input side; layer
    `num_layers` is ToRGB. Layer i computes in reduced precision under a
    mixed dtype policy where `s_i * 2^num_fp16_res > R` (the reference's
    `num_fp16_res` highest resolutions). `filter_window` ("kaiser",
    "lanczos", "gaussian") is the window of every layer's filters (the
    paper's filter ablation; `ops.filter_design.filter_window`).

    The paper's other ablation switches act here too:
    `critical_sampling=True` samples every layer critically, as the
    reference does its last `num_critical`: f_c,i = s_i / 2 and f_t,i =
    f_c,i * last_stopband_rel (so f_h,i = f_t,i - f_c,i), every layer's down
    filter separable; the rates, sizes, channels (from the default cutoffs,
    so capacity is unchanged) and the input's bandwidth stay the default
    schedule's. `noise_inputs=True` gives every layer but ToRGB a per-pixel
    noise input (`LayerSpec.noise`); `fixed_fourier=True` leaves the
    Fourier features untransformed by w (`InputSpec.transformed`).

    Returns:
        A `SynthesisSpec` with `num_layers + 1` `LayerSpec`s.
    """
    r = _check_resolution(img_resolution)
    for name, value, low in (("num_layers", num_layers, 1), ("num_critical", num_critical, 0),
                             ("channel_base", channel_base, 1), ("channel_max", channel_max, 1),
                             ("img_channels", img_channels, 1), ("margin_size", margin_size, 0)):
        if int(value) != value or value < low:
            raise ValueError(f"Expected {name} to be an integer >= {low}. Received: {value!r}")
    if num_critical >= num_layers:
        raise ValueError(
            f"Expected num_critical < num_layers. Received: num_critical={num_critical}, "
            f"num_layers={num_layers}"
        )
    if int(num_fp16_res) != num_fp16_res or num_fp16_res < 0:
        raise ValueError(f"Expected num_fp16_res to be an integer >= 0. Received: {num_fp16_res!r}")
    if conv_kernel not in (1, 3):
        raise ValueError(f"Expected conv_kernel to be 1 or 3. Received: {conv_kernel!r}")
    if filter_window not in FILTER_WINDOWS:
        raise ValueError(f"Expected filter_window in {FILTER_WINDOWS}. Received: {filter_window!r}")

    last_cutoff = r / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, r))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = r
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    bandwidth = cutoffs[0]
    if critical_sampling:
        num_critical = num_layers + 1
        cutoffs = rates / 2
        half_widths = cutoffs * last_stopband_rel - cutoffs

    layers = []
    for i in range(num_layers + 1):
        p = max(i - 1, 0)
        is_torgb = i == num_layers
        is_critical = i >= num_layers - num_critical
        tmp_rate = max(rates[p], rates[i]) * (1 if is_torgb else lrelu_upsampling)
        up = int(np.rint(tmp_rate / rates[p]))
        down = int(np.rint(tmp_rate / rates[i]))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        kernel = 1 if is_torgb else conv_kernel
        in_size, out_size = int(sizes[p]), int(sizes[i])
        total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2
        hi = total - lo
        out_channels = int(channels[i])
        layers.append(LayerSpec(
            index=i,
            name=f"L{i}_{out_size}_{out_channels}",
            in_size=in_size,
            out_size=out_size,
            in_channels=int(channels[p]),
            out_channels=out_channels,
            in_sampling_rate=float(rates[p]),
            out_sampling_rate=float(rates[i]),
            in_cutoff=float(cutoffs[p]),
            out_cutoff=float(cutoffs[i]),
            in_half_width=float(half_widths[p]),
            out_half_width=float(half_widths[i]),
            tmp_sampling_rate=float(tmp_rate),
            up_factor=up,
            down_factor=down,
            up_taps=up_taps,
            down_taps=down_taps,
            down_radial=bool(use_radial_filters and not is_critical),
            padding=(lo, hi, lo, hi),
            conv_kernel=kernel,
            is_torgb=is_torgb,
            is_critically_sampled=is_critical,
            reduced_precision=bool(rates[i] * 2**int(num_fp16_res) > r),
            filter_window=filter_window,
            noise=bool(noise_inputs and not is_torgb),
        ))
    input_spec = InputSpec(
        channels=int(channels[0]),
        size=int(sizes[0]),
        sampling_rate=float(rates[0]),
        bandwidth=float(bandwidth),
        transformed=not fixed_fourier,
    )
    return SynthesisSpec(input=input_spec, layers=tuple(layers))


def discriminator_fp16_resolution(img_resolution, num_fp16_res):
    """The lowest resolution whose discriminator block computes in reduced
    precision under a mixed dtype policy: `max(2^(log2 R + 1 - n), 8)`, so
    the `n` highest-resolution blocks do (none for n = 0)."""
    r = _check_resolution(img_resolution)
    if int(num_fp16_res) != num_fp16_res or num_fp16_res < 0:
        raise ValueError(f"Expected num_fp16_res to be an integer >= 0. Received: {num_fp16_res!r}")
    return max(2 ** (int(math.log2(r)) + 1 - int(num_fp16_res)), 8)


def discriminator_channels(img_resolution, channel_base=32768, channel_max=512):
    """`{res: min(channel_base // res, channel_max)}` for res = R, R/2, ..., 4."""
    r = _check_resolution(img_resolution)
    resolutions = [2**i for i in range(int(math.log2(r)), 1, -1)]
    return {res: min(channel_base // res, channel_max) for res in resolutions}
