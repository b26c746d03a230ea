"""Where datasets are prepared on disk (read by the sources and the built-in builder)."""

import os

DEFAULT_DATA_DIR = os.path.join("~", ".cache", "keras_afgan", "tensorflow_datasets")


def default_data_dir():
    """Where the built-in dataset is prepared (a tensorflow-datasets data dir).

    `$KERAS_AFGAN_DATA_DIR` when set, else
    `~/.cache/keras_afgan/tensorflow_datasets`.
    """
    return os.path.expanduser(os.environ.get("KERAS_AFGAN_DATA_DIR") or DEFAULT_DATA_DIR)
