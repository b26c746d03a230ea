"""Multi-device training: `afgan-train --strategy`, each backend's data parallelism.

| strategy        | backend    | what runs                                              |
|-----------------|------------|--------------------------------------------------------|
| `none`          | any        | one device                                             |
| `mirrored`      | tensorflow | `tf.distribute.MirroredStrategy` over the local GPUs   |
|                 |            | (the logical CPU devices where there is none)          |
| `multiworker`   | tensorflow | `tf.distribute.MultiWorkerMirroredStrategy`: every     |
|                 |            | worker runs the same command with its `TF_CONFIG`      |
| `data_parallel` | jax        | `keras.distribution.DataParallel` over every device;   |
|                 |            | several hosts through `jax.distributed`                |
| `ddp`           | torch      | one process per device, launched by torchrun; gradients|
|                 |            | all-reduced over a gloo (CPU) or NCCL (GPU) group      |

A step gives the same result on any number of devices, for the same global
batch (`--batch`):

1. Gradients are those of the global batch's mean loss: JAX compiles one
   program over the sharded global batch; tf.distribute sums the replicas'
   gradients of their loss divided by the replica count; torch averages them
   over the processes (`keras_afgan.training.steps`).
2. Batch statistics (the magnitude EMAs, `w_avg`) are averaged over replicas
   as they are updated (`keras_afgan.layers.statistics`), images seen and the
   G-EMA schedule count the global batch.
3. Minibatch-std groups. Where each replica runs the step on its shard (TF,
   torch), D's minibatch-std layer groups only the shard's samples. The
   global batch (images, labels, latents and fake labels together) is
   reordered before it is split (`replica_order`) so that each replica's
   shard holds whole groups of the single-device grouping, laid out as the
   layer expects; every other part of the step is a mean over samples,
   which the order does not change.
   JAX groups the global batch itself and needs no reordering.
   Gradient accumulation (`--batch-gpu`) splits each replica's shard into
   micro-batches of consecutive rows: the order then makes whole groups of
   every micro-batch (`replica_order` over replicas x micro-batches), on
   every backend.
4. The modulated convolution normalises each sample's styles by their own
   RMS (the reference: over the batch; demodulation cancels either scale):
   nothing there depends on the other samples.

Only the chief (the first worker, process or rank) writes a run's outputs.
"""

import contextlib
import datetime
import os

import keras
import numpy as np

from keras_afgan.data.pipeline import training_dataset

STRATEGIES = {
    "tensorflow": ("none", "mirrored", "multiworker"),
    "jax": ("none", "data_parallel"),
    "torch": ("none", "ddp"),
}


def check_strategy(strategy, backend=None):
    """Raise a ValueError unless `backend` (default: the current one) runs `strategy`."""
    backend = backend or keras.backend.backend()
    supported = STRATEGIES.get(backend, ("none",))
    if strategy not in supported:
        every = "; ".join(f"{b}: {', '.join(names)}" for b, names in STRATEGIES.items())
        raise ValueError(
            f"Expected a strategy that the {backend} backend runs: one of {supported}. "
            f"Received: strategy={strategy!r}. Strategies by backend: {every}")


