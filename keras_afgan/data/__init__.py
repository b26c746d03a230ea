"""Datasets: the built-in set, tensorflow-datasets, image folders and zips.

`open_images` resolves a `--data` string into a `StreamingDataset` (an
index; images are decoded per batch), `load_images` into uint8 images in
memory; `afgan-dataset` (`keras_afgan.data.tool`) writes zips and folders
in the reference's layout. `training_dataset` turns either into the
endless, deterministic tf.data stream of batches that `AliasFreeGAN.fit`
consumes on every backend. TensorFlow and
tensorflow_datasets are imported only when these run; the tfds builder class
`AfganBuiltin` is imported on first access.
"""

from keras_afgan.data.locations import default_data_dir
from keras_afgan.data.pipeline import training_dataset
from keras_afgan.data.sources import DatasetWarning
from keras_afgan.data.sources import IMAGE_EXTENSIONS
from keras_afgan.data.sources import ImageDataset
from keras_afgan.data.sources import StreamingDataset
from keras_afgan.data.sources import UnreadableImageWarning
from keras_afgan.data.sources import center_crop_resize
from keras_afgan.data.sources import load_images
from keras_afgan.data.sources import open_images

_BUILTIN_NAMES = ("AfganBuiltin", "prepare_builtin")


def __getattr__(name):
    # The builder module imports tensorflow_datasets; load it on first use.
    if name in _BUILTIN_NAMES:
        from keras_afgan.data import builtin

        return getattr(builtin, name)
    raise AttributeError(f"module 'keras_afgan.data' has no attribute {name!r}")


__all__ = [
    "AfganBuiltin",
    "DatasetWarning",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "UnreadableImageWarning",
    "center_crop_resize",
    "default_data_dir",
    "load_images",
    "open_images",
    "prepare_builtin",
    "StreamingDataset",
    "training_dataset",
]
