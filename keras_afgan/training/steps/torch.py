"""PyTorch: autograd, `create_graph` for R1, Python control flow (eager)."""

import torch
from keras.ops import convert_to_tensor


def value_and_grad(fn, variables, state=()):
    del state  # the variables themselves carry it
    loss, aux = fn()
    params = [v.value for v in variables]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
    return loss.detach(), aux, grads


def input_gradient(fn, x):
    x = convert_to_tensor(x).detach().requires_grad_(True)
    total = fn(x)
    (grad,) = torch.autograd.grad(total, x, create_graph=True)
    return grad


def cond(pred, fn, state):
    del state
    if bool(pred):
        return fn()
    return torch.zeros((), dtype=torch.float32)


def no_grad():
    return torch.no_grad()


def train_step(model, data):
    return model.iteration_step(data)
