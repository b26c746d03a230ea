"""`afgan-dataset`: image folders, zips, tfds datasets and CIFAR-10 into training zips.

The output has the layout of the reference's `dataset_tool.py`, so its
`train.py` reads our zips and we read its zips:

    00000/img00000000.png ... 00000/img00000999.png, 00001/img00001000.png, ...
    dataset.json   {"labels": [["00000/img00000000.png", 6], ...]}  (or "labels": null)

Every image is decoded, converted to RGB (grayscale sources stay
grayscale, as in the reference), optionally cropped and resized
(`--transform`, `--resolution`), and written as PNG in source order (sorted
paths, tfds record order, CIFAR-10 batch order). The output is written
under a temporary name and renamed when complete: an interrupted or failed
run leaves no half-written dataset at `dest`.
"""

import dataclasses
import io
import json
import math
import os
import pathlib
import pickle
import re
import shutil
import sys
import tarfile
import time
import warnings
import zipfile

import numpy as np

from keras_afgan.data.sources import IMAGE_EXTENSIONS
from keras_afgan.data.sources import UnreadableImageWarning
from keras_afgan.data.sources import decode_errors
from keras_afgan.data.sources import to_8_bits

TRANSFORMS = ("none", "center-crop", "center-crop-wide")
LABELS = ("dataset.json", "subfolders", "none")
CIFAR_BATCHES = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))


@dataclasses.dataclass
class Summary:
    """What `convert_dataset` wrote."""

    dest: str
    num_images: int
    resolution: tuple  # (width, height)
    channels: int
    num_classes: int  # 0 without labels
    skipped: tuple  # source items that did not decode


def archive_name(index):
    """The reference's member name of image `index`: `00001/img00001234.png`."""
    return f"{index // 1000:05d}/img{index:08d}.png"


def parse_resolution(text):
    """'256x256' -> (256, 256); None or '' -> None."""
    if text in (None, ""):
        return None
    match = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", str(text))
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise ValueError(f"Expected --resolution as WxH, e.g. 256x256. Received: {text!r}")
    return int(match.group(1)), int(match.group(2))


# ----------------------------------------------------------------- sources


@dataclasses.dataclass
class _Item:
    name: str  # where it came from, for messages and subfolder labels
    load: object  # () -> PIL image
    label: int = None


def _file_items(files, labels_mode, source):
    """Items of a folder or zip reader (`keras_afgan.data.sources` readers)."""
    from PIL import Image

    names = files.names()
    image_names = [n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    label_of = {}
    if labels_mode == "dataset.json" and "dataset.json" in names:
        listing = json.loads(files.read("dataset.json"))
        entries = listing.get("labels") if isinstance(listing, dict) else None
        if entries is not None:
            label_of = {str(n).replace("\\", "/"): int(c) for n, c in entries}
            missing = [n for n in image_names if n not in label_of]
            if missing:
                raise ValueError(f"Expected a label for every image in dataset.json of "
                                 f"{source!r}. Received: no label for {missing[0]!r}")
    elif labels_mode == "subfolders":
        folders = sorted({n.split("/")[0] for n in image_names if "/" in n})
        loose = [n for n in image_names if "/" not in n]
        if not folders or loose:
            raise ValueError(
                f"Expected --labels=subfolders to find every image of {source!r} in a "
                f"subfolder (one per class). Received: "
                + (f"{len(loose)} images at the top level, e.g. {loose[0]!r}" if loose
                   else "no subfolders"))
        index = {f: i for i, f in enumerate(folders)}
        label_of = {n: index[n.split("/")[0]] for n in image_names}

    def loader(name):
        return lambda: Image.open(io.BytesIO(files.read(name)))

    return len(image_names), (_Item(n, loader(n), label_of.get(n)) for n in image_names)


def _tfds_items(source, labels_mode, data_dir):
    from PIL import Image

    from keras_afgan.data import sources

    builder, split = sources.tfds_builder(source, data_dir)
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"Expected an 'image' feature in {source!r}. "
                         f"Received: features {sorted(features)}")
    with_labels = labels_mode == "dataset.json" and "label" in features
    if labels_mode == "subfolders":
        raise ValueError(f"Expected --labels=dataset.json or none for {source!r}. "
                         "Received: --labels=subfolders (a tfds dataset has no folders)")
    records = sources.TFRecordImages(source)
    entries = sources.tfds_entries(builder, split, source, None)

    def items():
        for entry in entries:
            example = records.example(records.record(entry))
            encoded = example["image"].bytes_list.value[0]
            label = int(example["label"].int64_list.value[0]) if with_labels else None
            yield _Item(records.entry_name(entry),
                        (lambda data: lambda: Image.open(io.BytesIO(data)))(encoded), label)

    return len(entries), items()


