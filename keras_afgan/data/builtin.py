"""`afgan_builtin`: a small image dataset made from images shipped by scikit-image.

It needs no network, so examples, tests and a first `train` run work offline.
It is a tensorflow-datasets builder, so it goes through the same loader as
any `tfds:NAME` dataset. Importing this module imports tensorflow_datasets
(and registers the builder); `keras_afgan.data` imports it only when needed.

Configs:
    faces: the 100 face images of `skimage.data.lfw_subset()` (grayscale
        25x25), upsampled to 32x32 with a Lanczos filter, stored as RGB. No
        labels.
    textures: 320 crops of 64x64, 64 from each of five skimage images on a
        regular 8x8 grid (no resampling), with the source image as class
        label: brick, grass, gravel (grayscale, stored as RGB),
        immunohistochemistry and coffee (colour).
"""

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from keras_afgan.data.locations import default_data_dir

FACES_COUNT = 100  # lfw_subset(): 100 faces, then 100 non-faces
TEXTURE_CLASSES = ("brick", "grass", "gravel", "immunohistochemistry", "coffee")
TEXTURE_GRID = 8  # crops per side of each source image


@dataclasses.dataclass(eq=False)
class AfganBuiltinConfig(tfds.core.BuilderConfig):
    """A config of `AfganBuiltin`: the stored (square) resolution and classes."""

    resolution: int = 32
    class_names: tuple = ()


class AfganBuiltin(tfds.core.GeneratorBasedBuilder):
    """The built-in dataset (tfds name `afgan_builtin`), made offline from skimage."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "faces and textures configs."}
    BUILDER_CONFIGS = [
        AfganBuiltinConfig(
            name="faces", resolution=32,
            description="100 LFW faces from skimage.data.lfw_subset(), 32x32 RGB, unlabelled."),
        AfganBuiltinConfig(
            name="textures", resolution=64, class_names=TEXTURE_CLASSES,
            description="320 64x64 crops of 5 skimage images, labelled by source image."),
    ]

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # tfds resolves this through `importlib_resources`, which pip leaves out on
        # python >= 3.9 (etils needs it only below 3.9); the file is all it needs.
        return epath.Path(__file__)

    def _info(self):
        r = self.builder_config.resolution
        features = {"image": tfds.features.Image(shape=(r, r, 3))}
        class_names = list(self.builder_config.class_names)
        if class_names:
            features["label"] = tfds.features.ClassLabel(names=class_names)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label") if "label" in features else None,
            homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything comes from the installed scikit-image
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        if self.builder_config.name == "faces":
            for i, image in enumerate(faces_images()):
                yield i, {"image": image}
        else:
            for i, (image, label) in enumerate(zip(*textures_images())):
                yield i, {"image": image, "label": int(label)}


def faces_images():
    """The `faces` images in source order: uint8 `[100, 32, 32, 3]`."""
    import skimage.data
    from PIL import Image

    faces = skimage.data.lfw_subset()[:FACES_COUNT]  # [100, 25, 25] floats in [0, 1]
    r = AfganBuiltin.BUILDER_CONFIGS[0].resolution
    out = []
    for face in faces:
        # Resample the floats (mode "F") so there is one rounding, at the end.
        big = Image.fromarray(face.astype(np.float32)).resize((r, r), Image.LANCZOS)
        gray = np.rint(np.clip(np.asarray(big), 0.0, 1.0) * 255).astype(np.uint8)
        out.append(np.repeat(gray[:, :, None], 3, axis=2))
    return np.stack(out)


def textures_images():
    """The `textures` crops in source order: uint8 `[320, 64, 64, 3]`, int labels `[320]`."""
    import skimage.data

    r = AfganBuiltin.BUILDER_CONFIGS[1].resolution
    images, labels = [], []
    for label, name in enumerate(TEXTURE_CLASSES):
        source = getattr(skimage.data, name)()  # [H, W] or [H, W, 3] uint8
        if source.ndim == 2:
            source = np.repeat(source[:, :, None], 3, axis=2)
        tops = np.linspace(0, source.shape[0] - r, TEXTURE_GRID).round().astype(int)
        lefts = np.linspace(0, source.shape[1] - r, TEXTURE_GRID).round().astype(int)
        for top in tops:
            for left in lefts:
                images.append(source[top:top + r, left:left + r, :3])
                labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


def prepare_builtin(config="faces", data_dir=None):
    """Prepares (once) and returns the `afgan_builtin` builder of a config.

    Preparation reads images from the installed scikit-image and never uses
    the network (no download manager, no GCS lookup).

    Args:
        config: "faces" or "textures".
        data_dir: tensorflow-datasets data dir (default: `default_data_dir()`).

    Returns:
        A prepared `AfganBuiltin`.
    """
    names = [c.name for c in AfganBuiltin.BUILDER_CONFIGS]
    if config not in names:
        raise ValueError(
            f"Expected the built-in dataset config to be one of {names}. Received: {config!r}")
    builder = AfganBuiltin(config=config, data_dir=os.fspath(data_dir or default_data_dir()))
    if not builder.is_prepared():
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder
