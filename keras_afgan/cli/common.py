"""Helpers shared by the command-line tools (no flags defined here)."""

import os
import re


def parse_seeds(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"Expected seeds like '0-7' or '1,5,9'. Received: {text!r}")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise ValueError(f"Expected a range low-high with low <= high. Received: {part!r}")
        seeds.extend(range(lo, hi + 1))
    return seeds


def parse_vec2(text):
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"Expected two comma-separated numbers like '0.1,-0.2'. Received: {text!r}")


def load_generator(path):
    """A float32 `Generator` from a generator file or a training checkpoint
    (whose G-EMA may compute in a mixed precision; its weights are float32)."""
    import keras

    from keras_afgan.models.generator import Generator
    from keras_afgan.models.generator import generator_with_dtype
    from keras_afgan.training.gan import AliasFreeGAN

    if not os.path.exists(path):
        raise ValueError(f"Expected --network to name a .keras file. Received: {path!r}")
    model = keras.saving.load_model(path, compile=False)
    if isinstance(model, AliasFreeGAN):
        model = model.generator_ema
    if not isinstance(model, Generator):
        raise ValueError(
            f"Expected a keras_afgan Generator or training checkpoint in {path}. "
            f"Received: {type(model).__name__}")
    return generator_with_dtype(model, "float32")


def quiet_library_logs():
    """absl's app.run logs at INFO, which floods the console with TensorFlow's
    INFO lines (tracing, saving); keep WARNING and up unless --verbosity is given."""
    from absl import flags
    from absl import logging

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
