"""Build a small StyleGAN3-T generator and discriminator, run them, save, reload.

    KERAS_BACKEND=torch python examples/quickstart.py --outdir runs/quickstart
"""

import argparse
import os

import keras
import numpy as np
from PIL import Image

import keras_afgan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default="runs/quickstart")
    parser.add_argument("--cfg", default="stylegan3-t", choices=sorted(keras_afgan.models.PRESETS))
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    small = dict(z_dim=64, w_dim=64, channel_base=4096, channel_max=64)
    G = keras_afgan.generator_from_preset(args.cfg, args.resolution, seed=0, **small)
    D = keras_afgan.discriminator_from_preset(args.cfg, args.resolution, channel_base=4096,
                                              channel_max=64)
    G.summary()
    z = np.random.default_rng(0).standard_normal((8, G.z_dim)).astype("float32")
    img = G(z, truncation_psi=0.7)  # [8, R, R, 3]
    logits = D(img)
    print("D logits:", keras.ops.convert_to_numpy(logits).ravel())

    path = os.path.join(args.outdir, "generator.keras")
    G.save(path)
    again = keras.saving.load_model(path)
    diff = np.abs(keras.ops.convert_to_numpy(again(z, truncation_psi=0.7) - img)).max()
    print(f"Saved and reloaded {path}: max difference {diff:.2g}")

    grid = np.clip(keras.ops.convert_to_numpy(img) * 127.5 + 128, 0, 255).astype(np.uint8)
    Image.fromarray(np.concatenate(list(grid), axis=1)).save(os.path.join(args.outdir, "grid.png"))
    print(f"Wrote {args.outdir}/grid.png (untrained: training arrives with afgan-train)")


if __name__ == "__main__":
    main()
