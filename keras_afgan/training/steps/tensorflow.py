"""TensorFlow: GradientTape, nested tapes for R1, tf.cond for lazy phases."""

import contextlib

import tensorflow as tf


def value_and_grad(fn, variables, state=()):
    del state  # the variables themselves carry it
    with tf.GradientTape() as tape:
        loss, aux = fn()
    grads = tape.gradient(loss, [v.value for v in variables])
    grads = [tf.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss, aux, grads


def input_gradient(fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        # The reduction must run inside this tape, or the gradient is None.
        total = fn(x)
    return tape.gradient(total, x)


def cond(pred, fn, state):
    del state  # tf.cond runs assignments in the taken branch only
    return tf.cond(pred, lambda: tf.cast(fn(), tf.float32), lambda: tf.constant(0.0))


def no_grad():
    return contextlib.nullcontext()


def train_step(model, data):
    return model.iteration_step(data)
