"""Bias, activation, gain and clamp in one op (NHWC, channels last)."""

import math

from keras import ops

ACTIVATIONS = ("linear", "lrelu")


def default_gain(activation):
    """The gain that keeps unit variance: sqrt(2) for leaky ReLU, 1 for linear."""
    return math.sqrt(2) if activation == "lrelu" else 1.0


def bias_act(x, b=None, activation="linear", alpha=0.2, gain=None, clamp=None):
    """Add a per-channel bias, apply the activation, scale, then clamp.

    Steps: `x + b` (b broadcast over the last axis); `linear` or leaky ReLU
    with slope `alpha`; multiply by `gain` (default: sqrt(2) for lrelu, 1 for
    linear); clip to `[-clamp, clamp]` when `clamp` is set.

    Args:
        x: `[..., C]` tensor.
        b: `[C]` bias or `None`.
        activation: "linear" or "lrelu".
        alpha: leaky ReLU slope for negative inputs.
        gain: output gain; `None` picks the activation's default.
        clamp: `None` or a positive clamp value.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"Expected activation in {ACTIVATIONS}. Received: activation={activation!r}")
    if b is not None:
        x = x + ops.cast(b, x.dtype)
    if activation == "lrelu" and alpha != 1:
        x = ops.leaky_relu(x, negative_slope=alpha)
    gain = default_gain(activation) if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = ops.clip(x, -clamp, clamp)
    return x
