"""afgan-dataset: turn images into a training dataset (the reference's dataset_tool.py).

    afgan-dataset --source=~/photos --dest=~/datasets/photos-256.zip \\
        --transform=center-crop --resolution=256x256
    afgan-dataset --source=cifar-10-python.tar.gz --dest=cifar10-32.zip
    afgan-dataset --source=tfds:oxford_flowers102:train --dest=flowers-128.zip \\
        --transform=center-crop --resolution=128x128 --max-images=5000
    afgan-dataset --source=~/animals --dest=animals.zip --labels=subfolders \\
        --transform=center-crop --resolution=64x64

`--source`: an image folder (recursive), a .zip of images, a prepared tfds
dataset `tfds:NAME[:SPLIT]`, or the CIFAR-10 python tarball. `--dest`: a
.zip (or a new folder) in the reference's layout (`00000/img00000000.png`,
..., `dataset.json` with `[name, class]` label pairs): afgan-train and the
reference's train.py both read it. Without `--transform` every image must
have the same size; the output must be square with a power-of-two side.
The output is written under a temporary name and renamed when complete.
"""

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "Image folder, .zip, tfds:NAME[:SPLIT], builtin[:NAME] or "
                    "the CIFAR-10 python tarball.", required=True)
flags.DEFINE_string("dest", None, "Output .zip (or new folder).", required=True)
flags.DEFINE_string("resolution", None, "Output size WxH, e.g. 256x256 (default: the first "
                    "image's size).")
flags.DEFINE_enum("transform", "none", ["none", "center-crop", "center-crop-wide"],
                  "Crop: none (all images the same size), center-crop (central square), "
                  "center-crop-wide (central band on a square canvas); needs --resolution.")
flags.DEFINE_integer("max-images", None, "Write at most this many images.")
flags.DEFINE_enum("labels", "dataset.json", ["dataset.json", "subfolders", "none"],
                  "Class labels: the source's (dataset.json, tfds 'label', CIFAR-10 classes), "
                  "one class per top-level subfolder, or none.")
flags.DEFINE_string("data-dir", None, "tensorflow-datasets data dir for tfds: sources.")


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.data.tool import convert_dataset

    summary = convert_dataset(
        _FLAGS.source, _FLAGS.dest, resolution=_FLAGS.resolution, transform=_FLAGS.transform,
        max_images=_FLAGS["max-images"].value, labels=_FLAGS.labels,
        data_dir=_FLAGS["data-dir"].value)
    width, height = summary.resolution
    classes = f", {summary.num_classes} classes" if summary.num_classes else ", no labels"
    skipped = f", {len(summary.skipped)} unreadable skipped" if summary.skipped else ""
    print(f"Wrote {summary.dest}: {summary.num_images} images, {width}x{height}, "
          f"{summary.channels} channel(s){classes}{skipped}")


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
