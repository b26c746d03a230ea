"""PyTorch: autograd, `create_graph` for R1, Python control flow (eager).

In an initialised torch.distributed process group (`--strategy=ddp`: one
process per device, launched by torchrun) each process runs the step on its
shard of the batch. As DistributedDataParallel would, the gradients are
averaged over the processes (all of a phase's gradients in one all-reduce:
summed, then divided by the world size); so are batch statistics
(`replica_mean`) and the loss trackers. DistributedDataParallel itself wraps a
module's forward, which does not fit a GAN whose step runs G and D in several
phases, so the all-reduce is done here.
"""

import contextlib

import torch
import torch.distributed as dist
from keras.ops import convert_to_tensor


def num_replicas():
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _mean_over_processes(tensors):
    """Each tensor's mean over the processes, in one all-reduce."""
    n = num_replicas()
    if n == 1:
        return list(tensors)
    flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in tensors])
    dist.all_reduce(flat)  # sum, in place
    flat = flat / n
    out, start = [], 0
    for t in tensors:
        out.append(flat[start:start + t.numel()].reshape(t.shape).to(t.dtype))
        start += t.numel()
    return out


def replica_mean(x):
    return _mean_over_processes([convert_to_tensor(x)])[0]


def value_and_grad(fn, variables, state=()):
    del state  # the variables themselves carry it
    loss, aux = fn()
    params = [v.value for v in variables]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
    return loss.detach(), aux, _mean_over_processes(grads)


def input_gradient(fn, x, differentiable_input=False):
    x = convert_to_tensor(x)
    if not (differentiable_input and x.requires_grad):
        x = x.detach().requires_grad_(True)
    total, aux = fn(x)
    (grad,) = torch.autograd.grad(total, x, create_graph=True)
    return grad, aux


def cond(pred, fn, state):
    del state
    if bool(pred):
        return fn()
    return torch.zeros((), dtype=torch.float32)


def after(tensors):
    """A context whose ops wait for `tensors`: eager torch runs in order (no-op)."""
    del tensors
    return contextlib.nullcontext()


def no_grad():
    return torch.no_grad()


def apply_gradients(optimizer, grads, variables):
    optimizer.apply(grads, variables)


def jit_compile_default(model):
    del model
    return False  # compiled torch cannot do R1's double backward


def make_train_function(model):
    del model
    return None  # Keras's own


def train_step(model, data):
    logs = model.iteration_step(data)
    if num_replicas() == 1:
        return logs
    # Average the trackers' totals and counts: the same on every process, they
    # then hold the global batch's means (for this step's logs and the epoch's).
    variables = model.metrics_variables
    for variable, value in zip(variables, _mean_over_processes([v.value for v in variables])):
        variable.assign(value)
    return {metric.name: metric.result() for metric in model.metrics}
