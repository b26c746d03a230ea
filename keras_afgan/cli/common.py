"""Helpers shared by the command-line tools (no flags defined here)."""

import math
import os
import re
import sys


# One image per seed: more than this is a typo, not a request (and the list
# is built up front). Seeds index numpy's 32-bit RandomState, as the reference's.
MAX_SEEDS = 100_000


def parse_seeds(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if not match:
            raise ValueError(f"Expected seeds like '0-7' or '1,5,9'. Received: {text!r}")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise ValueError(f"Expected a range low-high with low <= high. Received: {part!r}")
        if hi >= 2**32:
            raise ValueError(f"Expected seeds below 2**32. Received: {part!r}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"Expected at most {MAX_SEEDS} seeds. Received: {text!r} "
                             f"({len(seeds) + hi - lo + 1} or more)")
        seeds.extend(range(lo, hi + 1))
    return seeds


def finite(value, name):
    """`float(value)`, refusing NaN and infinities with the flag's `name`."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Expected {name} to be a finite number. Received: {value}")
    return value


def parse_vec2(text):
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        values = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"Expected two comma-separated numbers like '0.1,-0.2'. Received: {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"Expected two finite numbers like '0.1,-0.2'. Received: {text!r}")
    return values


def load_generator(path):
    """A float32 generator (`Generator` or `StyleGAN2Generator`) from a generator
    file or a training checkpoint (whose G-EMA may compute in a mixed
    precision; its weights are float32)."""
    from keras_afgan.models.generator import generator_with_dtype
    from keras_afgan.models.presets import is_generator
    from keras_afgan.models.saving import load_keras_file
    from keras_afgan.training.gan import AliasFreeGAN

    model = load_keras_file(path, "--network")
    if isinstance(model, AliasFreeGAN):
        model = model.generator_ema
    if not is_generator(model):
        raise ValueError(
            f"Expected a keras_afgan Generator or training checkpoint in {path}. "
            f"Received: {type(model).__name__}")
    return generator_with_dtype(model, "float32")


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def run_tool(main):
    """`absl.app.run(main)`, except that asking for help exits 0 (absl exits 1)."""
    from absl import app

    try:
        app.run(main)
    except SystemExit as exit_:
        if exit_.code == 1 and any(arg in HELP_FLAGS for arg in sys.argv[1:]):
            raise SystemExit(0) from None
        raise


def prepare_process():
    """What a command-line tool does first: quiet logs (`quiet_library_logs`),
    huge pages for torch's CPU allocator, and `keras_afgan.cpu_tuning`'s
    settings (XLA's CPU flags; for torch, freed memory kept for reuse).

    With `THP_MEM_ALLOC_ENABLE=1`, torch backs CPU allocations of 2 MiB and
    more with transparent huge pages: far fewer page faults on the large
    activations. Torch reads the variable once, at its first CPU allocation,
    so it is set here, before any network is built (importing keras_afgan
    allocates nothing); a value set by the user wins. The library itself
    never sets it: a Python program that wants it sets it before it builds
    its first network.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    import keras

    from keras_afgan.cpu_tuning import tune_process

    tune_process(keras.config.backend())
    quiet_library_logs()


def quiet_library_logs():
    """absl's app.run logs at INFO, which floods the console with TensorFlow's
    INFO lines (tracing, saving); keep WARNING and up unless --verbosity is given."""
    from absl import flags
    from absl import logging

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
