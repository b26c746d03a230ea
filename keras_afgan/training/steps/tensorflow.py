"""TensorFlow: GradientTape, nested tapes for R1, tf.cond for lazy phases.

Under a tf.distribute strategy (`keras_afgan.training.distribute`) the step
runs once per replica on its shard of the batch: the optimizer sums the
replicas' gradients, so each replica differentiates its loss divided by their
number; batch statistics are all-reduced (`replica_mean`). An optimizer step
synchronises the replicas (a `merge_call`), which TF does not allow inside
`tf.cond`: there the lazy R1 phase is chosen in Python, before each step,
between two traced step functions (`make_train_function`), and XLA is off
(`jit_compile_default`: one XLA program cannot span the replicas' devices).
Without a strategy, XLA compiles the step where a GPU or TPU is present.
"""

import contextlib
import functools

import tensorflow as tf
from keras.ops import convert_to_numpy


def num_replicas():
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_mean(x):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def value_and_grad(fn, variables, state=()):
    del state  # the variables themselves carry it
    with tf.GradientTape() as tape:
        loss, aux = fn()
        share = loss / num_replicas()  # the optimizer sums the replicas' gradients
    grads = tape.gradient(share, [v.value for v in variables])
    grads = [tf.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss, aux, grads


def input_gradient(fn, x, differentiable_input=False):
    del differentiable_input  # x is differentiable here either way (nested tape / grad)
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        # The reduction must run inside this tape, or the gradient is None.
        total, aux = fn(x)
    return tape.gradient(total, x), aux


def cond(pred, fn, state):
    del state  # tf.cond runs assignments in the taken branch only
    return tf.cond(pred, lambda: tf.cast(fn(), tf.float32), lambda: tf.constant(0.0))


def after(tensors):
    """A context whose ops wait for `tensors` (micro-batches run one at a time)."""
    return tf.control_dependencies([t for t in tensors if t is not None])


def no_grad():
    return contextlib.nullcontext()


def apply_gradients(optimizer, grads, variables):
    optimizer.apply(grads, variables)


def train_step(model, data, run_dreg=None, run_greg=None):
    logs = model.iteration_step(data, run_dreg=run_dreg, run_greg=run_greg)
    if _multi_worker(model.distribute_strategy):
        # Keras reduces a multi-worker step's logs along axis 0, a batch axis: add one.
        logs = {name: value[None] for name, value in logs.items()}
    return logs


def _multi_worker(strategy):
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def _distributed(model):
    return model._distribute_strategy is not None or tf.distribute.has_strategy()


def jit_compile_default(model):
    """XLA for the step only where a GPU or TPU is present, and not under a strategy.

    As Keras's own `jit_compile="auto"`. On the CPU, XLA bought nothing and
    cost ~40 s of compilation per start even for a 16 px model: 64 px bench
    step 0.37 img/s as a plain TF graph vs 0.33 with XLA (BUILD_NOTES.md).
    """
    return not _distributed(model) and accelerator_present()


def accelerator_present():
    """Whether TensorFlow sees a GPU or TPU."""
    return any(tf.config.list_physical_devices(kind) for kind in ("GPU", "TPU"))


def make_train_function(model):
    """Under a strategy with a lazy phase (R1, path length): a train function
    choosing between traced steps with and without each; otherwise None
    (Keras's own)."""
    if not _distributed(model) or (model.r1_interval == 0 and model.lazy_g_interval == 0):
        return None
    if model.steps_per_execution != 1:
        raise ValueError(
            "Expected steps_per_execution=1 when training under a tf.distribute strategy (the "
            f"lazy R1 phase is chosen before each step). Received: {model.steps_per_execution}")
    # Keras's wrapping of a step in strategy.run and tf.function, once per choice.
    # Each traced on its first use.
    functions = {
        (dreg, greg): model._make_function(functools.partial(train_step, model, run_dreg=dreg,
                                                             run_greg=greg))
        for dreg in (False, True) for greg in (False, True)}

    def train_function(iterator):
        iteration = int(convert_to_numpy(model.iteration))
        dreg = model.r1_interval > 0 and iteration % model.r1_interval == 0
        greg = model.lazy_g_interval > 0 and iteration % model.lazy_g_interval == 0
        return functions[(dreg, greg)](iterator)

    return train_function
