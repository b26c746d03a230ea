"""Resolving `--data` into images: the built-in set, tfds, folders, zips.

`open_images` indexes a source and returns a `StreamingDataset`, which
decodes images on demand (`read(indices)`, per batch in the training
pipeline); `load_images` decodes all of it into an in-memory `ImageDataset`.
Both give uint8 images `[R, R, C]` center-cropped to a square and resized
(antialiased Lanczos) to one resolution, and optional integer labels.
tensorflow_datasets is imported only when a `builtin` or `tfds:` source is
opened.
"""

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import re
import struct
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

    streaming = False
    failed = ()

    def read(self, indices):
        """uint8 `[n, R, R, C]`: images `indices` (an int sequence) in that order."""
        return self.images[np.asarray(indices, np.int64).reshape(-1)]

    def load(self):
        return self

    def close(self):
        pass


def open_images(data, resolution=None, use_labels=False, channels=3, max_images=None,
                data_dir=None):
    """Opens a dataset named by a `--data` string for streaming.

    Opening is an index pass: it lists the images (file names, or the
    offsets of tfds records), parses every image header (not its pixels)
    and reads the labels. Files whose header does not parse are skipped
    with an `UnreadableImageWarning` and listed in `skipped`. The pixels are
    decoded by `read` (per batch, in the training pipeline): decode; convert
    to RGB (or grayscale for `channels=1`); center-crop to a square; resize
    to `resolution` with PIL's antialiased Lanczos filter.

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
        max_images: keep at most this many images (the first readable ones
            in the source's order: sorted paths, or tfds record order); None
            keeps all.
        data_dir: tensorflow-datasets data dir. Default: for the built-in
            dataset `default_data_dir()` (`$KERAS_AFGAN_DATA_DIR` or
            `~/.cache/keras_afgan/tensorflow_datasets`), for other tfds
            datasets tfds's own default (`$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`).

    Returns:
        A `StreamingDataset`.
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
    if data == "builtin" or data.startswith("builtin:") or data.startswith("tfds:"):
        builder, split = tfds_builder(data, data_dir)
        return _open_tfds_builder(builder, split, data, **options)

    path = pathlib.Path(data).expanduser()
    if path.is_dir():
        return _open_files(data, FolderReader(path), **options)
    if path.is_file() and path.suffix.lower() == ".zip":
        files = ZipReader(path)
        try:
            return _open_files(data, files, **options)
        except Exception:
            files.close()
            raise
    reason = "it is a file but not a .zip" if path.exists() else "no such file or folder"
    raise ValueError(f"Expected data to be {DATA_FORMS}. Received: {data!r} ({reason})")


def load_images(data, resolution=None, use_labels=False, channels=3, max_images=None,
                data_dir=None):
    """Loads a dataset named by a `--data` string into memory: `open_images`
    (same arguments), then every image decoded (`StreamingDataset.load`).

    For small sets (tests, the built-in set, spectra of a few images);
    training and the metrics stream with `open_images`. Images that do not
    decode are left out with an `UnreadableImageWarning` and listed in
    `skipped`.

    Returns:
        An `ImageDataset`.
    """
    source = open_images(data, resolution, use_labels, channels, max_images, data_dir)
    try:
        return source.load()
    finally:
        source.close()


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

    image = to_8_bits(image).convert("RGB" if channels == 3 else "L")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    resolution = resolution or side
    if side != resolution:
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array.reshape(resolution, resolution, channels)


def to_8_bits(image):
    """16-bit grayscale (PIL reads 16-bit PNGs as I;16 or I) scaled to 8-bit
    `L` (`round(v / 257)`), where convert() would clip everything above 255
    to white; other images unchanged."""
    from PIL import Image

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8), "L")
    return image


# ----------------------------------------------------------------- files


class FolderReader:
    """Image files under a folder (recursively), named by their relative path."""

    def __init__(self, root):
        self.root = root

    def names(self):
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                      if p.is_file())

    def read(self, name):
        return (self.root / name).read_bytes()

    def open(self, name):
        return open(self.root / name, "rb")

    def paths(self, names):
        """The files that hold `names` (and the labels)."""
        return [self.root / n for n in names] + [p for p in [self.root / "dataset.json"]
                                                 if p.is_file()]

    def close(self):
        pass


class ZipReader:
    """Members of a zip. `zipfile` reads one archive from several threads
    safely (a shared, locked file handle), which tf.data's parallel map does."""

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

    def open(self, name):
        return self.zip.open(name)

    def paths(self, names):
        del names
        return [self.path]

    def close(self):
        self.zip.close()


