"""`training_dataset`: batch contents, determinism, resume, mirror, fit on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_afgan import data


def _dataset(n=10, resolution=4, num_classes=3, seed=0):
    """Distinct random images (none x-symmetric) with labels i % num_classes."""
    images = np.random.default_rng(seed).integers(0, 256, (n, resolution, resolution, 3),
                                                  dtype=np.uint8)
    labels = np.arange(n) % num_classes if num_classes else None
    return data.ImageDataset("test", images, labels, num_classes)


def _batches(dataset, count, **kwargs):
    stream = data.training_dataset(dataset, **kwargs)
    return [{k: v.numpy() for k, v in batch.items()} for batch in stream.take(count)]


def _identify(images, dataset):
    """(index, flipped) of each float image of a batch, by exact match."""
    pixels = np.rint((images + 1) * 127.5).astype(np.uint8)
    found = []
    for x in pixels:
        for i, original in enumerate(dataset.images):
            if np.array_equal(x, original):
                found.append((i, False))
                break
            if np.array_equal(x, np.flip(original, axis=1)):  # x-flip of [H, W, C]
                found.append((i, True))
                break
        else:
            raise AssertionError("a batch image matches no dataset image")
    return found


def test_batch_shapes_dtypes_and_values():
    dataset = _dataset()
    stream = data.training_dataset(dataset, batch_size=4, z_dim=6)
    spec = stream.element_spec
    assert {k: tuple(v.shape) for k, v in spec.items()} == {
        "images": (4, 4, 4, 3), "labels": (4, 3), "latents": (4, 2, 6), "gen_labels": (4, 2, 3)}
    assert all(v.dtype.name == "float32" for v in spec.values())
    batch = _batches(dataset, 1, batch_size=4, z_dim=6)[0]
    found = _identify(batch["images"], dataset)
    expected = np.stack([dataset.images[i] for i, _ in found]).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(batch["images"], expected, atol=1e-6)
    np.testing.assert_array_equal(batch["labels"], np.eye(3)[[i % 3 for i, _ in found]])


def test_value_range_reaches_but_stays_within_minus_one_one():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[1] = 255
    batch = _batches(data.ImageDataset("bw", images), 1, batch_size=2, z_dim=1)[0]
    assert batch["images"].min() == -1.0 and batch["images"].max() == 1.0
    assert batch["labels"].shape == (2, 0)  # unlabelled: zero-width labels
    assert batch["gen_labels"].shape == (2, 2, 0)


def test_same_seed_same_batches_other_seed_other_batches():
    dataset = _dataset()
    first = _batches(dataset, 4, batch_size=3, z_dim=5, seed=7)
    again = _batches(dataset, 4, batch_size=3, z_dim=5, seed=7)
    other = _batches(dataset, 4, batch_size=3, z_dim=5, seed=8)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    stack = lambda batches, key: np.concatenate([b[key] for b in batches])
    assert not np.array_equal(stack(first, "images"), stack(other, "images"))
    assert not np.array_equal(stack(first, "latents"), stack(other, "latents"))


def test_every_epoch_is_a_new_permutation_and_batches_span_epochs():
    dataset = _dataset(n=10)
    batches = _batches(dataset, 10, batch_size=3, z_dim=1, seed=3)  # 30 examples: 3 epochs
    order = [i for b in batches for i, _ in _identify(b["images"], dataset)]
    epochs = [order[k:k + 10] for k in (0, 10, 20)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]


def test_batch_larger_than_dataset():
    dataset = _dataset(n=5)
    batch = _batches(dataset, 1, batch_size=12, z_dim=1)[0]
    counts = np.bincount([i for i, _ in _identify(batch["images"], dataset)], minlength=5)
    assert counts.min() >= 2 and counts.sum() == 12  # two whole epochs and part of a third


def test_start_step_reproduces_the_fresh_stream():
    dataset = _dataset(n=7)
    fresh = _batches(dataset, 9, batch_size=3, z_dim=4, seed=11)
    resumed = _batches(dataset, 4, batch_size=3, z_dim=4, seed=11, start_step=5)
    for a, b in zip(fresh[5:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_latents_are_seeded_normals_per_step():
    batches = _batches(_dataset(), 2, batch_size=64, z_dim=128, seed=2)
    z = batches[0]["latents"]
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    assert not np.array_equal(z[:, 0], z[:, 1])  # Gmain and Dmain get different z
    assert not np.array_equal(z, batches[1]["latents"])


def test_fake_labels_are_drawn_from_the_dataset_apart_from_the_real_batch():
    """The reference's gen_c: a dataset image's label per fake, whatever the reals are."""
    # Class 0 for 1 image of 10, class 1 for 9: the draws follow those frequencies.
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    dataset = data.ImageDataset("test", images, np.array([0] + [1] * 9), 2)
    batches = _batches(dataset, 50, batch_size=8, z_dim=1, seed=4)
    gen = np.concatenate([b["gen_labels"] for b in batches])  # [400, 2, 2]
    assert np.all(gen.sum(axis=-1) == 1)  # one-hot
    assert 0.05 < gen[..., 0].mean() < 0.16  # 1 in 10
    assert not np.array_equal(gen[:, 0], gen[:, 1])  # Gmain and Dmain draw their own
    real = np.concatenate([b["labels"] for b in batches])
    assert not np.array_equal(gen[:, 0], real)
    # Seeded by the step, like the latents: a resumed stream draws the same.
    resumed = _batches(dataset, 2, batch_size=8, z_dim=1, seed=4, start_step=48)
    np.testing.assert_array_equal(resumed[1]["gen_labels"], batches[49]["gen_labels"])


def test_mirror_doubles_the_epoch_with_flipped_copies():
    dataset = _dataset(n=6)
    batch = _batches(dataset, 1, batch_size=12, z_dim=1, mirror=True, seed=5)[0]
    found = _identify(batch["images"], dataset)
    assert sorted(found) == sorted((i, f) for i in range(6) for f in (False, True))
    np.testing.assert_array_equal(batch["labels"].argmax(axis=1), [i % 3 for i, _ in found])
    plain = _identify(_batches(dataset, 1, batch_size=12, z_dim=1, seed=5)[0]["images"], dataset)
    assert not any(flipped for _, flipped in plain)
    assert np.bincount([i for i, _ in plain]).tolist() == [2] * 6


def test_rows_take_a_shard_of_each_batch_split_per_replica():
    """Multi-device input: rows [5, 1, 6, 2] of each batch of 8, two rows an element."""
    dataset, rows = _dataset(), [5, 1, 6, 2]
    whole = _batches(dataset, 2, batch_size=8, z_dim=3, mirror=True, seed=4, start_step=3)
    shards = _batches(dataset, 4, batch_size=8, z_dim=3, mirror=True, seed=4, start_step=3,
                      rows=rows, rows_per_batch=2)
    for step, batch in enumerate(whole):
        for replica in range(2):
            shard = shards[2 * step + replica]
            for key, value in batch.items():
                np.testing.assert_array_equal(shard[key], value[rows[2 * replica:][:2]], key)
    one = _batches(dataset, 1, batch_size=8, z_dim=3, seed=4, rows=rows)[0]
    assert one["images"].shape == (4, 4, 4, 3)
    with pytest.raises(ValueError, match="rows_per_batch=3"):
        data.training_dataset(dataset, batch_size=8, rows=rows, rows_per_batch=3)
    with pytest.raises(ValueError, match=r"\[0, batch_size=8\)"):
        data.training_dataset(dataset, batch_size=8, rows=[8])


@pytest.mark.parametrize("kwargs, name", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2, z_dim=0), "z_dim"),
    (dict(batch_size=2, start_step=-1), "start_step"),
    (dict(batch_size=2, seed=1.5), "seed"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.training_dataset(_dataset(), **kwargs)


def test_needs_an_image_dataset():
    with pytest.raises(ValueError, match="ndarray"):
        data.training_dataset(np.zeros((4, 4, 4, 3), np.uint8), batch_size=2)


class Probe(keras.Model):
    """Reads every key of a batch; its loss comes from add_loss, so fit needs no y."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)

    def call(self, batch):
        features = ops.concatenate([ops.mean(batch["images"], axis=(1, 2)),
                                    ops.mean(batch["latents"], axis=1), batch["labels"]], axis=-1)
        out = self.dense(features)
        self.add_loss(ops.mean(ops.square(out)))
        return out


@pytest.mark.parametrize("num_classes", [0, 3])
def test_fit_consumes_the_stream_on_this_backend(num_classes):
    stream = data.training_dataset(_dataset(num_classes=num_classes), batch_size=4, z_dim=2)
    model = Probe(name="probe")
    model.compile(optimizer="sgd")
    history = model.fit(stream, steps_per_epoch=3, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.dense.kernel.shape == (3 + 2 + num_classes, 1)
