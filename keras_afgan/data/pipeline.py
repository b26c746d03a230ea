"""The training input pipeline: an endless, deterministic tf.data stream of batches.

tf.data is the input pipeline for every backend: Keras hands its batches to
JAX and torch as numpy arrays. Everything random is stateless and keyed by
(seed, epoch) or (seed, step), so batch k is the same whether the stream
starts at 0 or resumes at k, on any backend.
"""

import numpy as np

from keras_afgan.data.sources import ImageDataset
from keras_afgan.data.sources import StreamingDataset

_SHUFFLE_STREAM = 0  # keys (seed, stream) folded with the epoch or step: no overlap
_LATENT_STREAM = 1
_GEN_LABEL_STREAM = 2
_AUGMENT_STREAM = 3


def training_dataset(images, batch_size, z_dim=512, mirror=False, seed=0, start_step=0,
                     rows=None, rows_per_batch=None, augment_draws=0):
    """An infinite `tf.data.Dataset` of training batches for `AliasFreeGAN.fit`.

    The stream of examples is a sequence of epochs; epoch e is a permutation
    of the dataset's indices drawn from (seed, e) (with `mirror`, index
    `i >= N` is image `i - N` flipped along x, so an epoch holds 2N examples).
    Batch `step` is examples `[step * B, (step + 1) * B)` of that sequence:
    batches run across epoch boundaries, so every example is used once per
    epoch, no remainder is dropped and `batch_size` may exceed the dataset
    size. For each batch, in order:

    1. indices from the epochs' permutations (only the ones the batch spans);
    2. read those uint8 images (`read`: decoded here for a streamed set)
       and flip the mirrored ones;
    3. images to float32 in [-1, 1] (`x / 127.5 - 1`);
    4. labels to one-hot float32 (`[B, 0]` for an unlabelled dataset);
    5. latents `[B, 2, z_dim]` (the z of Gmain and Dmain) from
       `tf.random.stateless_normal` keyed by (seed, step);
    6. the fake images' labels `[B, 2, c_dim]` (those of Gmain and Dmain):
       labels of dataset images drawn uniformly at random, independently of
       the real batch, keyed by (seed, step), as the reference's `gen_c`;
    7. with `augment_draws`, the augmentation pipe's uniforms
       `[B, 4, augment_draws]` in [0, 1) (its four calls of the step),
       keyed by (seed, step).

    With `rows` (multi-device training, `keras_afgan.training.distribute`)
    the pipeline keeps only those rows of each batch, in that order (images
    are gathered for them only), and yields them as consecutive elements of
    `rows_per_batch` rows: one shard per local replica, all shards of step
    `k` before those of step `k + 1`.

    Pass `steps_per_epoch` to `fit`: the stream never ends.

    Args:
        images: a `StreamingDataset` (from `open_images`) or an
            `ImageDataset` (from `load_images`).
        batch_size: images per batch B.
        z_dim: width of the latents.
        mirror: add x-flipped copies (the reference's `--mirror`).
        seed: seed of the shuffle and of the latents.
        start_step: index of the first batch; batch k of a stream started at
            `start_step=s` equals batch `s + k` of one started at 0 (resume
            with the number of iterations done).
        rows: None (whole batches), or indices `[K]` into each batch.
        rows_per_batch: rows per element with `rows` (default `K`; must divide it).
        augment_draws: uniforms per sample and augmentation call
            (`keras_afgan.augment.NUM_DRAWS`); 0 for none.

    Returns:
        A `tf.data.Dataset` of dicts: `images` float32 `[B, R, R, C]`,
        `labels` float32 `[B, c_dim]`, `latents` float32 `[B, 2, z_dim]`,
        `gen_labels` float32 `[B, 2, c_dim]`, with `augment_draws` `augment`
        float32 `[B, 4, augment_draws]` (B is `rows_per_batch` with `rows`).
    """
    import tensorflow as tf

    if not isinstance(images, (ImageDataset, StreamingDataset)):
        raise ValueError("Expected images to be a StreamingDataset (from open_images) or an "
                         f"ImageDataset (from load_images). Received: {type(images).__name__}")
    for name, value, low in (("batch_size", batch_size, 1), ("z_dim", z_dim, 1),
                             ("start_step", start_step, 0), ("seed", seed, 0),
                             ("augment_draws", augment_draws, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(
                f"Expected {name} to be an integer >= {low}. Received: {name}={value!r}")

    if rows is not None:
        rows = np.asarray(rows, np.int64)
        rows_per_batch = len(rows) if rows_per_batch is None else rows_per_batch
        if (rows.ndim != 1 or not len(rows) or rows.min() < 0 or rows.max() >= batch_size
                or not isinstance(rows_per_batch, (int, np.integer)) or rows_per_batch < 1
                or len(rows) % rows_per_batch):
            raise ValueError(
                f"Expected rows to be indices in [0, batch_size={batch_size}), as many as a "
                f"multiple of rows_per_batch={rows_per_batch}. Received: rows={rows.tolist()}")

    num_images = len(images)
    epoch_size = num_images * (2 if mirror else 1)
    labels = None if images.labels is None else tf.constant(images.labels)  # [N]
    base_key = tf.constant([seed, 0], tf.int64)

    def key(stream, index):
        stream_key = tf.random.experimental.stateless_fold_in(base_key, stream, alg="philox")
        return tf.random.experimental.stateless_fold_in(stream_key, index, alg="philox")

    def permutation(epoch):
        noise = tf.random.stateless_uniform([epoch_size], key(_SHUFFLE_STREAM, epoch),
                                            alg="philox")
        return tf.cast(tf.argsort(noise, stable=True), tf.int64)

    def make_batch(step):
        first = step * batch_size
        first_epoch, last_epoch = first // epoch_size, (first + batch_size - 1) // epoch_size
        order = tf.map_fn(permutation, tf.range(first_epoch, last_epoch + 1),
                          fn_output_signature=tf.int64)  # [E, epoch_size]
        offset = first - first_epoch * epoch_size
        index = tf.reshape(order, [-1])[offset:offset + batch_size]
        index = tf.ensure_shape(index, [batch_size])  # [B] in [0, epoch_size)
        size = batch_size
        z = tf.random.stateless_normal([batch_size, 2, z_dim], key(_LATENT_STREAM, step),
                                       alg="philox")
        if labels is None:
            gen_c = tf.zeros([batch_size, 2, 0], tf.float32)
        else:
            drawn = tf.random.stateless_uniform([batch_size, 2], key(_GEN_LABEL_STREAM, step),
                                                maxval=num_images, dtype=tf.int64, alg="philox")
            gen_c = tf.one_hot(tf.gather(labels, drawn), images.c_dim, dtype=tf.float32)
        extra = {}
        if augment_draws:
            extra["augment"] = tf.random.stateless_uniform(
                [batch_size, 4, augment_draws], key(_AUGMENT_STREAM, step), alg="philox")
        if rows is not None:
            index, z, size = tf.gather(index, rows), tf.gather(z, rows), len(rows)
            gen_c = tf.gather(gen_c, rows)
            extra = {k: tf.gather(v, rows) for k, v in extra.items()}
        source = index % num_images

        # Read in Python: a streamed set decodes these rows only (in parallel
        # with other batches); an in-memory one is gathered in numpy, as
        # capturing its array in the graph would copy it (twice).
        x = tf.numpy_function(images.read, [source], tf.uint8, stateful=False)
        x = tf.ensure_shape(x, (size, images.resolution, images.resolution,
                                images.channels))  # [B, R, R, C] uint8
        if mirror:
            x = tf.where((index >= num_images)[:, None, None, None], tf.reverse(x, axis=[2]), x)
        x = tf.cast(x, tf.float32) / 127.5 - 1.0
        if labels is None:
            c = tf.zeros([size, 0], tf.float32)
        else:
            c = tf.one_hot(tf.gather(labels, source), images.c_dim, dtype=tf.float32)
        return {"images": x, "labels": c, "latents": z, "gen_labels": gen_c, **extra}

    dataset = (tf.data.Dataset.counter(start=start_step)
               .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
    if rows is not None and rows_per_batch != len(rows):
        shards = len(rows) // rows_per_batch
        dataset = dataset.map(lambda batch: {k: tf.reshape(v, (shards, rows_per_batch)
                                                           + tuple(v.shape[1:]))
                                             for k, v in batch.items()}).unbatch()
    return dataset.prefetch(tf.data.AUTOTUNE)
