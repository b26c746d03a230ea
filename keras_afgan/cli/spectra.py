"""afgan-spectra: average power spectra of generated and real images, as PNG plots.

    afgan-spectra --network=runs/tiny/generator.keras --data=builtin --num=200 --outdir=spectra

Writes `spectra-heatmap.png` (generated and real side by side, dB),
`spectra-slices.png` (horizontal and diagonal slices) and `spectra.npz`
(the spectra and their frequencies). Without `--data`, only the generator's.
"""

import os

from absl import flags

from keras_afgan.cli.common import finite
from keras_afgan.cli.common import load_generator
from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_string("data", None, "Real images to compare with (see afgan-train --data).")
flags.DEFINE_integer("num", 1000, "Generated images (and at most this many reals).")
flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
flags.DEFINE_integer("batch", 16, "Generator batch.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("outdir", None, "Where to write the plots.", required=True)


def main(argv):
    del argv
    prepare_process()
    import numpy as np

    from keras_afgan.models.sampling import generated_batches
    from keras_afgan.visualize import spectra

    if _FLAGS.num < 1:
        raise ValueError(f"Expected --num >= 1. Received: {_FLAGS.num}")
    truncation_psi = finite(_FLAGS.trunc, "--trunc")
    G = load_generator(_FLAGS.network)
    r = G.img_resolution
    results = {"generated": spectra.average_power_spectrum_of_batches(generated_batches(
        G, _FLAGS.num, _FLAGS.batch, _FLAGS.seed, truncation_psi))}
    if _FLAGS.data:
        from keras_afgan.data.sources import open_images

        reals = open_images(_FLAGS.data, resolution=r, channels=G.img_channels,
                            max_images=_FLAGS.num)
        results["real"] = spectra.average_power_spectrum(reals.read(np.arange(len(reals))))
    os.makedirs(_FLAGS.outdir, exist_ok=True)
    names = list(results)
    heatmap = spectra.save_heatmaps([results[n] for n in names],
                                    os.path.join(_FLAGS.outdir, "spectra-heatmap.png"), r, names)
    slices = spectra.save_slices([results[n] for n in names],
                                 os.path.join(_FLAGS.outdir, "spectra-slices.png"), r, names)
    size = results["generated"].shape[0]
    np.savez(os.path.join(_FLAGS.outdir, "spectra.npz"),
             frequencies=spectra.spectrum_frequencies(size, r), **results)
    print(f"Wrote {heatmap}, {slices} and spectra.npz")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
