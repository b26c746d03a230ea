"""Callbacks of a training run: checkpoints, snapshots, stats and TensorBoard."""

import json
import os
import re
import time

import keras
import numpy as np

from keras_afgan.images import save_image_grid
from keras_afgan.models.generator import generator_with_dtype
from keras_afgan.models.sampling import inference_scope


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


# The temporary names of `atomic_save` and `atomic_write_text`.
_TEMPORARY = re.compile(r".+\.tmp-\d+(\.keras)?$")
_TICK_FILE = re.compile(r"(?:network-snapshot|fakes)-tick(\d{6})\.(?:keras|png)$")


def remove_temporary_files(outdir):
    """Delete what writes killed mid-way left in `outdir`; returns their names."""
    stale = sorted(name for name in os.listdir(outdir) if _TEMPORARY.fullmatch(name))
    for name in stale:
        os.remove(os.path.join(outdir, name))
    return stale


def _tick_lines(path, keep):
    """The lines of a JSON-lines log (`stats.jsonl`, `metrics.jsonl`) whose tick
    is at most `keep`; a torn last line (a kill while writing it) is dropped."""
    kept = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("tick", -1) <= keep:
                    kept.append(json.dumps(record) + "\n")
    return kept


def rewind_outputs(outdir, tick):
    """Make a run's outputs follow from its checkpoint at `tick` (-1: none).

    A tick writes its snapshot, metrics and stats line before its checkpoint:
    a run killed in between redoes the tick, so what it wrote of it goes (the
    continued run writes it again, identical), along with any stale
    temporary files. Returns the names removed.
    """
    removed = remove_temporary_files(outdir)
    for name in ("stats.jsonl", "metrics.jsonl"):
        path = os.path.join(outdir, name)
        if os.path.exists(path):
            kept = _tick_lines(path, tick)
            with open(path) as f:
                if f.readlines() != kept:
                    atomic_write_text(path, "".join(kept))
                    removed.append(f"{name} (lines after tick {tick})")
    for name in sorted(os.listdir(outdir)):
        match = _TICK_FILE.fullmatch(name)
        if match and int(match.group(1)) > tick:
            os.remove(os.path.join(outdir, name))
            removed.append(name)
    return removed


def recorded_ticks(outdir):
    """The last tick that `outdir`'s stats lines or snapshot files record (0: none)."""
    stats = _tick_lines(os.path.join(outdir, "stats.jsonl"), float("inf"))
    ticks = [json.loads(line).get("tick", 0) for line in stats]
    ticks += [int(m.group(1)) for m in map(_TICK_FILE.fullmatch, os.listdir(outdir)) if m]
    return max(ticks, default=0)


class TrainingMonitor(keras.callbacks.Callback):
    """At each tick (epoch): every `snap` ticks and at the last tick (and,
    with `snapshot_at_start`, at tick 0 before the first step) an image grid,
    the G-EMA generator and the snapshot metrics; then the stats line and
    TensorBoard scalars; the checkpoint last. A run killed before a tick's
    checkpoint redoes the tick (`rewind_outputs` drops what it wrote of it),
    so its outputs end as an uninterrupted run's.

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
        total_ticks: the run's last tick (snapshotted whatever `snap` says);
            None: only every `snap` ticks.
    """

    def __init__(self, outdir, steps_per_tick, batch_size, snap, grid_latents, grid_labels,
                 grid_shape, log_dir=None, metrics_fn=None, snapshot_at_start=False,
                 total_ticks=None):
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
        self.total_ticks = total_ticks
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
        stats = {"tick": tick, "kimg": kimg, "sec_per_tick": seconds,
                 "img_per_sec": self.steps_per_tick * self.batch_size / max(seconds, 1e-9),
                 "timestamp": time.time()}
        stats.update({k: float(v) for k, v in (logs or {}).items()})
        metrics = {}
        if tick % self.snap == 0 or tick == self.total_ticks:
            metrics = self._snapshot_and_metrics(tick, kimg)
        stats.update(metrics)
        with open(os.path.join(self.outdir, "stats.jsonl"), "a") as f:
            f.write(json.dumps(stats) + "\n")
        self._write_scalars(stats, kimg, metrics)
        # The checkpoint goes last: a run killed before it redoes this tick,
        # whose outputs are then dropped and written again (rewind_outputs).
        atomic_save(gan, os.path.join(self.outdir, "checkpoint.keras"))

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
        # A micro-batch (or batch) at a time, as the reference's --batch-gpu:
        # the whole grid at once needs the activations of 32 images (GBs at 256 px).
        per_call = getattr(self.model, "batch_gpu", None) or self.batch_size
        step = max(1, min(per_call, len(self.grid_latents)))
        images = []
        with inference_scope():
            for start in range(0, len(self.grid_latents), step):
                images.append(keras.ops.convert_to_numpy(generator(
                    self.grid_latents[start:start + step], self.grid_labels[start:start + step],
                    truncation_psi=1.0)))
        # Named by tick: CPU-sized runs have ticks of a fraction of a kimg.
        save_image_grid(np.concatenate(images),
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