_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zipfile.BadZipFile)


def decode_errors():
    """The exceptions a file that is no readable image raises when decoded."""
    from PIL import Image

    return _DECODE_ERRORS + (Image.DecompressionBombError,)


class StreamingDataset:
    """A dataset indexed at open and decoded on demand, batch by batch.

    `open_images` returns one for folders, zips and tfds datasets; only the
    index (file names or record offsets) and the labels stay in memory.
    `read(indices)` decodes, center-crops and resizes those images (the
    steps of `center_crop_resize`) and is what `training_dataset` calls per
    batch inside tf.data's parallel map. It is safe to call from several
    threads.

    An image whose header read at open but whose data does not decode is
    found at its first read: it is reported once (`UnreadableImageWarning`),
    counted in `failed`, and replaced in every batch by the next readable
    image in index order, so a batch keeps its size and the stream its order.

    Attributes:
        name: the `data` string it was opened from.
        labels: int64 `[N]` class indices, or None.
        c_dim: the number of classes; 0 without labels.
        skipped: files left out at open (headers that did not parse).
        resolution, channels: the side and channel count of what `read` returns.
    """

    streaming = True

    def __init__(self, name, reader, entries, resolution, channels, labels=None, c_dim=0,
                 skipped=()):
        import threading

        self.name = name
        self._reader = reader
        self._entries = list(entries)
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.labels = labels
        self.c_dim = int(c_dim)
        self.skipped = tuple(skipped)
        self._failed = {}
        self._lock = threading.Lock()
        if labels is not None and labels.shape != (len(self._entries),):
            raise ValueError(f"Expected one label per image, shape ({len(self._entries)},). "
                             f"Received: shape={labels.shape}")

    def __len__(self):
        return len(self._entries)

    @property
    def failed(self):
        """Images that did not decode when read (replaced in batches), in index order."""
        with self._lock:
            return tuple(self._failed[i] for i in sorted(self._failed))

    @property
    def num_skipped(self):
        """How many unreadable files were left out or replaced so far."""
        return len(self.skipped) + len(self.failed)

    def fingerprint(self):
        """What identifies these images on disk (a JSON-able list): the source,
        a digest of its files' paths, sizes and modification times, and
        resolution, channels and count. Keys the metrics' cache of real
        features; it changes when any file is replaced, added or removed."""
        digest = hashlib.sha256()
        for path in self._reader.paths(self._entries):
            stat = os.stat(path)
            digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                          .encode())
        return [self.name, digest.hexdigest(), self.resolution, self.channels, len(self)]

    def entry_name(self, index):
        """A readable name of image `index` (its path, or tfds record)."""
        return self._reader.entry_name(self._entries[index])

    def decode(self, index):
        """Image `index` as uint8 `[R, R, C]`; raises if it does not decode."""
        with self._reader.open_image(self._entries[index]) as image:
            image.load()
            return center_crop_resize(image, self.resolution, self.channels)

    def read(self, indices):
        """uint8 `[n, R, R, C]`: images `indices` (an int sequence) in that order."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        out = np.empty((len(indices), self.resolution, self.resolution, self.channels),
                       np.uint8)
        for row, index in enumerate(indices):
            out[row] = self._read_one(int(index))
        return out

    def _read_one(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Expected an image index in [0, {len(self)}). "
                             f"Received: {index}")
        for step in range(len(self)):
            k = (index + step) % len(self)
            if k in self._failed:
                continue
            try:
                return self.decode(k)
            except decode_errors() as e:
                self._fail(k, e)
        raise ValueError(f"Expected readable images in {self.name!r}. "
                         f"Received: all {len(self)} indexed images unreadable")

    def _fail(self, index, error):
        name = self.entry_name(index)
        with self._lock:
            if index in self._failed:
                return
            self._failed[index] = name
        warnings.warn(f"Skipping unreadable image {name!r} in {self.name!r} (replaced by the "
                      f"next readable one): {error}", UnreadableImageWarning, stacklevel=2)

    def load(self):
        """Every image decoded into an in-memory `ImageDataset` (unreadable ones left out)."""
        images, kept = [], []
        for index in range(len(self)):
            try:
                images.append(self.decode(index))
                kept.append(index)
            except decode_errors() as e:
                self._fail(index, e)
        if not images:
            raise ValueError(f"Expected readable images in {self.name!r}. Received: all "
                             f"{len(self) + len(self.skipped)} image files unreadable")
        labels = None if self.labels is None else self.labels[kept]
        return ImageDataset(self.name, np.stack(images), labels, self.c_dim,
                            self.skipped + self.failed)

    def close(self):
        self._reader.close()


class _FileImages:
    """`StreamingDataset`'s access to a folder or zip: entries are member names."""

    def __init__(self, files):
        self.files = files

    def entry_name(self, entry):
        return entry

    def paths(self, entries):
        return self.files.paths(entries)

    def open_image(self, entry):
        from PIL import Image

        # Bytes in memory: PIL then needs no open handle on the zip or file.
        return Image.open(io.BytesIO(self.files.read(entry)))

    def close(self):
        self.files.close()


