"""Where a generator forward spends its time: each synthesis layer's parts.

    KERAS_BACKEND=tensorflow python scripts/profile_layers.py [--batch=8] [--calibrate]

Builds the `afgan-bench` generator (64 px StyleGAN3-T, cbase 8192, cmax 128,
z = w = 512), records each synthesis layer's input, then times the layer's
modulated convolution and its filtered leaky ReLU separately: each compiled
on its own (XLA on TensorFlow and JAX; torch runs eager, as `afgan-bench`
does), best of 3 after a warm-up call. `--calibrate` first times a plain
3x3 128-to-128 convolution at 86 px: the machine's own convolution speed,
to compare the layers (and any target) with.
"""

import argparse

import keras
import numpy as np
from keras import ops

from keras_afgan.bench import BenchConfig
from keras_afgan.bench import best_time
from keras_afgan.bench import build_models
from keras_afgan.bench import compiled
from keras_afgan.bench import conv_roofline
from keras_afgan.timing import ROOFLINE_SIZE
from keras_afgan.timing import conv_gflop
from keras_afgan.ops.filtered_lrelu import filtered_lrelu
from keras_afgan.ops.modulated_conv import modulated_conv2d


def calibrate(batch):
    print(f"plain 3x3 conv 128->128 at {ROOFLINE_SIZE} px, batch {batch}: "
          f"{conv_roofline(batch):.0f} GFLOP/s")


def profile(batch):
    G, _ = build_models(BenchConfig(batch=batch))
    synthesis = G.synthesis
    ws = np.random.default_rng(0).standard_normal(
        (batch, synthesis.num_ws, synthesis.w_dim)).astype("float32")
    _, activations = synthesis(ws, return_activations=True)
    previous, totals = "input", [0.0, 0.0]
    print(f"{'layer':12s} {'in':>6s} {'conv out':>8s} {'up/down':>7s} {'conv ms':>9s} "
          f"{'GFLOP/s':>8s} {'flrelu ms':>9s}")
    for i, layer in enumerate(synthesis.synthesis_layers):
        x = activations[previous]
        previous = layer.name
        styles = layer.affine(ops.convert_to_tensor(ws[:, i + 1]))

        def conv(x, styles, kernel, layer=layer):
            return modulated_conv2d(x, kernel, styles, demodulate=not layer.is_torgb,
                                    input_gain=1.0)

        def lrelu(y, layer=layer):
            return filtered_lrelu(y, fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor,
                                  down=layer.down_factor, padding=layer.padding)

        kernel = ops.convert_to_tensor(layer.kernel)
        y = conv(x, styles, kernel)
        t_conv = best_time(compiled(conv), x, styles, kernel)
        t_lrelu = best_time(compiled(lrelu), y)
        totals[0] += t_conv
        totals[1] += t_lrelu
        gflop = conv_gflop(layer.kernel_size, layer.in_channels, layer.out_channels,
                            int(y.shape[1]), batch)
        print(f"{layer.name:12s} {int(x.shape[1]):6d} {int(y.shape[1]):8d} "
              f"{layer.up_factor:>3d}/{layer.down_factor:<3d} {t_conv * 1e3:9.1f} "
              f"{gflop / t_conv:8.0f} {t_lrelu * 1e3:9.1f}", flush=True)
    print(f"{keras.config.backend()}: convolutions {totals[0]:.2f} s, filtered leaky ReLUs "
          f"{totals[1]:.2f} s per batch of {batch}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--calibrate", action="store_true",
                        help="first time a plain 3x3 128-to-128 convolution")
    args = parser.parse_args()
    if args.batch < 1:
        raise SystemExit(f"Expected --batch >= 1. Received: {args.batch}")
    if args.calibrate:
        calibrate(args.batch)
    profile(args.batch)


if __name__ == "__main__":
    main()
