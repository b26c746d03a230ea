"""afgan-generate: one PNG per seed from a generator `.keras` file.

    afgan-generate --network=runs/tiny/generator.keras --seeds=0-7 --outdir=out
    afgan-generate --network=G.keras --seeds=1,5 --trunc=0.7 --translate=0.1,0 --rotate=15

`--network` takes a generator written by training (any backend) or by
`Generator.save`, or a training checkpoint (its G-EMA is used).
"""

import os
import re

from absl import app
from absl import flags

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_string("seeds", "0-7", "Seeds: '0-7', '1,5,9' or a mix.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
flags.DEFINE_integer("class", None, "Class index (conditional models).")
flags.DEFINE_string("translate", "0,0", "Translate the content by tx,ty (fractions of the image).")
flags.DEFINE_float("rotate", 0.0, "Rotate the content by this many degrees.")
flags.DEFINE_string("outdir", None, "Where to write seedNNNN.png.", required=True)


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
    """A `Generator` from a generator file or a training checkpoint."""
    import keras

    from keras_afgan.models.generator import Generator
    from keras_afgan.training.gan import AliasFreeGAN

    if not os.path.exists(path):
        raise ValueError(f"Expected --network to name a .keras file. Received: {path!r}")
    model = keras.saving.load_model(path, compile=False)
    if isinstance(model, AliasFreeGAN):
        return model.generator_ema
    if not isinstance(model, Generator):
        raise ValueError(
            f"Expected a keras_afgan Generator or training checkpoint in {path}. "
            f"Received: {type(model).__name__}")
    return model


def main(argv):
    del argv
    from keras_afgan.training.images import save_image
    from keras_afgan.training.run import generate_images

    seeds = parse_seeds(_FLAGS.seeds)
    translate = parse_vec2(_FLAGS.translate)
    G = load_generator(_FLAGS.network)
    os.makedirs(_FLAGS.outdir, exist_ok=True)
    for start in range(0, len(seeds), 16):
        chunk = seeds[start:start + 16]
        images = generate_images(G, chunk, truncation_psi=_FLAGS.trunc,
                                 class_idx=_FLAGS["class"].value, translate=translate,
                                 rotate=_FLAGS.rotate)
        for seed, image in zip(chunk, images):
            save_image(image, os.path.join(_FLAGS.outdir, f"seed{seed:04d}.png"))
    print(f"Wrote {len(seeds)} images to {_FLAGS.outdir}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
