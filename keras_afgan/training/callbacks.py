"""Callbacks of a training run: checkpoints, snapshots, stats and TensorBoard."""

import json
import os
import time

import keras
import numpy as np

from keras_afgan.models.generator import generator_with_dtype
from keras_afgan.models.sampling import inference_scope
from keras_afgan.training.images import save_image_grid


def atomic_save(model, path):
    """Write `model` as a `.keras` file that is either complete or absent.

    The file is written beside its destination under a temporary name, then
    renamed over it (atomic on POSIX), so a run killed mid-write leaves the
    previous checkpoint intact.
    """
    tmp = f"{path}.tmp-{os.getpid()}.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class TrainingMonitor(keras.callbacks.Callback):
    """At each tick (epoch): checkpoint, stats line, TensorBoard scalars;
    every `snap` ticks (and, with `snapshot_at_start`, at tick 0 before the
    first step): an image grid, the G-EMA generator and the snapshot metrics.

    Args:
        outdir: the run directory.
        steps_per_tick: fit steps in one tick.
        batch_size: images per step.
        snap: ticks between snapshots (grid + generator file).
        grid_latents: `[n, z_dim]` latents of the snapshot grid.
        grid_labels: `[n, c_dim]` labels of the grid.
        grid_shape: `(rows, cols)` of the grid.
        log_dir: TensorBoard directory (None to skip TensorBoard).
        metrics_fn: called with the G-EMA generator at each snapshot; returns
            `{name: value}`, logged to `metrics.jsonl`, TensorBoard
            (`Metrics/<name>`) and (but tick 0's) that tick's `stats.jsonl` line.
        snapshot_at_start: also snapshot a run that starts at iteration 0,
            before its first step (a fine-tune's pretrained starting point,
            as the reference's `fakes_init.png`).
    """

    def __init__(self, outdir, steps_per_tick, batch_size, snap, grid_latents, grid_labels,
                 grid_shape, log_dir=None, metrics_fn=None, snapshot_at_start=False):
        super().__init__()
        self.outdir = outdir
        self.steps_per_tick = steps_per_tick
        self.batch_size = batch_size
        self.snap = max(int(snap), 1)
        self.grid_latents = grid_latents
        self.grid_labels = grid_labels
        self.grid_shape = grid_shape
        self.log_dir = log_dir
        self.metrics_fn = metrics_fn
        self.snapshot_at_start = snapshot_at_start
        self._writer = None
        self._tick_start = None

    def _summary_writer(self):
        if self._writer is None and self.log_dir:
            import tensorflow as tf  # only for tf.summary, on any backend

            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_train_begin(self, logs=None):
        if self.snapshot_at_start and int(keras.ops.convert_to_numpy(self.model.iteration)) == 0:
            metrics = self._snapshot_and_metrics(0, 0.0)
            self._write_scalars(metrics, 0, metrics)

    def on_epoch_begin(self, epoch, logs=None):
        self._tick_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        tick = epoch + 1
        gan = self.model
        kimg = int(keras.ops.convert_to_numpy(gan.images_seen)) / 1000
        seconds = time.time() - self._tick_start
        # The checkpoint goes first: if the run dies before the stats line,
        # the resumed run redoes this tick instead of logging it twice.
        atomic_save(gan, os.path.join(self.outdir, "checkpoint.keras"))
        stats = {"tick": tick, "kimg": kimg, "sec_per_tick": seconds,
                 "img_per_sec": self.steps_per_tick * self.batch_size / max(seconds, 1e-9),
                 "timestamp": time.time()}
        stats.update({k: float(v) for k, v in (logs or {}).items()})
        metrics = {}
        if tick % self.snap == 0:
            metrics = self._snapshot_and_metrics(tick, kimg)
        stats.update(metrics)
        with open(os.path.join(self.outdir, "stats.jsonl"), "a") as f:
            f.write(json.dumps(stats) + "\n")
        self._write_scalars(stats, kimg, metrics)

    def _snapshot_and_metrics(self, tick, kimg):
        """The snapshot of `tick` and its metrics (also written to metrics.jsonl)."""
        generator = self.snapshot(tick, kimg)
        if self.metrics_fn is None:
            return {}
        start = time.time()
        metrics = {k: float(v) for k, v in self.metrics_fn(generator).items()}
        with open(os.path.join(self.outdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps({"tick": tick, "kimg": kimg, "results": metrics,
                                "sec": time.time() - start,
                                "snapshot": f"network-snapshot-tick{tick:06d}.keras"}) + "\n")
        return metrics

    def _write_scalars(self, stats, kimg, metrics):
        writer = self._summary_writer()
        if writer is None or not stats:
            return
        import tensorflow as tf

        with writer.as_default(step=int(round(kimg * 1000))):
            for k, v in stats.items():
                if k in metrics:
                    tf.summary.scalar(f"Metrics/{k}", v)
                elif k not in ("tick", "timestamp"):
                    tf.summary.scalar(k.replace("loss_", "Loss/"), v)
        writer.flush()

    def snapshot(self, tick, kimg):
        """The grid and generator files of a snapshot; returns the generator saved.

        That is the G-EMA in float32 whatever the training precision (the
        weights are float32 anyway): snapshots serve inference, export and
        metrics, which then measure the same network as a float32 run's.
        """
        generator = generator_with_dtype(self.model.generator_ema, "float32")
        with inference_scope():
            images = generator(self.grid_latents, self.grid_labels, truncation_psi=1.0)
        # Named by tick: CPU-sized runs have ticks of a fraction of a kimg.
        save_image_grid(keras.ops.convert_to_numpy(images),
                        os.path.join(self.outdir, f"fakes-tick{tick:06d}.png"), self.grid_shape)
        atomic_save(generator, os.path.join(self.outdir, f"network-snapshot-tick{tick:06d}.keras"))
        atomic_save(generator, os.path.join(self.outdir, "generator.keras"))
        return generator

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


def grid_inputs(z_dim, c_dim, grid_shape, seed):
    """Fixed latents (and cycling labels) for the snapshot grids of a run."""
    n = grid_shape[0] * grid_shape[1]
    z = np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32)
    c = np.zeros((n, c_dim), np.float32)
    if c_dim:
        c[np.arange(n), (np.arange(n) // grid_shape[1]) % c_dim] = 1
    return z, c
