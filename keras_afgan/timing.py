"""Timing and FLOP counts shared by `keras_afgan.bench` and the reference driver.

Standard library only: `reference_bench.py` runs as a script in a process
that holds torch and nothing of Keras, and loads this file by its path.
"""

import time

ROOFLINE_SIZE = 86  # output pixels per axis of the roofline convolution


def conv_gflop(kernel_size, in_channels, out_channels, out_size, batch):
    """GFLOP of a convolution (2 per multiply-add), `out_size` pixels per axis."""
    return 2 * kernel_size**2 * in_channels * out_channels * out_size**2 * batch / 1e9


def time_calls(step, warmup, repeats):
    """Seconds of each of `repeats` calls of `step()`, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times
