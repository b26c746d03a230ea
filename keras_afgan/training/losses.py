"""Losses of the StyleGAN training recipe (non-saturating logistic, R1, path length)."""

from keras import ops


def generator_loss(fake_logits):
    """Gmain: `mean(softplus(-D(G(z))))`."""
    return ops.mean(ops.softplus(-ops.cast(fake_logits, "float32")))


def discriminator_loss(fake_logits, real_logits):
    """Dmain: `mean(softplus(D(G(z)))) + mean(softplus(-D(x)))`, and both parts."""
    loss_gen = ops.mean(ops.softplus(ops.cast(fake_logits, "float32")))
    loss_real = ops.mean(ops.softplus(-ops.cast(real_logits, "float32")))
    return loss_gen + loss_real, loss_gen, loss_real


def r1_penalty(real_grads):
    """Per-sample `sum((d sum(D(x)) / dx)^2)` of `[N, H, W, C]` gradients."""
    return ops.sum(ops.square(ops.cast(real_grads, "float32")), axis=(1, 2, 3))


def path_lengths(ws_grads):
    """Per-sample `sqrt(mean over ws of sum over w_dim of g^2)` of `[N, num_ws, w_dim]`
    gradients (StyleGAN2's path length)."""
    g = ops.cast(ws_grads, "float32")
    return ops.sqrt(ops.mean(ops.sum(ops.square(g), axis=2), axis=1))


def sanitize_gradients(grads):
    """Replace NaN by 0 and +-inf by +-1e5, as the reference does before a step."""
    return [None if g is None else ops.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5)
            for g in grads]
