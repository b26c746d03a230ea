"""Resolving `--data` into images in memory: the built-in set, tfds, folders, zips.

Every source ends in the same place: `ImageDataset`, uint8 images
`[N, R, R, C]` center-cropped to a square and resized (antialiased Lanczos)
to one resolution, and optional integer labels. tensorflow_datasets is
imported only when a `builtin` or `tfds:` source is loaded.
"""

import dataclasses
import io
import json
import os
import pathlib
import re
import warnings
import zipfile

import numpy as np

from keras_afgan.data.locations import default_data_dir

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BUILTIN_CONFIGS = ("faces", "textures")
DATA_FORMS = ("'builtin', 'builtin:faces', 'builtin:textures', 'tfds:NAME[:SPLIT]', "
              "a folder of images or a .zip of images")


class UnreadableImageWarning(UserWarning):
    """An image file could not be decoded and was skipped."""


class DatasetWarning(UserWarning):
    """Something in a dataset that was resolved one way and deserves a look
    (images of an odd size, duplicate label entries)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images (and labels) in memory, ready for `training_dataset`.

    Attributes:
        name: the `data` string it was loaded from.
        images: uint8 `[N, R, R, C]`.
        labels: int64 `[N]` class indices, or None for an unlabelled dataset.
        c_dim: the number of classes (the width of one-hot labels); 0 without labels.
        skipped: the files that could not be decoded and were left out.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray | None = None
    c_dim: int = 0
    skipped: tuple = ()

    def __post_init__(self):
        images = self.images
        if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]
                or images.shape[3] not in (1, 3)):
            raise ValueError(
                "Expected images of dtype uint8 and shape [N, R, R, C] with C 1 or 3. "
                f"Received: dtype={images.dtype}, shape={images.shape}")
        if self.labels is not None:
            if self.labels.shape != (len(images),):
                raise ValueError(
                    f"Expected one label per image, shape ({len(images)},). "
                    f"Received: shape={self.labels.shape}")
            if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < self.c_dim:
                raise ValueError(
                    f"Expected labels in [0, c_dim={self.c_dim}). "
                    f"Received: labels in [{self.labels.min()}, {self.labels.max()}]")
        elif self.c_dim != 0:
            raise ValueError(f"Expected c_dim=0 without labels. Received: c_dim={self.c_dim}")

    def __len__(self):
        return len(self.images)

    @property
    def resolution(self):
        return self.images.shape[1]

    @property
    def channels(self):
        return self.images.shape[3]

    @property
    def num_skipped(self):
        """How many unreadable files were skipped."""
        return len(self.skipped)


def load_images(data, resolution=None, use_labels=False, channels=3, max_images=None,
                data_dir=None):
    """Loads a dataset named by a `--data` string into memory.

    Steps, for every image of every source: decode; convert to RGB (or
    grayscale for `channels=1`); center-crop to a square; resize to
    `resolution` with PIL's antialiased Lanczos filter; stack as uint8.
    Files that cannot be decoded are skipped with an `UnreadableImageWarning`
    and listed in `skipped`.

    Args:
        data: one of
            `builtin` or `builtin:faces` (100 faces, 32x32, no labels),
            `builtin:textures` (320 texture crops, 64x64, 5 classes): the
                `afgan_builtin` tfds dataset, prepared offline on first use;
            `tfds:NAME[:SPLIT]`: a prepared tensorflow-datasets dataset
                (NAME may carry `/config` and `:x.y.z`; SPLIT defaults to
                `train`), features `image` and, for labels, `label`;
            a folder (searched recursively) or a `.zip` of `.png`, `.jpg`,
                `.jpeg`, `.bmp`, `.webp` files, with labels from a
                `dataset.json` `{"labels": [["relative/path.png", int], ...]}`
                at its root (the reference's dataset_tool format).
        resolution: output side in pixels; None keeps the shorter side of the
            first image.
        use_labels: load class labels (for conditional models). A dataset
            without labels is an error.
        channels: 3 (RGB; grayscale is repeated) or 1 (grayscale).
        max_images: keep at most this many images (the first ones in the
            source's order); None keeps all.
        data_dir: tensorflow-datasets data dir. Default: for the built-in
            dataset `default_data_dir()` (`$KERAS_AFGAN_DATA_DIR` or
            `~/.cache/keras_afgan/tensorflow_datasets`), for other tfds
            datasets tfds's own default (`$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`).

    Returns:
        An `ImageDataset`.
    """
    if resolution is not None and (not _is_int(resolution) or resolution < 1):
        raise ValueError(f"Expected resolution to be a positive integer or None. "
                         f"Received: resolution={resolution!r}")
    if channels not in (1, 3):
        raise ValueError(f"Expected channels to be 1 or 3. Received: channels={channels!r}")
    if max_images is not None and (not _is_int(max_images) or max_images < 1):
        raise ValueError(f"Expected max_images to be a positive integer or None. "
                         f"Received: max_images={max_images!r}")
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if not isinstance(data, str) or not data:
        raise ValueError(f"Expected data to be {DATA_FORMS}. Received: data={data!r}")

    options = dict(resolution=resolution, use_labels=use_labels, channels=channels,
                   max_images=max_images)
    if data == "builtin" or data.startswith("builtin:"):
        from keras_afgan.data import builtin

        config = data.partition(":")[2] or "faces"
        if config not in BUILTIN_CONFIGS:
            raise ValueError(f"Expected the built-in dataset to be one of "
                             f"{['builtin:' + c for c in BUILTIN_CONFIGS]}. Received: {data!r}")
        builder = builtin.prepare_builtin(config, data_dir)
        return _load_tfds_builder(builder, "train", data, **options)
    if data.startswith("tfds:"):
        return _load_tfds(data, data_dir=data_dir, **options)

    path = pathlib.Path(data).expanduser()
    if path.is_dir():
        return _load_files(data, _FolderReader(path), **options)
    if path.is_file() and path.suffix.lower() == ".zip":
        return _load_files(data, _ZipReader(path), **options)
    reason = "it is a file but not a .zip" if path.exists() else "no such file or folder"
    raise ValueError(f"Expected data to be {DATA_FORMS}. Received: {data!r} ({reason})")


def center_crop_resize(image, resolution=None, channels=3):
    """One PIL image to uint8 `[R, R, C]`.

    Steps: 16-bit grayscale to 8 bits (`round(v / 257)`); convert to RGB
    (`channels=3`) or grayscale (`channels=1`);
    center-crop to a square of the shorter side (offsets `(w - s) // 2`,
    `(h - s) // 2`); resize to `resolution` with PIL's Lanczos filter, which
    widens its kernel when downsampling (antialiasing).

    Args:
        image: a `PIL.Image.Image`.
        resolution: output side; None keeps the crop's side.
        channels: 1 or 3.

    Returns:
        uint8 array `[R, R, channels]`.
    """
    from PIL import Image

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale (PIL reads 16-bit PNGs as I;16 or I): scale to 8 bits,
        # where convert() would clip everything above 255 to white.
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8), "L")
    image = image.convert("RGB" if channels == 3 else "L")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    resolution = resolution or side
    if side != resolution:
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array.reshape(resolution, resolution, channels)


# ----------------------------------------------------------------- files


class _FolderReader:
    def __init__(self, root):
        self.root = root

    def names(self):
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                      if p.is_file())

    def read(self, name):
        return (self.root / name).read_bytes()

    def close(self):
        pass


class _ZipReader:
    def __init__(self, path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"Expected {os.fspath(path)!r} to be a readable .zip of images. "
                             f"Received: a file that is not ({e})") from None

    def names(self):
        return sorted(n for n in self.zip.namelist() if not n.endswith("/"))

    def read(self, name):
        return self.zip.read(name)

    def close(self):
        self.zip.close()


def _load_files(data, reader, resolution, use_labels, channels, max_images):
    try:
        return _read_files(data, reader, resolution, use_labels, channels, max_images)
    finally:
        reader.close()


def _read_files(data, reader, resolution, use_labels, channels, max_images):
    from PIL import Image

    names = reader.names()
    image_names = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    if not image_names:
        raise ValueError(f"Expected image files ({', '.join(IMAGE_EXTENSIONS)}) in {data!r}. "
                         "Received: none found")
    label_map = None
    if use_labels:
        label_map = _read_labels(data, reader, "dataset.json" in names)
    if resolution is None:
        resolution = _common_side(data, reader, image_names[:max_images])

    images, labels, skipped = [], [], []
    for name in image_names:
        if max_images is not None and len(images) == max_images:
            break
        try:
            with Image.open(io.BytesIO(reader.read(name))) as image:
                image.load()
                array = center_crop_resize(image, resolution, channels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            warnings.warn(f"Skipping unreadable image {name!r} in {data!r}: {e}",
                          UnreadableImageWarning, stacklevel=4)
            skipped.append(name)
            continue
        if label_map is not None:
            if name not in label_map:
                raise ValueError(f"Expected a label for every image in dataset.json of {data!r}. "
                                 f"Received: no label for {name!r}")
            labels.append(label_map[name])
        images.append(array)
    if not images:
        raise ValueError(f"Expected readable images in {data!r}. "
                         f"Received: all {len(skipped)} image files unreadable")
    if label_map is None:
        return ImageDataset(data, np.stack(images), skipped=tuple(skipped))
    labels = np.asarray(labels, np.int64)
    if labels.max() >= len(labels):
        # One-hot labels are max + 1 wide: a stray huge label would ask for gigabytes.
        worst = max(label_map, key=label_map.get)
        raise ValueError(
            f"Expected class labels below the number of labelled images ({len(labels)}) in "
            f"dataset.json of {data!r}. Received: label {label_map[worst]} for {worst!r}")
    return ImageDataset(data, np.stack(images), labels, int(labels.max()) + 1, tuple(skipped))


def _common_side(data, reader, names):
    """The most common square side (the shorter side of each image) among
    `names`, read from the image headers; warns naming the images of other
    sizes (they are cropped and resized to it)."""
    from PIL import Image

    sides = {}
    for name in names:
        try:
            with Image.open(io.BytesIO(reader.read(name))) as image:
                sides[name] = min(image.size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            continue  # reported as unreadable when it is decoded
    if not sides:
        return None
    values, counts = np.unique(list(sides.values()), return_counts=True)
    side = int(values[np.argmax(counts)])  # ties: the smaller side
    odd = sorted(name for name, value in sides.items() if value != side)
    if odd:
        warnings.warn(
            f"{len(odd)} of {len(sides)} images in {data!r} are not {side} px (the most common "
            f"size); they are cropped and resized to it: {odd[:10]}"
            + (" and more" if len(odd) > 10 else ""), DatasetWarning, stacklevel=5)
    return side


def _read_labels(data, reader, has_json):
    """`{relative path: class index}` from `dataset.json`."""
    if not has_json:
        raise ValueError(f"Expected labels (use_labels=True): a dataset.json in {data!r}. "
                         "Received: dataset without labels (no dataset.json)")
    try:
        labels = json.loads(reader.read("dataset.json")).get("labels")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"Expected dataset.json in {data!r} to be a JSON object "
                         f'{{"labels": [[path, int], ...]}}. Received: {e}') from None
    if labels is None:
        raise ValueError(f"Expected labels (use_labels=True) in dataset.json of {data!r}. "
                         'Received: dataset without labels ("labels": null)')
    label_map, duplicates = {}, []
    for entry in labels if isinstance(labels, list) else [labels]:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                or not isinstance(entry[0], str) or not _is_int(entry[1]) or entry[1] < 0):
            raise ValueError(f"Expected dataset.json labels of {data!r} to be "
                             f"[relative path, non-negative int] pairs. Received: {entry!r}")
        name = entry[0].replace("\\", "/")
        if name in label_map:
            duplicates.append(name)
        label_map[name] = int(entry[1])
    if duplicates:
        warnings.warn(
            f"dataset.json of {data!r} lists {len(duplicates)} images more than once; the last "
            f"entry of each is used: {sorted(set(duplicates))[:10]}", DatasetWarning,
            stacklevel=4)
    return label_map


# ------------------------------------------------------------------ tfds


_VERSION = re.compile(r"\d+\.\d+\.(\d+|\*)")


def _parse_tfds(data):
    """`tfds:NAME[/CONFIG][:X.Y.Z][:SPLIT]` -> (name, split)."""
    parts = data[len("tfds:"):].split(":")
    name, rest = parts[0], parts[1:]
    if rest and _VERSION.fullmatch(rest[0]):
        name += ":" + rest.pop(0)
    return name, ":".join(rest) or "train"


def _load_tfds(data, resolution, use_labels, channels, max_images, data_dir):
    import tensorflow_datasets as tfds

    from keras_afgan.data import builtin  # registers afgan_builtin

    name, split = _parse_tfds(data)
    if not name:
        raise ValueError(f"Expected 'tfds:NAME[:SPLIT]'. Received: {data!r} (no NAME)")
    if data_dir is None and re.split("[/:]", name)[0] == builtin.AfganBuiltin.name:
        data_dir = default_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(f"Expected a registered tensorflow-datasets name in {data!r}. "
                         f"Received: unknown dataset {name!r}") from None
    except (ValueError, AssertionError) as e:
        raise ValueError(f"Could not open tensorflow-datasets dataset {name!r} of {data!r}: "
                         f"{e}") from None
    if not builder.is_prepared():
        if isinstance(builder, builtin.AfganBuiltin):
            builder = builtin.prepare_builtin(builder.builder_config.name, data_dir)
        else:
            raise ValueError(
                f"Expected tensorflow-datasets dataset {name!r} to be prepared in "
                f"{os.fspath(builder.data_dir)!r}. Received: it is not, and keras_afgan does not "
                f"download datasets; build it first (e.g. `tfds build {name} --data_dir "
                f"{os.fspath(builder.data_dir_root)}`) or pass that data_dir")
    return _load_tfds_builder(builder, split, data, resolution, use_labels, channels, max_images)


def _load_tfds_builder(builder, split, data, resolution, use_labels, channels, max_images):
    from PIL import Image

    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"Expected an 'image' feature in {data!r}. "
                         f"Received: features {sorted(features)}")
    if use_labels and "label" not in features:
        raise ValueError(f"Expected labels (use_labels=True): a 'label' feature in {data!r}. "
                         f"Received: dataset without labels (features {sorted(features)})")
    keys = ["image", "label"] if use_labels else ["image"]
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except (ValueError, KeyError, AssertionError) as e:
        raise ValueError(f"Expected a split of {data!r} in {sorted(builder.info.splits)}. "
                         f"Received: split={split!r} ({e})") from None
    ds = ds.map(lambda example: {k: example[k] for k in keys})
    if max_images is not None:
        ds = ds.take(max_images)

    images, labels = [], []
    for example in ds.as_numpy_iterator():
        array = example["image"]
        if array.dtype != np.uint8:
            raise ValueError(f"Expected uint8 images in {data!r}. Received: dtype={array.dtype}")
        if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
            raise ValueError(f"Expected images [H, W, 1, 3 or 4] in {data!r}. "
                             f"Received: shape={array.shape}")
        image = Image.fromarray(array[:, :, 0] if array.shape[-1] == 1 else array)
        array = center_crop_resize(image, resolution, channels)
        resolution = resolution or array.shape[0]
        images.append(array)
        if use_labels:
            labels.append(int(example["label"]))
    if not images:
        raise ValueError(f"Expected images in {data!r}. Received: split {split!r} is empty")
    if not use_labels:
        return ImageDataset(data, np.stack(images))
    labels = np.asarray(labels, np.int64)
    num_classes = getattr(features["label"], "num_classes", None)
    return ImageDataset(data, np.stack(images), labels, num_classes or int(labels.max()) + 1)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
