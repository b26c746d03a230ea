"""afgan-generate: one PNG per seed from a generator `.keras` file.

    afgan-generate --network=runs/tiny/generator.keras --seeds=0-7 --outdir=out
    afgan-generate --network=G.keras --seeds=1,5 --trunc=0.7 --translate=0.1,0 --rotate=15

`--network` takes a generator written by training (any backend) or by
`Generator.save`, or a training checkpoint (its G-EMA is used).
"""

import os

from absl import flags

from keras_afgan.cli.common import finite
from keras_afgan.cli.common import load_generator
from keras_afgan.cli.common import parse_seeds
from keras_afgan.cli.common import parse_vec2
from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_string("seeds", "0-7", "Seeds: '0-7', '1,5,9' or a mix.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
flags.DEFINE_integer("class", None, "Class index (conditional models).")
flags.DEFINE_string("translate", "0,0", "Translate the content by tx,ty (fractions of the image).")
flags.DEFINE_float("rotate", 0.0, "Rotate the content by this many degrees.")
flags.DEFINE_enum("noise_mode", "const", ["const", "random", "none"],
                  "StyleGAN2 per-pixel noise: the stored noise, fresh noise, or none.")
flags.DEFINE_string("outdir", None, "Where to write seedNNNN.png.", required=True)


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.images import save_image
    from keras_afgan.models.sampling import generate_images

    seeds = parse_seeds(_FLAGS.seeds)
    translate = parse_vec2(_FLAGS.translate)
    truncation_psi, rotate = finite(_FLAGS.trunc, "--trunc"), finite(_FLAGS.rotate, "--rotate")
    G = load_generator(_FLAGS.network)
    os.makedirs(_FLAGS.outdir, exist_ok=True)
    for start in range(0, len(seeds), 16):
        chunk = seeds[start:start + 16]
        images = generate_images(G, chunk, truncation_psi=truncation_psi,
                                 class_idx=_FLAGS["class"].value, translate=translate,
                                 rotate=rotate, noise_mode=_FLAGS.noise_mode)
        for seed, image in zip(chunk, images):
            save_image(image, os.path.join(_FLAGS.outdir, f"seed{seed:04d}.png"))
    print(f"Wrote {len(seeds)} images to {_FLAGS.outdir}")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