def _cifar_items(path, labels_mode):
    """The 50,000 training images of the CIFAR-10 python tarball, in batch order."""
    from PIL import Image

    if labels_mode == "subfolders":
        raise ValueError("Expected --labels=dataset.json or none for the CIFAR-10 tarball. "
                         "Received: --labels=subfolders")
    with tarfile.open(path) as tar:
        batches = []
        for member in CIFAR_BATCHES:
            try:
                batches.append(pickle.load(tar.extractfile(member), encoding="bytes"))
            except KeyError:
                raise ValueError(f"Expected the CIFAR-10 python tarball "
                                 f"(cifar-10-python.tar.gz) at {path!r}. Received: an archive "
                                 f"without {member}") from None
    images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
    images = images.transpose(0, 2, 3, 1)  # [N, 32, 32, 3]
    labels = np.concatenate([b[b"labels"] for b in batches])
    keep_labels = labels_mode == "dataset.json"

    def items():
        for i, (image, label) in enumerate(zip(images, labels)):
            yield _Item(f"cifar-10#{i}", (lambda a: lambda: Image.fromarray(a))(image),
                        int(label) if keep_labels else None)

    return len(images), items()


def _items(source, labels_mode, data_dir):
    if source.startswith("tfds:") or source == "builtin" or source.startswith("builtin:"):
        return _tfds_items(source, labels_mode, data_dir)
    path = pathlib.Path(source).expanduser()
    if path.is_dir():
        from keras_afgan.data.sources import FolderReader

        return _file_items(FolderReader(path), labels_mode, source)
    if path.is_file() and path.suffix.lower() == ".zip":
        from keras_afgan.data.sources import ZipReader

        return _file_items(ZipReader(path), labels_mode, source)
    if path.is_file() and tarfile.is_tarfile(path):
        return _cifar_items(path, labels_mode)
    reason = "no such file or folder" if not path.exists() else "not a folder, .zip or tarball"
    raise ValueError(
        "Expected --source to be an image folder, a .zip, 'tfds:NAME[:SPLIT]', 'builtin[:NAME]' "
        f"or the CIFAR-10 python tarball. Received: {source!r} ({reason})")


# --------------------------------------------------------------- transforms