def _open_files(data, files, resolution, use_labels, channels, max_images):
    from PIL import Image

    names = files.names()
    image_names = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    if not image_names:
        raise ValueError(f"Expected image files ({', '.join(IMAGE_EXTENSIONS)}) in {data!r}. "
                         "Received: none found")
    label_map = None
    if use_labels:
        label_map = _read_labels(data, files, "dataset.json" in names)

    # The index pass: every header is parsed (never the pixel data); files
    # whose header does not parse are left out here.
    sides, skipped, entries = {}, [], []
    for name in image_names:
        if max_images is not None and len(entries) == max_images:
            break
        try:
            with files.open(name) as stream, Image.open(stream) as image:
                sides[name] = min(image.size)
        except decode_errors() as e:
            warnings.warn(f"Skipping unreadable image {name!r} in {data!r}: {e}",
                          UnreadableImageWarning, stacklevel=4)
            skipped.append(name)
            continue
        entries.append(name)
    if not entries:
        raise ValueError(f"Expected readable images in {data!r}. "
                         f"Received: all {len(skipped)} image files unreadable")
    if resolution is None:
        resolution = _common_side(data, sides)
    labels = c_dim = None
    if label_map is not None:
        missing = [n for n in entries if n not in label_map]
        if missing:
            raise ValueError(f"Expected a label for every image in dataset.json of {data!r}. "
                             f"Received: no label for {missing[0]!r}"
                             + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        labels = np.asarray([label_map[n] for n in entries], np.int64)
        if labels.max() >= len(labels):
            # One-hot labels are max + 1 wide: a stray huge label would ask for gigabytes.
            worst = max(label_map, key=label_map.get)
            raise ValueError(
                f"Expected class labels below the number of labelled images ({len(labels)}) "
                f"in dataset.json of {data!r}. Received: label {label_map[worst]} for {worst!r}")
        c_dim = int(labels.max()) + 1
    return StreamingDataset(data, _FileImages(files), entries, resolution, channels, labels,
                            c_dim or 0, skipped)


def _common_side(data, sides):
    """The most common square side (the shorter side of each image) in
    `sides` `{name: side}`; warns naming the images of other sizes (they are
    cropped and resized to it)."""
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


def tfds_builder(data, data_dir=None):
    """The prepared tfds builder and split of `builtin[:NAME]` or `tfds:NAME[:SPLIT]`."""
    import tensorflow_datasets as tfds

    from keras_afgan.data import builtin  # registers afgan_builtin

    if data == "builtin" or data.startswith("builtin:"):
        config = data.partition(":")[2] or "faces"
        if config not in BUILTIN_CONFIGS:
            raise ValueError(f"Expected the built-in dataset to be one of "
                             f"{['builtin:' + c for c in BUILTIN_CONFIGS]}. Received: {data!r}")
        return builtin.prepare_builtin(config, data_dir), "train"
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
    return builder, split


class TFRecordImages:
    """`StreamingDataset`'s access to a prepared tfds split: entries are
    `(file, offset, length)` of serialized `tf.train.Example` records."""

    def __init__(self, data):
        self.data = data

    def entry_name(self, entry):
        path, offset, _ = entry
        return f"{os.path.basename(path)}@{offset}"

    def paths(self, entries):
        return sorted({path for path, _, _ in entries})

    @staticmethod
    def record(entry):
        path, offset, length = entry
        with open(path, "rb") as f:
            f.seek(offset)
            payload = f.read(length)
        if len(payload) != length:
            raise OSError(f"truncated record at byte {offset} of {path}")
        return payload

    @staticmethod
    def example(payload):
        from tensorflow.core.example import example_pb2

        try:
            return example_pb2.Example.FromString(payload).features.feature
        except Exception as e:  # protobuf's DecodeError is no OSError
            raise OSError(f"not a tf.train.Example ({e})") from None

    def open_image(self, entry):
        from PIL import Image

        encoded = self.example(self.record(entry))["image"].bytes_list.value
        if not encoded:
            raise OSError("no encoded image in the record's 'image' feature")
        return Image.open(io.BytesIO(encoded[0]))

    def close(self):
        pass


def _tfrecord_entries(path, skip, take):
    """`(path, offset, length)` of records `[skip, skip + take)` of a TFRecord
    file (all from `skip` when `take < 0`), read from the record framing
    only: an 8-byte length, its 4-byte CRC, the payload, its 4-byte CRC."""
    entries = []
    with open(path, "rb") as f:
        index = 0
        while take < 0 or index < skip + take:
            header = f.read(12)
            if not header:
                break
            if len(header) < 12:
                raise ValueError(f"Expected TFRecord framing in {path}. Received: a truncated "
                                 f"record header at byte {f.tell() - len(header)}")
            length = struct.unpack("<Q", header[:8])[0]
            if index >= skip:
                entries.append((path, f.tell(), length))
            f.seek(length + 4, os.SEEK_CUR)
            index += 1
    return entries


def tfds_entries(builder, split, data, max_images=None):
    """`(file, offset, length)` of the first `max_images` records of a split
    (all for None), in tfds's file order, from the TFRecord framing only."""
    file_format = str(getattr(builder.info, "file_format", "tfrecord")).lower()
    if "tfrecord" not in file_format:
        raise ValueError(f"Expected a tfds dataset prepared as TFRecord files in {data!r}. "
                         f"Received: file format {file_format!r}")
    try:
        instructions = builder.info.splits[split].file_instructions
    except (ValueError, KeyError, AssertionError) as e:
        raise ValueError(f"Expected a split of {data!r} in {sorted(builder.info.splits)}. "
                         f"Received: split={split!r} ({e})") from None
    entries = []
    for instruction in instructions:
        remaining = -1 if max_images is None else max_images - len(entries)
        if remaining == 0:
            break
        take = instruction.take if remaining < 0 else (
            remaining if instruction.take < 0 else min(instruction.take, remaining))
        entries += _tfrecord_entries(os.fspath(instruction.filename), instruction.skip, take)
    if not entries:
        raise ValueError(f"Expected images in {data!r}. Received: split {split!r} is empty")
    return entries


def _open_tfds_builder(builder, split, data, resolution, use_labels, channels, max_images):
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"Expected an 'image' feature in {data!r}. "
                         f"Received: features {sorted(features)}")
    if use_labels and "label" not in features:
        raise ValueError(f"Expected labels (use_labels=True): a 'label' feature in {data!r}. "
                         f"Received: dataset without labels (features {sorted(features)})")
    image_feature = features["image"]
    if getattr(image_feature, "np_dtype", np.uint8) != np.uint8:
        raise ValueError(f"Expected uint8 images in {data!r}. "
                         f"Received: dtype={image_feature.np_dtype}")
    entries = tfds_entries(builder, split, data, max_images)

    images = TFRecordImages(data)
    shape = tuple(image_feature.shape)
    labels = None
    sides = {}
    if use_labels or resolution is None and None in shape[:2]:
        # The index pass reads the records (labels, headers), never the pixels.
        values = []
        for entry in entries:
            example = images.example(images.record(entry))
            if use_labels:
                values.append(example["label"].int64_list.value[0])
            if resolution is None and None in shape[:2]:
                from PIL import Image

                with Image.open(io.BytesIO(example["image"].bytes_list.value[0])) as image:
                    sides[images.entry_name(entry)] = min(image.size)
        labels = np.asarray(values, np.int64) if use_labels else None
    if resolution is None:
        resolution = _common_side(data, sides) if sides else min(shape[:2])
    c_dim = 0
    if use_labels:
        c_dim = getattr(features["label"], "num_classes", None) or int(labels.max()) + 1
    return StreamingDataset(data, images, entries, resolution, channels, labels, c_dim)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
