"""afgan-dataset (`keras_afgan.data.tool`): the reference's layout in and out.

Data conversion runs in numpy and PIL only; the tests run on every backend
(the same code on each).
"""

import io
import json
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from keras_afgan import data
from keras_afgan.data.tool import archive_name
from keras_afgan.data.tool import convert_dataset
from keras_afgan.data.tool import parse_resolution


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_folder(root, arrays, labels=None):
    for name, array in arrays.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
    if labels is not None:
        (root / "dataset.json").write_text(json.dumps({"labels": [[n, labels[n]]
                                                                  for n in sorted(labels)]}))


def test_written_zip_has_the_reference_layout_and_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"cls{i % 3}/photo{i:02d}.png" for i in range(7)]
    arrays = {n: rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for n in names}
    labels = {n: i % 3 for i, n in enumerate(names)}
    _write_folder(tmp_path / "src", arrays, labels)

    summary = convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip", verbose=False)
    assert (summary.num_images, summary.resolution, summary.num_classes) == (7, (16, 16), 3)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        members = sorted(archive.namelist())
        listing = json.loads(archive.read("dataset.json"))
        stored = {n: np.asarray(Image.open(io.BytesIO(archive.read(n))))
                  for n in members if n.endswith(".png")}
    # The reference's names: 00000/img00000000.png ..., in source (sorted) order.
    assert members == sorted([f"00000/img{i:08d}.png" for i in range(7)] + ["dataset.json"])
    assert listing == {"labels": [[f"00000/img{i:08d}.png", labels[n]]
                                  for i, n in enumerate(sorted(names))]}
    for i, name in enumerate(sorted(names)):
        np.testing.assert_array_equal(stored[archive_name(i)], arrays[name])  # lossless

    loaded = data.load_images(str(tmp_path / "out.zip"), use_labels=True)
    np.testing.assert_array_equal(loaded.images, np.stack([arrays[n] for n in sorted(names)]))
    np.testing.assert_array_equal(loaded.labels, [labels[n] for n in sorted(names)])


def test_a_zip_in_the_reference_layout_streams_with_its_labels(tmp_path):
    """A zip written here the way the reference's dataset_tool writes one
    (member names, uncompressed PNGs, `[name, int]` label pairs, a second
    thousand-folder)."""
    rng = np.random.default_rng(1)
    indices = [0, 1, 2, 1000, 1001]
    arrays = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in indices]
    classes = [4, 0, 2, 1, 4]
    with zipfile.ZipFile(tmp_path / "ref.zip", "w", compression=zipfile.ZIP_STORED) as archive:
        for index, array in zip(indices, arrays):
            archive.writestr(f"{index // 1000:05d}/img{index:08d}.png", _png(array))
        archive.writestr("dataset.json", json.dumps({"labels": [
            [f"{i // 1000:05d}/img{i:08d}.png", c] for i, c in zip(indices, classes)]}))
    source = data.open_images(str(tmp_path / "ref.zip"), use_labels=True)
    assert isinstance(source, data.StreamingDataset) and len(source) == 5
    np.testing.assert_array_equal(source.labels, classes)
    assert source.c_dim == 5
    np.testing.assert_array_equal(source.read([4, 0, 3]), np.stack([arrays[4], arrays[0],
                                                                  arrays[3]]))
    # Unlabelled reference zips carry "labels": null.
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.writestr("00000/img00000000.png", _png(arrays[0]))
        archive.writestr("dataset.json", json.dumps({"labels": None}))
    assert data.open_images(str(tmp_path / "plain.zip")).labels is None


def test_mixed_sizes_are_refused_without_a_transform_and_no_partial_zip_remains(tmp_path):
    arrays = {"a.png": np.zeros((16, 16, 3), np.uint8), "b.png": np.zeros((16, 20, 3), np.uint8)}
    _write_folder(tmp_path / "src", arrays)
    with pytest.raises(ValueError, match=r"'b.png' is 20x16.*--transform=center-crop"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip", verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["src"]  # neither out.zip nor a partial file
    summary = convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip",
                              transform="center-crop", resolution="8x8", verbose=False)
    assert summary.num_images == 2 and summary.resolution == (8, 8)


