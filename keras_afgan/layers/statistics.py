"""Batch means of the generator's running statistics, over every replica's shard.

`SynthesisLayer.magnitude_ema` and `MappingNetwork.w_avg` move toward a mean
over the batch. When a training step runs once per replica on its shard of
the global batch (tf.distribute strategies, torch processes), the shard's mean
is not the batch's: inside `cross_replica_mean(fn)`, `batch_mean` passes the
shard's mean to `fn` (the training step's all-reduce), which returns the mean
over replicas, equal to the global batch's mean as every shard has the same
size. The statistic is then the same whatever the device count, and the next
layer reads the same updated value. Outside that context (one device, or a
JAX step compiled as one global program) `batch_mean` is the plain mean.
"""

import contextlib
import contextvars

from keras import ops

# A context variable, not a global: tf.distribute traces each replica's step
# in its own thread, and each sets and resets its own value.
_REPLICA_MEAN = contextvars.ContextVar("keras_afgan_replica_mean", default=None)


@contextlib.contextmanager
def cross_replica_mean(fn):
    """Within this context, `batch_mean` averages over replicas with `fn(mean)`."""
    token = _REPLICA_MEAN.set(fn)
    try:
        yield
    finally:
        _REPLICA_MEAN.reset(token)


def batch_mean(x, axis=None):
    """`ops.mean(x, axis)`, averaged over replicas inside `cross_replica_mean`.

    Args:
        x: a tensor whose first axis is the batch (the reduction must include it).
        axis: the axes to average (None: all).
    """
    mean = ops.mean(x, axis=axis)
    fn = _REPLICA_MEAN.get()
    return mean if fn is None else fn(mean)
