"""JAX: the imperative train step runs inside StatelessScopes.

Keras hands the JAX train step its state as arrays. The whole step runs in a
`StatelessScope` that maps every variable to its current value; assignments
(optimizer updates, statistics) are recorded there and read back as the new
state. `value_and_grad` differentiates through a nested scope in which the
differentiated variables map to `jax.value_and_grad`'s arguments; values the
function assigned inside it come back as auxiliary outputs and are assigned
in the enclosing scope.

Under `keras.distribution.DataParallel` the compiled step is one program over
the global batch, sharded by XLA: its means, gradients and minibatch-std
groups are the single-device ones, so nothing here depends on the devices.
"""

import contextlib

import jax
import keras
from keras.optimizers import LossScaleOptimizer

_scopes = []  # the StatelessScopes this module has open, innermost last


@contextlib.contextmanager
def _stateless_scope(mapping):
    """`keras.StatelessScope(state_mapping=mapping)`, remembered so `_current`
    can read it."""
    with keras.StatelessScope(state_mapping=mapping) as scope:
        _scopes.append(scope)
        try:
            yield scope
        finally:
            _scopes.pop()


def _current(variable):
    """The variable's value in the innermost open scope (unrounded: never autocast)."""
    if _scopes:
        value = _scopes[-1].get_current_value(variable)
        if value is not None:
            return value
    return variable.value


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def num_replicas():
    return 1  # one global program, however many devices hold the batch


def replica_mean(x):
    return x


def value_and_grad(fn, variables, state=()):
    variables = list(variables)
    ids = {id(v) for v in variables}
    others = [v for v in _unique(state) if id(v) not in ids]
    other_values = [_current(v) for v in others]

    def loss_fn(values):
        mapping = list(zip(variables, values)) + list(zip(others, other_values))
        with _stateless_scope(mapping) as scope:
            loss, aux = fn()
        updated = [scope.get_current_value(v) for v in others]
        return loss, (aux, updated)

    (loss, (aux, updated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        [_current(v) for v in variables])
    for v, old, new in zip(others, other_values, updated):
        if new is not old:
            v.assign(new)
    return loss, aux, list(grads)


def input_gradient(fn, x, differentiable_input=False):
    del differentiable_input  # a nested jax.grad is differentiable in x either way
    grad, aux = jax.grad(fn, has_aux=True)(x)
    return grad, aux


def cond(pred, fn, state):
    variables = _unique(state)

    def taken(values):
        with _stateless_scope(list(zip(variables, values))) as scope:
            result = fn()
        return [scope.get_current_value(v) for v in variables], jax.numpy.asarray(
            result, dtype="float32")

    def skipped(values):
        return list(values), jax.numpy.zeros((), "float32")

    values, result = jax.lax.cond(pred, taken, skipped, [_current(v) for v in variables])
    for v, new in zip(variables, values):
        v.assign(new)
    return result


def after(tensors):
    """A context whose ops wait for `tensors`: XLA already orders them (no-op)."""
    del tensors
    return contextlib.nullcontext()


def no_grad():
    return contextlib.nullcontext()


def apply_gradients(optimizer, grads, variables):
    """`optimizer.apply`; a `LossScaleOptimizer` through its `stateless_apply`.

    `LossScaleOptimizer.apply` assigns inside the branches of an `ops.cond`,
    i.e. `jax.lax.cond`, whose traced values would leak out of the branch into
    the enclosing StatelessScope; `stateless_apply` returns the new values.
    """
    if not isinstance(optimizer, LossScaleOptimizer):
        optimizer.apply(grads, variables)
        return
    variables, optimizer_variables = list(variables), list(optimizer.variables)
    new_values, new_optimizer_values = optimizer.stateless_apply(
        [_current(v) for v in optimizer_variables], grads, [_current(v) for v in variables])
    for v, value in zip(variables + optimizer_variables,
                        list(new_values) + list(new_optimizer_values)):
        v.assign(value)


def jit_compile_default(model):
    del model
    return True


def make_train_function(model):
    del model
    return None  # Keras's own


def train_step(model, state):
    """Keras's JAX contract: `(state, data) -> (logs, state)`; see module doc."""
    state, data = state
    trainable, non_trainable, optimizer_vars, metrics_vars = state
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    mapping = []
    for variables, values in zip(groups, (trainable, non_trainable, optimizer_vars,
                                          metrics_vars)):
        mapping.extend(zip(variables, values))
    with _stateless_scope(mapping) as scope:
        logs = model.iteration_step(data)
    new_state = tuple([scope.get_current_value(v) for v in variables] for variables in groups)
    return logs, new_state
