"""Convert a reference StyleGAN3 state dict to keras_afgan and render a grid.

The state dict is an `.npz` mapping the reference's parameter and buffer names
to arrays, plus a JSON file with the generator's constructor arguments
(`G_kwargs`), as in `../shared/golden`:

    KERAS_BACKEND=jax python examples/convert_reference_weights.py \
        --npz ../shared/golden/t32.npz --json ../shared/golden/t32.json --out t32

writes `t32.keras` (loadable on any backend) and `t32.png`.
"""

import argparse
import json

import keras
import numpy as np

from keras_afgan.convert import generator_from_reference
from keras_afgan.images import save_image_grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="reference state dict (G/<name> keys)")
    parser.add_argument("--json", required=True, help="JSON with G_kwargs")
    parser.add_argument("--out", default="generator", help="output prefix")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--psi", type=float, default=1.0)
    args = parser.parse_args()

    with np.load(args.npz) as data:
        state = {k[2:]: data[k] for k in data.files if k.startswith("G/")}
    G = generator_from_reference(state, **json.load(open(args.json))["G_kwargs"])
    G.save(f"{args.out}.keras")

    z = np.stack([np.random.default_rng(s).standard_normal(G.z_dim) for s in range(args.seeds)])
    c = np.zeros((args.seeds, G.c_dim), "float32")
    if G.c_dim:
        c[np.arange(args.seeds), np.arange(args.seeds) % G.c_dim] = 1
    img = keras.ops.convert_to_numpy(G(z.astype("float32"), c, truncation_psi=args.psi))
    save_image_grid(img, f"{args.out}.png", (1, args.seeds))  # [N, R, R, 3] in a row
    print(f"Wrote {args.out}.keras and {args.out}.png ({args.seeds} images, {G.img_resolution} px)")


if __name__ == "__main__":
    main()
