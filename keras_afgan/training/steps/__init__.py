"""Backend-specific differentiation and control flow for the GAN train step.

Each backend module provides the same functions, used by
`keras_afgan.training.gan.AliasFreeGAN`, whose train step is written once in
keras.ops on top of them:

- `value_and_grad(fn, variables, state)`: run `fn()` (returns
  `(loss, aux)`), return `(loss, aux, grads)` with the gradients w.r.t.
  `variables`; assignments made inside `fn` to any of `state` (statistics
  updates) take effect.
- `input_gradient(fn, x, differentiable_input=False)`: `fn(x)` returns
  `(total, aux)`; the gradient of the scalar `total` w.r.t. the tensor `x`,
  itself differentiable (R1 and the path length need the double backward),
  and `aux`. With `differentiable_input`, the outer gradient also flows
  through `x` into whatever computed it (the path length's ws come from
  the mapping network); otherwise `x` is a constant to it.
- `cond(pred, fn, state)`: run `fn()` (which may assign to any of `state`)
  only where `pred` holds; returns `fn`'s scalar result or 0.
- `no_grad()`: a context in which no gradient tape is needed.
- `after(tensors)`: a context whose ops run after `tensors` are computed
  (TensorFlow's graph would otherwise run independent micro-batches at
  once; a no-op where execution is already in order).
- `apply_gradients(optimizer, grads, variables)`: `optimizer.apply` (a
  `LossScaleOptimizer` too: it skips non-finite gradients and rescales).

For multi-device training (`keras_afgan.training.distribute`), where a step
may run once per replica on its shard of the global batch:

- `num_replicas()`: how many replicas run this step (1 for one device, and
  for JAX, whose sharded step is one global program).
- `replica_mean(x)`: the mean of `x` over those replicas (batch statistics).
- `value_and_grad`'s gradients, once applied by the optimizer, are those of
  the global batch's mean loss (TF: the optimizer sums the replicas'; torch:
  averaged over the processes here).
- `jit_compile_default(model)`: whether `compile` compiles the step.
- `make_train_function(model)`: a train function replacing Keras's, or None.

`train_step(model, data)` (JAX: `(model, (state, data))`) adapts Keras's
per-backend `train_step` contract to `model.iteration_step(data)`.
"""

import keras


def backend_module():
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_afgan.training.steps import tensorflow as module
    elif backend == "jax":
        from keras_afgan.training.steps import jax as module
    elif backend == "torch":
        from keras_afgan.training.steps import torch as module
    else:
        raise ValueError(
            f"Expected KERAS_BACKEND in ('tensorflow', 'jax', 'torch'). Received: {backend!r}")
    return module
