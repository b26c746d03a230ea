"""The `afgan_builtin` tfds builder and the `builtin` / `tfds:` sources."""

import os

import numpy as np
import pytest
import skimage.data

from keras_afgan import data


def _as_numpy(builder):
    import tensorflow_datasets as tfds

    return list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))


def test_faces_builder_prepares_offline(tfds_dir, no_network):
    import tensorflow_datasets as tfds

    builder = data.prepare_builtin("faces", data_dir=tfds_dir)
    assert isinstance(builder, tfds.core.GeneratorBasedBuilder)
    assert builder.name == "afgan_builtin"
    assert builder.is_prepared()
    assert os.path.isdir(tfds_dir / "afgan_builtin" / "faces")
    assert builder.info.splits["train"].num_examples == 100
    assert "label" not in builder.info.features

    examples = _as_numpy(builder)
    images = np.stack([e["image"] for e in examples])
    assert images.shape == (100, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[..., 0], images[..., 1])  # gray stored as RGB
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    # Resampling 25 -> 32 keeps each face's mean brightness: compare as multisets
    # (tfds stores examples in its own order).
    source = skimage.data.lfw_subset()[:100]
    np.testing.assert_allclose(np.sort(images.mean(axis=(1, 2, 3)) / 255),
                               np.sort(source.mean(axis=(1, 2))), atol=0.01)


def test_textures_builder_has_labelled_crops(tfds_dir, no_network):
    builder = data.prepare_builtin("textures", data_dir=tfds_dir)
    assert builder.info.features["label"].names == [
        "brick", "grass", "gravel", "immunohistochemistry", "coffee"]
    loaded = data.load_images("builtin:textures", use_labels=True, data_dir=tfds_dir)
    assert loaded.images.shape == (320, 64, 64, 3)
    assert loaded.c_dim == 5
    np.testing.assert_array_equal(np.bincount(loaded.labels), [64] * 5)
    # Crops are unresampled: the top-left corner of each source is one of them.
    brick = np.repeat(skimage.data.brick()[:64, :64, None], 3, axis=2)
    color = skimage.data.immunohistochemistry()[:64, :64]
    assert any(np.array_equal(x, brick) for x in loaded.images[loaded.labels == 0])
    assert any(np.array_equal(x, color) for x in loaded.images[loaded.labels == 3])


def test_builtin_defaults_to_faces_and_resizes(tfds_dir):
    loaded = data.load_images("builtin", resolution=16, data_dir=tfds_dir)
    assert loaded.images.shape == (100, 16, 16, 3)
    assert loaded.labels is None and loaded.c_dim == 0 and loaded.num_skipped == 0
    assert data.load_images("builtin:faces", data_dir=tfds_dir).resolution == 32


def test_data_dir_comes_from_environment(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERAS_AFGAN_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == str(tmp_path)
    loaded = data.load_images("builtin", max_images=5)
    assert len(loaded) == 5
    assert (tmp_path / "afgan_builtin" / "faces").is_dir()
    monkeypatch.delenv("KERAS_AFGAN_DATA_DIR")
    assert data.default_data_dir() == os.path.join(
        os.path.expanduser("~"), ".cache", "keras_afgan", "tensorflow_datasets")


def test_tfds_source_with_config_version_and_split(tfds_dir):
    loaded = data.load_images("tfds:afgan_builtin/textures:1.0.0:train[:10]", resolution=8,
                              use_labels=True, data_dir=tfds_dir)
    assert loaded.images.shape == (10, 8, 8, 3) and loaded.c_dim == 5
    assert len(data.load_images("tfds:afgan_builtin/faces", data_dir=tfds_dir)) == 100


def test_tfds_unknown_name_is_a_value_error(no_network):
    with pytest.raises(ValueError, match="no_such_dataset_xyz"):
        data.load_images("tfds:no_such_dataset_xyz")


def test_tfds_unprepared_dataset_is_not_downloaded(tmp_path, no_network):
    with pytest.raises(ValueError, match="not prepared|does not download") as info:
        data.load_images("tfds:mnist", data_dir=tmp_path)
    assert "'mnist'" in str(info.value) and str(tmp_path) in str(info.value)
    assert not (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").exists()


def test_tfds_unknown_split(tfds_dir):
    with pytest.raises(ValueError, match="validation"):
        data.load_images("tfds:afgan_builtin/faces:validation", data_dir=tfds_dir)


def test_labels_requested_from_unlabelled_builtin(tfds_dir):
    with pytest.raises(ValueError, match="builtin:faces"):
        data.load_images("builtin:faces", use_labels=True, data_dir=tfds_dir)


def test_unknown_builtin_config():
    with pytest.raises(ValueError, match="builtin:cats"):
        data.load_images("builtin:cats")
