"""Folders and zips of images: decoding, labels, skipping, crop and resize."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from keras_afgan import data


def write_image(path, array, **kwargs):
    """Writes a uint8 `[H, W]` or `[H, W, C]` array with PIL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, **kwargs)


def _labelled_folder(root, rng):
    """Six 8x8 RGB images in two sub-folders, labels 0..2 in dataset.json."""
    names = [f"{d}/img{i}.png" for d in ("00000", "00001") for i in range(3)]
    arrays = {n: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for n in names}
    labels = {n: i % 3 for i, n in enumerate(names)}
    for name, array in arrays.items():
        write_image(root / name, array)
    (root / "dataset.json").write_text(json.dumps({"labels": [[n, labels[n]] for n in names]}))
    (root / "README.txt").write_text("not an image")
    return arrays, labels


def _expect(loaded, arrays, labels):
    names = sorted(arrays)
    np.testing.assert_array_equal(loaded.images, np.stack([arrays[n] for n in names]))
    np.testing.assert_array_equal(loaded.labels, [labels[n] for n in names])
    assert loaded.c_dim == 3 and loaded.num_skipped == 0


def test_folder_with_dataset_json_labels(tmp_path):
    arrays, labels = _labelled_folder(tmp_path / "ds", np.random.default_rng(0))
    loaded = data.load_images(str(tmp_path / "ds"), use_labels=True)
    assert loaded.images.shape == (6, 8, 8, 3) and loaded.images.dtype == np.uint8
    _expect(loaded, arrays, labels)
    unlabelled = data.load_images(tmp_path / "ds")  # a pathlib.Path works too
    assert unlabelled.labels is None and unlabelled.c_dim == 0


def test_zip_with_dataset_json_labels(tmp_path):
    arrays, labels = _labelled_folder(tmp_path / "ds", np.random.default_rng(1))
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "ds").rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "ds").as_posix())
    _expect(data.load_images(str(archive), use_labels=True), arrays, labels)


def test_every_extension_is_read(tmp_path):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)]
    write_image(tmp_path / "a.png", arrays[0])
    write_image(tmp_path / "b.BMP", arrays[1])
    write_image(tmp_path / "c.webp", arrays[2], lossless=True)
    smooth = np.full((8, 8, 3), 90, np.uint8)
    write_image(tmp_path / "d.jpeg", smooth, quality=95)
    loaded = data.load_images(str(tmp_path))
    np.testing.assert_array_equal(loaded.images[:3], np.stack(arrays[:3]))
    np.testing.assert_allclose(loaded.images[3], smooth, atol=3)  # JPEG is lossy


def test_corrupt_files_are_skipped_counted_and_warned(tmp_path):
    good = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    write_image(tmp_path / "good.png", good)
    (tmp_path / "garbage.png").write_bytes(b"this is not a png")
    buffer = io.BytesIO()
    Image.fromarray(good).save(buffer, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buffer.getvalue()[:60])
    with pytest.warns(data.UnreadableImageWarning) as record:
        loaded = data.load_images(str(tmp_path))
    messages = " ".join(str(w.message) for w in record)
    assert "garbage.png" in messages and "truncated.png" in messages
    assert loaded.num_skipped == 2
    assert sorted(loaded.skipped) == ["garbage.png", "truncated.png"]
    np.testing.assert_array_equal(loaded.images, good[None])


def test_only_corrupt_files_is_an_error(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"nope")
    with pytest.warns(data.UnreadableImageWarning), pytest.raises(ValueError, match="unreadable"):
        data.load_images(str(tmp_path))