def _transform(image, transform, resolution):
    """The reference's transforms on a PIL image (RGB or L), to `resolution` (W, H):

    - none: resized to (W, H) if given (Lanczos), else unchanged;
    - center-crop: the central square of the shorter side, resized to (W, H);
    - center-crop-wide (wide pictures, e.g. LSUN cars at 512x384): the
      central `round(W h / w)` rows of a w x h image, resized to (W, H) and
      centred vertically on a black W x W canvas. An image narrower than W
      or whose band is under H rows gives None (skipped, as the reference).
    """
    from PIL import Image

    if transform == "none":
        if resolution is not None and image.size != resolution:
            image = image.resize(resolution, Image.LANCZOS)
        return image
    w, h = image.size
    width, height = resolution
    if transform == "center-crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        return image.crop((left, top, left + side, top + side)).resize(resolution, Image.LANCZOS)
    band = int(np.round(width * h / w))
    if w < width or band < height:
        return None
    top = (h - band) // 2
    image = image.crop((0, top, w, top + band)).resize((width, height), Image.LANCZOS)
    canvas = Image.new(image.mode, (width, width))
    canvas.paste(image, (0, (width - height) // 2))
    return canvas


# ------------------------------------------------------------------ writers


class _ZipWriter:
    def __init__(self, dest):
        self.dest = dest
        self.partial = f"{dest}.partial-{os.getpid()}"
        # PNGs are compressed already: store them.
        self.zip = zipfile.ZipFile(self.partial, "w", compression=zipfile.ZIP_STORED)

    def write(self, name, data):
        self.zip.writestr(name, data)

    def commit(self):
        self.zip.close()
        os.replace(self.partial, self.dest)

    def abort(self):
        self.zip.close()
        os.remove(self.partial)


class _FolderWriter:
    def __init__(self, dest):
        if os.path.isdir(dest) and os.listdir(dest):
            raise ValueError(f"Expected --dest to be a new or empty folder. Received: {dest!r}, "
                             "which holds files (nothing was written)")
        self.dest = dest
        self.partial = f"{dest.rstrip('/')}.partial-{os.getpid()}"
        os.makedirs(self.partial)

    def write(self, name, data):
        path = os.path.join(self.partial, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def commit(self):
        if os.path.isdir(self.dest):
            os.rmdir(self.dest)  # empty, checked at the start
        os.replace(self.partial, self.dest)

    def abort(self):
        shutil.rmtree(self.partial, ignore_errors=True)


class _Progress:
    """A one-line progress bar on stderr (a plain line per 10 % when not a terminal)."""

    def __init__(self, total, enabled):
        self.total, self.enabled, self.start = max(total, 1), enabled, time.time()
        self.shown, self.tty = -1, sys.stderr.isatty()

    def update(self, done):
        if not self.enabled:
            return
        fraction = done / self.total
        step = int(fraction * (100 if self.tty else 10))
        if step == self.shown and done != self.total:
            return
        self.shown = step
        rate = done / max(time.time() - self.start, 1e-9)
        bar = "#" * int(fraction * 30)
        line = f"[{bar:<30}] {done}/{self.total} images, {rate:.0f} img/s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


# -------------------------------------------------------------------- main


def convert_dataset(source, dest, resolution=None, transform="none", max_images=None,
                    labels="dataset.json", data_dir=None, verbose=True):
    """Write `source` as a training dataset at `dest` (the reference's layout).

    Args:
        source: an image folder (searched recursively), a `.zip` of images, a
            prepared tfds dataset `tfds:NAME[:SPLIT]` (or `builtin[:NAME]`),
            or the CIFAR-10 python tarball (`cifar-10-python.tar.gz`, its
            50,000 training images).
        dest: a `.zip` path, or a new (or empty) folder.
        resolution: `(W, H)` or 'WxH'; None keeps the first image's size.
            The output must be square with a power-of-two side (what
            training takes); `center-crop-wide` makes a W x W canvas.
        transform: 'none' (every image must then have the same size, after
            resizing to `resolution` if given), 'center-crop' or
            'center-crop-wide'; the last two need `resolution`.
        max_images: write at most this many images (the first in source order).
        labels: 'dataset.json' (the source's labels: its dataset.json, a tfds
            `label` feature, CIFAR-10's classes; none if it has none),
            'subfolders' (class = the sorted index of each image's top-level
            folder), or 'none'.
        data_dir: tensorflow-datasets data dir for `tfds:` sources.
        verbose: show a progress bar on stderr.

    Returns:
        A `Summary`.
    """
    resolution = parse_resolution(resolution) if not isinstance(resolution, tuple) else resolution
    if transform not in TRANSFORMS:
        raise ValueError(f"Expected --transform in {TRANSFORMS}. Received: {transform!r}")
    if transform != "none" and resolution is None:
        raise ValueError(f"Expected --resolution=WxH with --transform={transform}. "
                         "Received: no --resolution")
    if labels not in LABELS:
        raise ValueError(f"Expected --labels in {LABELS}. Received: {labels!r}")
    if max_images is not None and (int(max_images) != max_images or max_images < 1):
        raise ValueError(f"Expected --max-images to be a positive integer. "
                         f"Received: {max_images!r}")
    dest = os.fspath(dest)
    is_zip = dest.lower().endswith(".zip")
    if is_zip and os.path.exists(dest):
        raise ValueError(f"Expected --dest to be a new file. Received: {dest!r}, which exists "
                         "(nothing was written; remove it first)")
    if not is_zip and os.path.exists(dest) and not os.path.isdir(dest):
        raise ValueError(f"Expected --dest to be a .zip or a folder. Received: {dest!r}, "
                         "an existing file")

    total, items = _items(os.fspath(source), labels, data_dir)
    if total == 0:
        raise ValueError(f"Expected images in {source!r}. Received: none found")
    if max_images is not None:
        total = min(total, int(max_images))
    writer = _ZipWriter(dest) if is_zip else _FolderWriter(dest)
    progress = _Progress(total, verbose)
    size = channels = None
    written, skipped, label_list = 0, [], []
    try:
        for item in items:
            if written == total:
                break
            try:
                with item.load() as image:
                    image.load()
                    image = _to_rgb_or_l(image)
            except decode_errors() as e:
                warnings.warn(f"Skipping unreadable image {item.name!r}: {e}",
                              UnreadableImageWarning, stacklevel=2)
                skipped.append(item.name)
                continue
            image = _transform(image, transform, resolution)
            if image is None:
                warnings.warn(f"Skipping {item.name!r}: too narrow or too short for "
                              f"--transform=center-crop-wide at {resolution}",
                              UnreadableImageWarning, stacklevel=2)
                skipped.append(item.name)
                continue
            if size is None:
                size, channels = image.size, len(image.getbands())
                _check_training_size(size, source)
            elif image.size != size:
                raise ValueError(
                    f"Expected every image to be {size[0]}x{size[1]} like the first one (no "
                    f"--transform). Received: {item.name!r} is {image.size[0]}x{image.size[1]}; "
                    "pass --transform=center-crop and --resolution=WxH to crop and resize")
            elif len(image.getbands()) != channels:
                raise ValueError(
                    f"Expected every image to have {channels} channel(s) like the first one. "
                    f"Received: {item.name!r} has {len(image.getbands())}")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=0, optimize=False)
            name = archive_name(written)
            writer.write(name, buffer.getvalue())
            if item.label is not None:
                label_list.append([name, item.label])
            written += 1
            progress.update(written)
        if written == 0:
            raise ValueError(f"Expected readable images in {source!r}. "
                             f"Received: all {len(skipped)} unreadable")
        if label_list and len(label_list) != written:
            raise ValueError(f"Expected a label for every image of {source!r}. "
                             f"Received: {written - len(label_list)} without")
        writer.write("dataset.json", json.dumps({"labels": label_list or None}).encode())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    num_classes = 1 + max(c for _, c in label_list) if label_list else 0
    return Summary(dest, written, size, channels, num_classes, tuple(skipped))


def _to_rgb_or_l(image):
    """RGB, or L for grayscale sources (16-bit grayscale scaled to 8 bits)."""
    image = to_8_bits(image)
    return image.convert("L" if image.mode in ("L", "LA", "1") else "RGB")


def _check_training_size(size, source):
    width, height = size
    if width != height or width != 2 ** int(round(math.log2(width))):
        raise ValueError(
            f"Expected square images with a power-of-two side (what training takes). "
            f"Received: {width}x{height} from {source!r}; pass --resolution=WxH (square, a "
            "power of two) with --transform=center-crop or center-crop-wide")