def test_center_crop_wide_and_checks(tmp_path):
    wide = np.zeros((60, 80, 3), np.uint8)
    wide[:, :, 0] = 200  # a red picture, 80 wide and 60 high
    _write_folder(tmp_path / "src", {"car.png": wide})
    convert_dataset(str(tmp_path / "src"), tmp_path / "out", transform="center-crop-wide",
                    resolution="16x12", verbose=False)
    out = np.asarray(Image.open(tmp_path / "out" / "00000" / "img00000000.png"))
    # The picture (16x12) in the middle of a black 16x16 canvas: rows 2 to 13.
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[:2], 0)
    np.testing.assert_array_equal(out[14:], 0)
    np.testing.assert_allclose(out[2:14, :, 0], 200, atol=1)
    with pytest.raises(ValueError, match="power-of-two"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "bad.zip", transform="center-crop",
                        resolution="24x24", verbose=False)
    with pytest.raises(ValueError, match="--resolution=WxH with --transform"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "bad.zip", transform="center-crop",
                        verbose=False)
    with pytest.raises(ValueError, match="new or empty folder"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "out", verbose=False)
    with pytest.raises(ValueError, match=r"WxH.*'256'"):
        parse_resolution("256")


def test_subfolder_labels_max_images_and_unreadable_files(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {f"{animal}/{i}.png": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
              for animal in ("dog", "cat") for i in range(3)}
    _write_folder(tmp_path / "src", arrays)
    (tmp_path / "src" / "cat" / "9.png").write_bytes(b"not a png")
    with pytest.warns(data.UnreadableImageWarning, match="9.png"):
        summary = convert_dataset(str(tmp_path / "src"), tmp_path / "out.zip",
                                  labels="subfolders", max_images=5, verbose=False)
    assert summary.num_images == 5 and summary.skipped == ("cat/9.png",)
    loaded = data.load_images(str(tmp_path / "out.zip"), use_labels=True)
    # Sorted paths: cat/0..2 (class 0), (cat/9 unreadable), dog/0, dog/1 (class 1).
    np.testing.assert_array_equal(loaded.labels, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(loaded.images[3], arrays["dog/0.png"])
    (tmp_path / "src" / "loose.png").write_bytes(_png(arrays["dog/0.png"]))
    with pytest.raises(ValueError, match="loose.png"):
        convert_dataset(str(tmp_path / "src"), tmp_path / "again.zip", labels="subfolders",
                        verbose=False)


def test_cifar10_python_tarball(tmp_path):
    """A tarball in CIFAR-10's python layout: five pickled batches of
    `data` [n, 3072] (channel-major rows) and `labels`."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 10)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for b in range(5):
            rows = slice(2 * b, 2 * b + 2)
            batch = {b"data": images[rows].transpose(0, 3, 1, 2).reshape(2, 3072),
                     b"labels": labels[rows].tolist()}
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{b + 1}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    summary = convert_dataset(str(tmp_path / "cifar-10-python.tar.gz"), tmp_path / "c.zip",
                              verbose=False)
    assert summary.num_images == 10 and summary.resolution == (32, 32)
    loaded = data.load_images(str(tmp_path / "c.zip"), use_labels=True)
    np.testing.assert_array_equal(loaded.images, images)
    np.testing.assert_array_equal(loaded.labels, labels)


def test_tfds_source(tfds_dir, tmp_path):
    summary = convert_dataset("builtin:textures", tmp_path / "t.zip", max_images=12,
                              data_dir=tfds_dir, verbose=False)
    assert summary.num_images == 12 and summary.num_classes >= 1
    ours = data.load_images(str(tmp_path / "t.zip"), use_labels=True)
    direct = data.load_images("builtin:textures", use_labels=True, max_images=12,
                              data_dir=tfds_dir)
    np.testing.assert_array_equal(ours.images, direct.images)
    np.testing.assert_array_equal(ours.labels, direct.labels)