def replica_order(batch_size, num_replicas, group_size):
    """The order of a batch's rows that splits it into whole minibatch-std groups.

    `MinibatchStdDev` groups N samples as `reshape(G, N/G, ...)`: sample n is
    member `n div M` of group `n mod M` (M = N/G groups). A replica whose
    shard is L = N/R rows groups it the same way, with `M_r = L/G = M/R`
    groups. Replica r takes the global groups `r M_r` to `(r+1) M_r - 1`: its
    row j is global sample `r M_r + (j mod M_r) + (j div M_r) M`, so its
    groups are exactly the single-device groups.

    Args:
        batch_size: the global batch N.
        num_replicas: R, each running the step on N/R contiguous rows.
        group_size: the minibatch-std group size (`G = min(group_size, N)`;
            None: the whole batch).

    Returns:
        int64 `[N]`: row i of the reordered batch is row `order[i]` of the batch.
    """
    group = min(group_size or batch_size, batch_size)
    if batch_size % (num_replicas * group):
        raise ValueError(
            f"Expected the batch size to be divisible by the number of replicas times the "
            f"minibatch-stddev group size ({num_replicas} x {group} = {num_replicas * group}), "
            f"so that each replica's share of the batch holds whole groups. Received: "
            f"batch={batch_size} (per replica: {batch_size / num_replicas:g})")
    groups = batch_size // group
    local = batch_size // num_replicas
    local_groups = local // group
    j = np.arange(local)
    return np.concatenate([r * local_groups + j % local_groups + (j // local_groups) * groups
                           for r in range(num_replicas)]).astype(np.int64)


def micro_batches(batch_size, num_replicas, batch_gpu, group_size):
    """How many micro-batches each replica runs (1 for `batch_gpu` None).

    Raises a ValueError unless each replica's share of the batch is a
    multiple of `batch_gpu`, and `batch_gpu` of the minibatch-std group (the
    reference refuses a `--batch-gpu` below `--mbstd-group` too).
    """
    local = batch_size // num_replicas
    if batch_gpu is None or batch_gpu >= local:
        return 1
    group = min(group_size or batch_size, batch_size)
    if batch_gpu < 1 or local % batch_gpu or batch_gpu % group:
        raise ValueError(
            f"Expected --batch-gpu to divide each device's batch ({batch_size} over "
            f"{num_replicas} device(s): {local}) and to be a multiple of the minibatch-std "
            f"group ({group}), so that each micro-batch holds whole groups. "
            f"Received: --batch-gpu={batch_gpu}")
    return local // batch_gpu


def mbstd_group(discriminator):
    """The minibatch-std group size of `discriminator` (1 without the layer)."""
    return discriminator.mbstd_group_size if discriminator.mbstd_num_channels else 1


class Distribution:
    """One device (`none`); the interface of the multi-device strategies.

    Attributes:
        name: the strategy.
        num_replicas: devices the global batch is split over.
        is_chief: whether this process writes the run's outputs.
    """

    name = "none"
    num_replicas = 1
    is_chief = True

    def scope(self):
        """The context to build or load the model in."""
        return contextlib.nullcontext()

    def check_batch(self, batch_size, group_size, batch_gpu=None):
        """Raise a ValueError unless the batch splits over the replicas (and
        their micro-batches of `batch_gpu`)."""
        micro_batches(batch_size, self.num_replicas, batch_gpu, group_size)

    def step_batch_gpu(self, batch_gpu):
        """The model's `batch_gpu` (micro-batch rows of the batch one step sees)
        for `--batch-gpu` (micro-batch rows per device)."""
        return batch_gpu

    def dataset(self, images, batch_size, group_size, z_dim, mirror=False, seed=0,
                start_step=0, augment_draws=0, batch_gpu=None):
        """What `fit` takes: this process's part of `training_dataset`'s batches.

        Args:
            images: a `StreamingDataset` or an `ImageDataset`.
            batch_size: the global batch.
            group_size: D's minibatch-std group size (`mbstd_group`).
            z_dim, mirror, seed, start_step, augment_draws: as `training_dataset`'s.
            batch_gpu: the micro-batch size (gradient accumulation); None for none.
        """
        rounds = micro_batches(batch_size, 1, batch_gpu, group_size)
        rows = replica_order(batch_size, rounds, group_size) if rounds > 1 else None
        return training_dataset(images, batch_size, z_dim, mirror, seed, start_step,
                                rows=rows, augment_draws=augment_draws)

    def broadcast_state(self, gan):
        """Make every process start from the chief's weights."""
        del gan


class _ShardedDistribution(Distribution):
    """Strategies whose replicas each run the step on a shard of the batch
    (TF, torch): the batch is reordered into whole minibatch-std groups."""

    def check_batch(self, batch_size, group_size, batch_gpu=None):
        self._shards(batch_size, group_size, batch_gpu)

    def _shards(self, batch_size, group_size, batch_gpu=None):
        """`(order, local)`: the batch's row order (`replica_order` over the
        replicas' micro-batches) and the rows per replica."""
        rounds = micro_batches(batch_size, self.num_replicas, batch_gpu, group_size)
        order = replica_order(batch_size, self.num_replicas * rounds, group_size)
        return order, batch_size // self.num_replicas


class _TFDistribution(_ShardedDistribution):
    """tf.distribute: each replica runs the step on its shard of the batch."""

    def __init__(self, name):
        import tensorflow as tf

        self.name = name
        if name == "mirrored":
            devices = (tf.config.list_logical_devices("GPU")
                       or tf.config.list_logical_devices("CPU"))
            self.strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        else:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
            # The chief: the "chief" task if TF_CONFIG names one, else worker 0.
            resolver = self.strategy.cluster_resolver
            has_chief = "chief" in resolver.cluster_spec().as_dict()
            self.is_chief = (resolver.task_type in (None, "chief")
                             or (resolver.task_type == "worker" and resolver.task_id == 0
                                 and not has_chief))
        self.num_replicas = self.strategy.num_replicas_in_sync

    def scope(self):
        return self.strategy.scope()

    def dataset(self, images, batch_size, group_size, z_dim, mirror=False, seed=0,
                start_step=0, augment_draws=0, batch_gpu=None):
        order, local = self._shards(batch_size, group_size, batch_gpu)

        def worker_dataset(context):
            # Each worker's replicas take consecutive shards, one element each.
            per_worker = self.num_replicas // context.num_input_pipelines
            first = context.input_pipeline_id * per_worker * local
            return training_dataset(images, batch_size, z_dim, mirror, seed, start_step,
                                    rows=order[first:first + per_worker * local],
                                    rows_per_batch=local, augment_draws=augment_draws)

        return self.strategy.distribute_datasets_from_function(worker_dataset)


class _JaxDistribution(Distribution):
    """`keras.distribution.DataParallel`: one program over the sharded global batch."""

    name = "data_parallel"

    def __init__(self):
        import jax

        if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")) > 1:
            keras.distribution.initialize()  # jax.distributed, from KERAS_DISTRIBUTION_*
        devices = keras.distribution.list_devices()
        # Each process feeds its own rows (`dataset`), so Keras need not shard the data.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
        self.num_replicas = len(devices)
        self.process, self.num_processes = jax.process_index(), jax.process_count()
        self.is_chief = self.process == 0

    def check_batch(self, batch_size, group_size, batch_gpu=None):
        # The global batch is grouped as on one device; micro-batches are
        # slices of the global batch (sharded over the devices).
        if batch_size % self.num_replicas:
            raise ValueError(
                f"Expected the batch size to be divisible by the number of devices "
                f"({self.num_replicas}). Received: batch={batch_size}")
        return micro_batches(batch_size, self.num_replicas, batch_gpu, group_size)

    def step_batch_gpu(self, batch_gpu):
        # The step sees the global batch: a micro-batch is batch_gpu per device.
        return None if batch_gpu is None else batch_gpu * self.num_replicas

    def dataset(self, images, batch_size, group_size, z_dim, mirror=False, seed=0,
                start_step=0, augment_draws=0, batch_gpu=None):
        rounds = self.check_batch(batch_size, group_size, batch_gpu)
        order = (replica_order(batch_size, rounds, group_size) if rounds > 1
                 else np.arange(batch_size))
        rows = None if rounds == 1 else order
        if self.num_processes > 1:
            # A process's devices hold consecutive rows of the global batch.
            local = batch_size // self.num_processes
            rows = order[self.process * local:(self.process + 1) * local]
        return training_dataset(images, batch_size, z_dim, mirror, seed, start_step, rows=rows,
                                augment_draws=augment_draws)


class _TorchDistribution(_ShardedDistribution):
    """One process per device (torchrun); `steps/torch.py` all-reduces the gradients."""

    name = "ddp"

    def __init__(self):
        import torch
        import torch.distributed as dist

        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise ValueError(
                "Expected --strategy=ddp to run under torchrun, which sets RANK and WORLD_SIZE: "
                "torchrun --nproc_per_node=NUM_DEVICES -m keras_afgan.cli.train --strategy=ddp "
                "... Received: no RANK or WORLD_SIZE in the environment")
        if not dist.is_initialized():
            if torch.cuda.is_available():
                # Before Keras places any tensor: "cuda" is then this process's GPU.
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            # The others wait at their next all-reduce while the chief computes
            # snapshot metrics, which can take long.
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                    timeout=datetime.timedelta(hours=4))
        self.rank, self.num_replicas = dist.get_rank(), dist.get_world_size()
        self.is_chief = self.rank == 0

    def dataset(self, images, batch_size, group_size, z_dim, mirror=False, seed=0,
                start_step=0, augment_draws=0, batch_gpu=None):
        order, local = self._shards(batch_size, group_size, batch_gpu)
        return training_dataset(images, batch_size, z_dim, mirror, seed, start_step,
                                rows=order[self.rank * local:(self.rank + 1) * local],
                                augment_draws=augment_draws)

    def broadcast_state(self, gan):
        import torch
        import torch.distributed as dist

        variables = list(gan.variables) + list(gan.optimizer.variables)
        with torch.no_grad():
            for variable in variables:
                dist.broadcast(variable.value, src=0)


def make_distribution(strategy="none"):
    """Set up `strategy` (see the module docstring) for the current backend.

    Call it before anything computes: it starts TF's multi-worker runtime,
    `jax.distributed` or the torch process group, and sets Keras's
    distribution on JAX.

    Returns:
        A `Distribution`.
    """
    check_strategy(strategy)
    if strategy == "none":
        return Distribution()
    if strategy in ("mirrored", "multiworker"):
        return _TFDistribution(strategy)
    if strategy == "data_parallel":
        return _JaxDistribution()
    return _TorchDistribution()
