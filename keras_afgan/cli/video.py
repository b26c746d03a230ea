"""afgan-video: latent interpolation, or translation/rotation sweeps, as .mp4 or .gif.

    afgan-video --network=runs/tiny/generator.keras --mode=interp --seeds=0-7 --out=interp.mp4
    afgan-video --network=G.keras --mode=translate --seeds=0-3 --grid=2x2 --out=translate.gif
    afgan-video --network=G.keras --mode=rotate --seeds=0 --frames=120 --out=rotate.mp4

`interp` loops through the seeds' ws (one image); `translate` (a circle of
radius --max-translate, fractions of the image) and `rotate` (0 to
--max-angle degrees) move the content of every seed through the Fourier
input, shown as a grid: details that move with the content, rather than stay
on the pixel grid, are what alias-free means.
"""

import re

from absl import flags

from keras_afgan.cli.common import finite
from keras_afgan.cli.common import load_generator
from keras_afgan.cli.common import parse_seeds
from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "Generator or training checkpoint (.keras).", required=True)
flags.DEFINE_enum("mode", "interp", ["interp", "translate", "rotate"], "What the video shows.")
flags.DEFINE_string("seeds", "0-3", "Seeds: '0-7', '1,5,9'.")
flags.DEFINE_string("grid", None, "ROWSxCOLS for sweeps (default: one row).")
flags.DEFINE_integer("frames", 60, "Frames (sweeps) or frames per seed (interp).")
flags.DEFINE_integer("fps", 30, "Frames per second.")
flags.DEFINE_float("trunc", 1.0, "Truncation psi.")
flags.DEFINE_integer("class", None, "Class index (conditional models).")
flags.DEFINE_float("max-translate", 0.25, "Sweep radius, fractions of the image (translate).")
flags.DEFINE_float("max-angle", 360.0, "Sweep angle in degrees (rotate).")
flags.DEFINE_string("out", None, "Output .mp4 or .gif.", required=True)


def parse_grid(text, count):
    """'2x3' -> (2, 3), checked against the number of seeds; None -> one row."""
    if text is None:
        return 1, count
    match = re.fullmatch(r"(\d+)x(\d+)", str(text).strip())
    if not match or int(match.group(1)) * int(match.group(2)) != count:
        raise ValueError(f"Expected --grid=ROWSxCOLS with ROWS*COLS = {count} (the seeds). "
                         f"Received: {text!r}")
    return int(match.group(1)), int(match.group(2))


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.visualize import video

    if _FLAGS.frames < 1:
        raise ValueError(f"Expected --frames >= 1. Received: {_FLAGS.frames}")
    seeds = parse_seeds(_FLAGS.seeds)
    rows, cols = parse_grid(_FLAGS.grid, len(seeds))
    truncation_psi = finite(_FLAGS.trunc, "--trunc")
    max_translate = finite(_FLAGS["max-translate"].value, "--max-translate")
    max_angle = finite(_FLAGS["max-angle"].value, "--max-angle")
    G = load_generator(_FLAGS.network)
    if _FLAGS.mode == "interp":
        frames = video.interpolation_frames(G, seeds, _FLAGS.frames, truncation_psi,
                                            _FLAGS["class"].value)
    else:
        frames = video.tile(video.sweep_frames(
            G, seeds, _FLAGS.mode, _FLAGS.frames, truncation_psi, _FLAGS["class"].value,
            max_translate=max_translate, max_angle=max_angle), rows, cols)
    video.write_video(frames, _FLAGS.out, fps=_FLAGS.fps)
    print(f"Wrote {_FLAGS.out}: {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]}")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
