"""Torch-specific forms of two ops, for speed on the CPU (backend-specific by nature).

Imported only on the torch backend; the ops dispatch here and run their
keras.ops form everywhere else.

`conv2d_full`: keras.ops.conv on torch copies NHWC inputs to NCHW and back
to channels-last memory (two copies, plus the explicit zero pad) before
oneDNN runs; the permuted view of an NHWC tensor already is channels-last
NCHW, and the convolution pads by itself. ~19 % of a 64 px torch forward
was those copies. Used in training too (autograd is torch's own).

`filtered_lrelu_inference`: the filtered leaky ReLU where torch runs op by
op on the CPU and records no gradient (`Model.predict`, `torch.no_grad()`,
`keras_afgan.models.sampling.inference_scope`; see `applies`). Op by op,
the keras.ops form writes the upsampled tensor (4x the activations at
up = 2) to memory several times: the rows' resampling matrix product, the
leaky ReLU, the gain, the clamp, each a fresh allocation the kernel has to
page in. At the 64 px bench settings that cost more than the convolutions
(BUILD_NOTES.md, "Speed"). Here, per image and per block of
`[upsampled rows, ~1k columns]` (which stays in the L2 cache):

    t = sum_r MuH[r] @ z_r[:, block]         (z_r = x @ MuW[r]^T, the columns upsampled)
    t = leaky_relu(clamp(t, -c / (g s), c / g))           in place
    o_r[:, block] = (g MdH[r]) @ t            for each term of the down filter
    out = sum_r o_r @ MdW[r]^T

The row matrices (`MuH`, `MdH`) are ~93 % zeros and run as sparse CSR
products. The gain `g` moves into the down matrices and the clamp before
the leaky ReLU (slope `s >= 0`, so the ReLU is monotonic):
`clamp(g lrelu(t), -c, c) = g lrelu(clamp(t, -c / (g s), c / g))`, exactly.
"""

import functools
import warnings

import numpy as np
import torch

from keras_afgan.ops.upfirdn2d import _parse_padding
from keras_afgan.ops.upfirdn2d import resampling_matrices

# Bytes of one block of upsampled rows `[H', BLOCK_BYTES / 4 / H']` (float32):
# the two cores' L2 caches (512 KiB each). At 84 px (H' = 178), blocks of
# 1024-1472 columns ran fastest among 256-23k.
BLOCK_BYTES = 1 << 20


def conv2d_full(x, weight):
    """`[N, H + k - 1, W + k - 1, O]`: NHWC `x` correlated with `[k, k, I, O]` `weight`,
    zero-padded by `k - 1` on every side (as `ops.pad` then `ops.conv`)."""
    k = int(weight.shape[0])
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight.permute(3, 2, 0, 1),
                                   padding=k - 1)
    return y.permute(0, 2, 3, 1)


def applies(x, b, slope, gain):
    """Whether `filtered_lrelu_inference` can run on `x` and the bias `b` (or None)."""
    if not (isinstance(x, torch.Tensor) and (b is None or isinstance(b, torch.Tensor))):
        return False
    recording = torch.is_grad_enabled() and (x.requires_grad or (b is not None
                                                                 and b.requires_grad))
    return (x.device.type == "cpu" and x.ndim == 4 and not recording
            and x.dtype in (torch.float32, torch.bfloat16, torch.float16)
            and not torch.compiler.is_compiling() and slope >= 0 and gain > 0)


def _filter_key(f):
    if f is None:
        return None
    f = np.ascontiguousarray(np.asarray(f, dtype=np.float64))
    return f.tobytes(), f.shape


def _from_key(key):
    return None if key is None else np.frombuffer(key[0], dtype=np.float64).reshape(key[1])


def _sparse_rows(m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Sparse CSR tensor support is in beta"
        return torch.from_numpy(m.astype(np.float32)).to_sparse_csr()


@functools.lru_cache(maxsize=256)
def _plan(in_h, in_w, fu_key, fd_key, up, down, padding, gain):
    muy, mux = resampling_matrices(in_h, in_w, _from_key(fu_key), up=up, padding=padding,
                                   gain=up**2)
    mdy, mdx = resampling_matrices(muy.shape[1], mux.shape[1], _from_key(fd_key), down=down)
    up_terms = tuple((torch.from_numpy(mx.astype(np.float32)), _sparse_rows(my))
                     for my, mx in zip(muy, mux))
    down_terms = tuple((_sparse_rows(my * gain), torch.from_numpy(mx.astype(np.float32)))
                       for my, mx in zip(mdy, mdx))
    return up_terms, down_terms


def filtered_lrelu_inference(x, fu, fd, b, up, down, padding, gain, slope, clamp):
    """`filtered_lrelu` where `applies(x, b, slope, gain)`; `b` in `x`'s dtype or None.

    The bias is added in `x`'s dtype (as the keras.ops form does), the rest
    computed in float32; returns `x`'s dtype.
    """
    dtype = x.dtype
    n, in_h, in_w, c = x.shape
    up_terms, down_terms = _plan(in_h, in_w, _filter_key(fu), _filter_key(fd), int(up),
                                 int(down), _parse_padding(padding), float(gain))
    mid_h, mid_w = up_terms[0][1].shape[0], up_terms[0][0].shape[0]
    out_h, out_w = down_terms[0][0].shape[0], down_terms[0][1].shape[0]
    if clamp is None:
        low = high = None
    else:
        high = clamp / gain
        low = -clamp / (gain * slope) if slope > 0 else None
    columns = mid_w * c
    block = max(256, BLOCK_BYTES // 4 // mid_h)
    out = torch.empty((n, out_h, out_w, c), dtype=torch.float32)
    for i in range(n):
        image = x[i] if b is None else x[i] + b  # [H, W, C]
        image = image.float()
        zs = [torch.matmul(mw, image).reshape(in_h, columns) for mw, _ in up_terms]  # [H, W' C]
        rows = [torch.empty((out_h, columns), dtype=torch.float32) for _ in down_terms]
        for start in range(0, columns, block):
            t = None
            for (_, mh), z in zip(up_terms, zs):
                part = mh @ z[:, start:start + block]  # [H', block]
                t = part if t is None else t.add_(part)
            if clamp is not None:
                t.clamp_(low, high)
            if slope != 1:
                torch.nn.functional.leaky_relu(t, slope, inplace=True)
            for (mh, _), o in zip(down_terms, rows):
                o[:, start:start + block] = mh @ t
        for k, ((_, mw), o) in enumerate(zip(down_terms, rows)):
            y = o.reshape(out_h, mid_w, c)
            if k == 0:
                torch.matmul(mw, y, out=out[i])
            else:
                out[i] += torch.matmul(mw, y)
    return out if dtype == torch.float32 else out.to(dtype)