def test_empty_missing_and_non_zip_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        data.load_images(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="does_not_exist"):
        data.load_images(str(tmp_path / "does_not_exist"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="notes.txt"):
        data.load_images(str(tmp_path / "notes.txt"))
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.zip"):
        data.load_images(str(tmp_path / "bad.zip"))


def test_labels_requested_without_labels(tmp_path):
    write_image(tmp_path / "plain" / "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="plain"):
        data.load_images(str(tmp_path / "plain"), use_labels=True)
    (tmp_path / "plain" / "dataset.json").write_text(json.dumps({"labels": None}))
    with pytest.raises(ValueError, match="plain"):
        data.load_images(str(tmp_path / "plain"), use_labels=True)
    (tmp_path / "plain" / "dataset.json").write_text(json.dumps({"labels": [["b.png", 0]]}))
    with pytest.raises(ValueError, match="a.png"):
        data.load_images(str(tmp_path / "plain"), use_labels=True)


def test_non_square_images_are_center_cropped(tmp_path):
    rng = np.random.default_rng(4)
    wide = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # [H, W, C]
    tall = rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)
    write_image(tmp_path / "a_wide.png", wide)
    write_image(tmp_path / "b_tall.png", tall)
    loaded = data.load_images(str(tmp_path), resolution=32)
    np.testing.assert_array_equal(loaded.images[0], wide[:, 8:40])
    np.testing.assert_array_equal(loaded.images[1], tall[8:40, :])

    # Resized too: only the central square's colour survives.
    stripes = np.zeros((20, 40, 3), np.uint8)
    stripes[:, :10] = (255, 0, 0)
    stripes[:, 10:30] = (0, 200, 0)
    stripes[:, 30:] = (0, 0, 255)
    write_image(tmp_path / "stripes" / "s.png", stripes)
    out = data.load_images(str(tmp_path / "stripes"), resolution=16).images[0]
    np.testing.assert_allclose(out, np.broadcast_to([0, 200, 0], (16, 16, 3)), atol=1)


def test_downsampling_is_antialiased(tmp_path):
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    write_image(tmp_path / "checker.png", checker)
    out = data.load_images(str(tmp_path), resolution=16).images[0].astype(float)
    # Point sampling would give all 0 or all 255; a low-pass gives mid gray.
    assert abs(out.mean() - 127.5) < 3 and out.std() < 3


def test_grayscale_and_rgba_sources(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    rgba = np.random.default_rng(5).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    write_image(tmp_path / "a_gray.png", gray)
    write_image(tmp_path / "b_rgba.png", rgba)
    loaded = data.load_images(str(tmp_path))
    np.testing.assert_array_equal(loaded.images[0], np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(loaded.images[1], rgba[:, :, :3])
    single = data.load_images(str(tmp_path), channels=1, max_images=1)
    assert single.images.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(single.images[0, :, :, 0], gray)


def test_resolution_defaults_to_the_images_side_and_max_images(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", np.full((12, 10, 3), i, np.uint8))
    loaded = data.load_images(str(tmp_path), max_images=2)
    assert loaded.images.shape == (2, 10, 10, 3)


def test_resolution_is_the_most_common_size_and_odd_files_are_named(tmp_path):
    # The alphabetically first file is the odd one: it must not set the size.
    write_image(tmp_path / "a_stray.png", np.full((40, 40, 3), 9, np.uint8))
    for i in range(3):
        write_image(tmp_path / f"b{i}.png", np.full((64, 64, 3), i, np.uint8))
    with pytest.warns(data.DatasetWarning, match=r"1 of 4 images .* not 64 px .*a_stray\.png"):
        loaded = data.load_images(str(tmp_path))
    assert loaded.resolution == 64 and loaded.images.shape == (4, 64, 64, 3)


def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path):
    """PIL reads 16-bit grayscale PNGs as I;16: they must not clip to white."""
    values = (np.arange(64).reshape(8, 8) * 1000 + 7).astype(np.uint16)  # up to 63007
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    loaded = data.load_images(str(tmp_path))
    expected = np.rint(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(loaded.images[0], np.repeat(expected[:, :, None], 3, axis=2))
    assert 0 < loaded.images.mean() < 255


def test_duplicate_label_entries_are_named(tmp_path):
    arrays, labels = _labelled_folder(tmp_path, np.random.default_rng(2))
    listing = json.loads((tmp_path / "dataset.json").read_text())
    listing["labels"].append(["00000/img0.png", 2])
    (tmp_path / "dataset.json").write_text(json.dumps(listing))
    with pytest.warns(data.DatasetWarning, match=r"more than once.*00000/img0\.png"):
        loaded = data.load_images(str(tmp_path), use_labels=True)
    assert loaded.labels[sorted(arrays).index("00000/img0.png")] == 2  # the last entry


def test_a_huge_label_is_refused_by_name(tmp_path):
    _labelled_folder(tmp_path, np.random.default_rng(3))
    listing = json.loads((tmp_path / "dataset.json").read_text())
    listing["labels"][4][1] = 1_000_000_000
    (tmp_path / "dataset.json").write_text(json.dumps(listing))
    with pytest.raises(ValueError, match=r"below the number of labelled images \(6\).*"
                                         r"label 1000000000 for '00001/img1\.png'"):
        data.load_images(str(tmp_path), use_labels=True)


@pytest.mark.parametrize("kwargs, name", [
    (dict(resolution=0), "resolution"),
    (dict(channels=2), "channels"),
    (dict(max_images=0), "max_images"),
])
def test_bad_arguments(tmp_path, kwargs, name):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=name):
        data.load_images(str(tmp_path), **kwargs)


def test_bad_data_argument():
    with pytest.raises(ValueError, match="42"):
        data.load_images(42)


def test_streamed_batches_equal_the_in_memory_ones(tmp_path):
    """The training stream of a zip, decoded per batch, equals the stream of
    the same images loaded into memory (same order, mirror flips, labels)."""
    arrays, _ = _labelled_folder(tmp_path / "ds", np.random.default_rng(8))
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "ds").rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "ds").as_posix())
    streamed = data.open_images(str(archive), use_labels=True)
    loaded = data.load_images(str(archive), use_labels=True)
    assert isinstance(streamed, data.StreamingDataset) and not hasattr(streamed, "images")
    kwargs = dict(batch_size=4, z_dim=3, mirror=True, seed=2, start_step=5)
    ours = data.training_dataset(streamed, **kwargs).take(4)
    theirs = data.training_dataset(loaded, **kwargs).take(4)
    for a, b in zip(ours.as_numpy_iterator(), theirs.as_numpy_iterator()):
        for key in b:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_an_image_that_fails_to_decode_in_a_batch_is_replaced_and_counted(tmp_path):
    """Its header parses at open (no full decode pass); its pixels fail at
    the first read: the next readable image stands in, with one warning."""
    rng = np.random.default_rng(9)
    arrays = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    for i, array in enumerate(arrays):
        write_image(tmp_path / f"{i}.png", array)
    buffer = io.BytesIO()
    Image.fromarray(arrays[1]).save(buffer, format="PNG")
    (tmp_path / "1.png").write_bytes(buffer.getvalue()[:60])  # header intact, pixels cut
    source = data.open_images(str(tmp_path))
    assert len(source) == 3 and source.skipped == ()
    with pytest.warns(data.UnreadableImageWarning, match=r"'1.png'.*replaced"):
        batch = source.read([1, 0, 1])
    np.testing.assert_array_equal(batch, np.stack([arrays[2], arrays[0], arrays[2]]))
    assert source.failed == ("1.png",) and source.num_skipped == 1
    with pytest.raises(IndexError, match=r"\[0, 3\).*7"):
        source.read([7])


def test_tfds_split_slices_stream_from_record_offsets(tfds_dir):
    """`tfds:NAME[:SPLIT]` with a sliced split reads the records the slice
    names, in tfds's order, as tfds's own decoding gives them."""
    import tensorflow_datasets as tfds

    source = data.open_images("tfds:afgan_builtin/textures:train[10:20]", use_labels=True,
                              data_dir=tfds_dir)
    builder = tfds.builder("afgan_builtin/textures", data_dir=tfds_dir)
    expected = list(builder.as_dataset(split="train[10:20]", shuffle_files=False)
                    .as_numpy_iterator())
    assert len(source) == 10 and source.c_dim == 5
    np.testing.assert_array_equal(source.read(np.arange(10)),
                                  np.stack([e["image"] for e in expected]))
    np.testing.assert_array_equal(source.labels, [e["label"] for e in expected])
