"""Upsample, FIR-filter, downsample (`upfirdn2d`) on NHWC tensors.

`upfirdn2d` is the fast path. Along each axis, zero-insertion, padding or
cropping, convolution and decimation together are one linear map from
`in_size` samples to `out_size` samples; it is applied in one of two forms:

- "polyphase" (under JAX's jit, torch.compile, and TensorFlow's XLA within
  `inference_resampling()`): output sample
  `j = q * P + r` of phase `r` is `sum_t h_r[t] * x[q * S + o_r + t]`, a
  short filter on strided slices of the (zero-padded) input, with
  `P = up / gcd(up, down)` phases and input stride `S = down / gcd(up, down)`. Only the taps that meet input samples
  are multiplied (`taps / up` per output when upsampling) and no discarded
  sample is computed; the phases are interleaved by a stack and a reshape.
  Under XLA the slices, products and the interleave fuse into one loop.
  Its gradient is a custom one, the transposed map: on JAX the transposed
  map's own polyphase form (`adjoint_polyphase_plan`; the transpose of an
  upfirdn is again an upfirdn), on TensorFlow as matrices. Differentiating
  the slices themselves gives interior pads and scatters that XLA compiles
  ~5x and runs 3-5x slower.
- "matrix" (op by op, and TensorFlow's train steps; see `default_method`): the whole
  map as a small banded `[out_size, in_size]` matrix, applied as one
  broadcast matrix product per axis: few large ops.

The plan of either form is computed once in numpy (float64) and cached; the
traced code sees only Python numbers, or the matrix as a constant. A 2-D
(non-separable, radial) filter is split by SVD into a sum of separable terms,
exactly to float precision.

`upfirdn2d_reference` is the slow, obviously-correct form kept for tests: it
zero-inserts, pads, runs a depthwise convolution with the flipped filter and
slices every `down`-th sample.
"""

import contextlib
import contextvars
import functools
import math
import os

import keras
import numpy as np
from keras import ops


def _parse_padding(padding):
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    if len(padding) != 4:
        raise ValueError(
            "Expected padding to be an int, (pad_x, pad_y) or "
            f"(x_lo, x_hi, y_lo, y_hi). Received: padding={padding}"
        )
    return padding


def _as_filter(f):
    if f is None:
        return np.ones([1], dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if f.ndim not in (1, 2):
        raise ValueError(f"Expected a 1-D or 2-D filter. Received: shape={f.shape}")
    return f


def output_size(in_size, taps, up, down, pad_lo, pad_hi):
    """Samples per axis after upfirdn: `(in*up + lo + hi - taps) // down + 1`."""
    return (in_size * up + pad_lo + pad_hi - taps) // down + 1


def upfirdn1d_numpy(x, f, up=1, down=1, pad_lo=0, pad_hi=0, gain=1.0):
    """Plain numpy upfirdn along axis 0 of `x` (float64), step by step."""
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64) * gain
    y = np.zeros((x.shape[0] * up,) + x.shape[1:])
    y[::up] = x
    y = y[max(-pad_lo, 0) : y.shape[0] - max(-pad_hi, 0)]
    pad = [(max(pad_lo, 0), max(pad_hi, 0))] + [(0, 0)] * (x.ndim - 1)
    y = np.pad(y, pad)
    n = y.shape[0] - f.shape[0] + 1
    if n < 1:
        raise ValueError(
            f"upfirdn leaves no samples: {x.shape[0]} samples, up={up}, "
            f"padding=({pad_lo}, {pad_hi}), {f.shape[0]} taps"
        )
    # True convolution: out[j] = sum_k f[k] * y[j + taps - 1 - k].
    out = sum(f[k] * y[f.shape[0] - 1 - k : f.shape[0] - 1 - k + n] for k in range(f.shape[0]))
    return out[::down]


@functools.lru_cache(maxsize=512)
def _resampling_matrix_cached(in_size, f_bytes, taps, up, down, pad_lo, pad_hi, gain):
    f = np.frombuffer(f_bytes, dtype=np.float64)[:taps]
    return upfirdn1d_numpy(np.eye(in_size), f, up, down, pad_lo, pad_hi, gain)


def resampling_matrix(in_size, f, up=1, down=1, pad_lo=0, pad_hi=0, gain=1.0):
    """The `[out_size, in_size]` matrix of 1-D upfirdn with filter `f` (float64)."""
    f = np.ascontiguousarray(_as_filter(f).reshape(-1))
    return _resampling_matrix_cached(
        int(in_size), f.tobytes(), f.size, int(up), int(down), int(pad_lo), int(pad_hi), float(gain)
    )


@functools.lru_cache(maxsize=128)
def _separable_terms_cached(f_bytes, shape):
    f = np.frombuffer(f_bytes, dtype=np.float64).reshape(shape)
    u, s, vt = np.linalg.svd(f)
    keep = s > s[0] * 1e-12
    # f[ky, kx] = sum_r (s_r u_r)[ky] * vt_r[kx]
    return tuple((u[:, r] * s[r], vt[r]) for r in np.nonzero(keep)[0])


def separable_terms(f):
    """Split a 2-D filter `[ky, kx]` into `[(fy, fx), ...]` with `f = sum fy fx^T`."""
    f = np.ascontiguousarray(_as_filter(f))
    if f.ndim == 1:
        return ((f, f),)
    return _separable_terms_cached(f.tobytes(), f.shape)


def _axis_terms(f, gain):
    """`((fy, fx), ...)` with `f * gain = sum fy fx^T` (a 1-D `f` runs along both axes)."""
    if f.ndim == 1:
        return ((f * np.sqrt(gain), f * np.sqrt(gain)),)
    return tuple((fy * gain, fx) for fy, fx in separable_terms(f))


def resampling_matrices(in_h, in_w, f, up=1, down=1, padding=0, gain=1.0):
    """`(my, mx)`: `upfirdn2d(x) = sum_r my[r] @ x @ mx[r]^T` per image and channel.

    `my` is `[R, H', H]` and `mx` `[R, W', W]` (float64), one pair per
    separable term of `f` (R = 1 for a 1-D filter).
    """
    x_lo, x_hi, y_lo, y_hi = _parse_padding(padding)
    terms = _axis_terms(_as_filter(f), gain)
    mx = np.stack([resampling_matrix(in_w, fx, up, down, x_lo, x_hi) for _, fx in terms])
    my = np.stack([resampling_matrix(in_h, fy, up, down, y_lo, y_hi) for fy, _ in terms])
    return my, mx


METHODS = ("polyphase", "matrix")

_INFERENCE = contextvars.ContextVar("keras_afgan_inference_resampling", default=False)


@contextlib.contextmanager
def inference_resampling():
    """Within: the resampling runs where no gradient will be taken (e.g. `predict`).

    `default_method` then picks the polyphase form under TensorFlow's XLA too
    (64 px bench forward +28 %); without the hint TensorFlow keeps the
    matrices there, whose train steps XLA compiles much faster.
    """
    token = _INFERENCE.set(True)
    try:
        yield
    finally:
        _INFERENCE.reset(token)


def default_method(x):
    """The form `upfirdn2d` uses for `x` when not told.

    `KERAS_AFGAN_RESAMPLING=polyphase|matrix` in the environment overrides
    the choice below everywhere (e.g. to weigh compile time against speed).

    "polyphase" when a float32 `x` is being traced by JAX's jit or by
    `torch.compile`, or by TensorFlow's XLA within `inference_resampling()`
    (the generator's `training=False` calls, as in `predict`): there its
    slices, products and interleave fuse into loops. "matrix" otherwise: op
    by op (eager, and TensorFlow graphs without XLA such as a SavedModel's
    signatures, whose strided slices run one kernel each), a few large
    matrix multiplies beat dozens of elementwise passes; and in TensorFlow's
    XLA-compiled train steps, which take 1.6-2.4x as long to compile with
    the polyphase form (see the comment below).
    """
    forced = os.environ.get("KERAS_AFGAN_RESAMPLING")
    if forced:
        if forced not in METHODS:
            raise ValueError(f"Expected KERAS_AFGAN_RESAMPLING in {METHODS}. "
                             f"Received: {forced!r}")
        return forced
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        compiled = isinstance(x, jax.core.Tracer)
    elif backend == "torch":
        import torch

        compiled = torch.compiler.is_compiling()
    else:
        # TensorFlow keeps the matrices in XLA-compiled train steps: XLA took
        # 1.6-2.4x as long to compile them with the polyphase form
        # (BUILD_NOTES.md). Inference has no gradient to compile: there the
        # polyphase form runs the 64 px bench forward 28 % faster.
        compiled = _INFERENCE.get() and _in_xla_function()
    # XLA's CPU code for bfloat16 / float16 slices and products is slow: 64 px
    # bench, JAX, mixed_bfloat16 forward 0.32 img/s polyphase, 1.35 with the
    # (float32) matrices.
    float32 = keras.backend.standardize_dtype(x.dtype) == "float32"
    return "polyphase" if compiled and float32 else "matrix"


def _in_xla_function():
    """Whether TensorFlow is tracing a function that XLA compiles (`jit_compile=True`).

    Keras's `fit`/`predict` compile with XLA when `jit_compile=True` (what
    `AliasFreeGAN.compile` and `afgan-bench` use on TensorFlow; Keras's own
    "auto" picks XLA only where a GPU is present). Plain graphs (a
    SavedModel's signatures, `tf.function` without XLA) are not.
    """
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    if tf.executing_eagerly():
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


@functools.lru_cache(maxsize=1024)
def _polyphase_plan_cached(in_size, f_bytes, taps, up, down, pad_lo, pad_hi, gain):
    f = np.frombuffer(f_bytes, dtype=np.float64)[:taps] * gain
    out_size = output_size(in_size, taps, up, down, pad_lo, pad_hi)
    if out_size < 1:
        raise ValueError(
            f"upfirdn leaves no samples: {in_size} samples, up={up}, "
            f"padding=({pad_lo}, {pad_hi}), {taps} taps")
    g = math.gcd(up, down)
    num_phases, stride = up // g, down // g
    phases = []
    for r in range(min(num_phases, out_size)):
        count = (out_size - r + num_phases - 1) // num_phases
        # out[j] = sum_k f[k] * y[j * down + taps - 1 - k], where the padded,
        # zero-inserted y holds x[i] at i * up + pad_lo: only the k with
        # (j * down + taps - 1 - k - pad_lo) divisible by up meet a sample.
        terms = []
        for k in range(taps):
            e = r * down + taps - 1 - k - pad_lo
            if e % up == 0 and f[k] != 0:
                terms.append((e // up, float(f[k])))
        phases.append((count, tuple(sorted(terms))))
    offsets = [o for _, terms in phases for o, _ in terms] or [0]
    last = max(o + (count - 1) * stride for count, terms in phases for o, _ in terms) \
        if any(terms for _, terms in phases) else 0
    pad_left = max(-min(offsets), 0)
    pad_right = max(last - (in_size - 1), 0)
    return out_size, stride, pad_left, pad_right, tuple(phases)


def polyphase_plan(in_size, f, up=1, down=1, pad_lo=0, pad_hi=0, gain=1.0):
    """Polyphase form of 1-D upfirdn, as plain Python numbers.

    Returns `(out_size, stride, pad_left, pad_right, phases)`: zero-pad the
    input by `pad_left, pad_right`; phase `r` holds `(count, ((offset,
    coef), ...))` and gives outputs `r, r + P, r + 2P, ...` (`P =
    len(phases)`) as `sum coef * padded[pad_left + offset + q * stride]` for
    `q < count`.
    """
    f = np.ascontiguousarray(_as_filter(f).reshape(-1))
    return _polyphase_plan_cached(
        int(in_size), f.tobytes(), f.size, int(up), int(down), int(pad_lo), int(pad_hi),
        float(gain))


def _axis_slice(x, axis, start, stop, step=1):
    index = [slice(None)] * 4
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def _polyphase_axis(x, plan, axis):
    out_size, stride, pad_left, pad_right, phases = plan
    if pad_left or pad_right:
        pad = [[0, 0]] * 4
        pad[axis] = [pad_left, pad_right]
        x = ops.pad(x, pad)
    outputs = []
    full = phases[0][0]
    for count, terms in phases:
        y = None
        for offset, coef in terms:
            start = pad_left + offset
            term = _axis_slice(x, axis, start, start + (count - 1) * stride + 1, stride) * coef
            y = term if y is None else y + term
        if y is None:  # a phase no tap reaches: all zeros
            shape = list(x.shape)
            shape[axis] = count
            y = ops.zeros(shape, x.dtype)
        if count < full:
            pad = [[0, 0]] * 4
            pad[axis] = [0, full - count]
            y = ops.pad(y, pad)
        outputs.append(y)
    if len(outputs) == 1:
        return outputs[0]
    y = ops.stack(outputs, axis=axis + 1)  # [..., full, P, ...]: interleave the phases
    shape = list(y.shape)
    shape[axis:axis + 2] = [full * len(outputs)]
    y = ops.reshape(y, [-1 if s is None else s for s in shape])
    return _axis_slice(y, axis, 0, out_size)


def upfirdn2d(x, f, up=1, down=1, padding=0, gain=1.0, method=None):
    """Upsample, pad, FIR-filter and downsample a batch of images (fast path).

    Steps, per channel and in this order: zero-insert upsampling by `up`
    (each sample followed by `up - 1` zeros along each axis); pad (crop where
    negative) by `padding`; true convolution ('valid') with `f * gain`;
    keep every `down`-th sample starting at index 0.

    Args:
        x: `[N, H, W, C]` images.
        f: `None` (no filter), a 1-D numpy filter `[taps]` applied separably
            (each pass scaled by `sqrt(gain)`), or a 2-D filter `[taps, taps]`
            indexed `[y, x]`.
        up: integer upsampling factor.
        down: integer downsampling factor.
        padding: int, `(pad_x, pad_y)` or `(x_lo, x_hi, y_lo, y_hi)`.
        gain: overall gain of the filter (use `up**2` to keep the DC level
            when upsampling).
        method: "polyphase", "matrix" or `None` (`default_method(x)`); see
            the module docstring. Both give the same result to float rounding.

    Returns:
        `[N, H', W', C]` with `H' = (H*up + y_lo + y_hi - taps) // down + 1`.
    """
    x_lo, x_hi, y_lo, y_hi = _parse_padding(padding)
    f = _as_filter(f)
    method = default_method(x) if method is None else method
    if method not in METHODS:
        raise ValueError(f"Expected method in {METHODS} or None. Received: method={method!r}")
    if f.size == 1 and up == 1 and down == 1 and not any((x_lo, x_hi, y_lo, y_hi)):
        # A 1-D filter runs along both axes, so its single tap counts twice.
        scale = gain * float(f.flat[0]) ** (2 if f.ndim == 1 else 1)
        return x if scale == 1 else x * scale
    in_h, in_w = int(x.shape[1]), int(x.shape[2])
    terms = _axis_terms(f, gain)

    plans = tuple((polyphase_plan(in_w, fx, up, down, x_lo, x_hi),
                   polyphase_plan(in_h, fy, up, down, y_lo, y_hi)) for fy, fx in terms)
    backend = keras.config.backend()
    if method == "polyphase" and backend == "torch":
        return _polyphase_apply(x, plans)
    # Differentiating the strided slices themselves gives interior pads and
    # scatters, which XLA compiles ~5x slower and runs 3-5x slower than the
    # matrix products (measured on 36-148 px, BUILD_NOTES.md); the map is
    # linear, so its gradient is the transposed map, applied in polyphase
    # form on JAX (the 64 px train step 8.0 -> 6.8 s against the matrices,
    # BUILD_NOTES.md "Speed") and as matrices on TensorFlow.
    if method == "polyphase" and backend == "jax":
        adjoint_plans = tuple((adjoint_polyphase_plan(in_w, fx, up, down, x_lo, x_hi),
                               adjoint_polyphase_plan(in_h, fy, up, down, y_lo, y_hi))
                              for fy, fx in terms)
        return _jax_linear_map()(x, plans, adjoint_plans)
    my, mx = resampling_matrices(in_h, in_w, f, up, down, padding, gain)
    if method == "matrix":
        return apply_matrices(x, mx, my)
    return _with_matrix_gradient(lambda x: _polyphase_apply(x, plans, separate_passes=True),
                                 x, mx, my)


def apply_matrices(x, mx, my):
    """`sum_r my[r] @ x @ mx[r]^T` over each image's rows and columns (NHWC).

    In float32 whatever `x`'s dtype: CPU bfloat16 batched matmuls are slow
    (torch eager: a 64 px forward took 74 s instead of 5 s) and round the
    filter's sums coarsely (BUILD_NOTES.md, "Mixed precision").
    """
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype != "float32":
        return ops.cast(apply_matrices(ops.cast(x, "float32"), mx, my), dtype)
    in_h, c = int(x.shape[1]), int(x.shape[3])
    total = None
    for r in range(len(mx)):
        mw = ops.convert_to_tensor(mx[r].astype(np.float32), dtype=x.dtype)  # [W', W]
        mh = ops.convert_to_tensor(my[r].astype(np.float32), dtype=x.dtype)  # [H', H]
        # Plain (broadcast) matrix products on contiguous views: [W', W] @ [W, C]
        # per row, then [H', H] @ [H, W' * C] per image; no transposes.
        y = ops.matmul(mw, x)
        y = ops.reshape(y, (-1, in_h, mx.shape[1] * c))
        y = ops.reshape(ops.matmul(mh, y), (-1, my.shape[1], mx.shape[1], c))
        total = y if total is None else total + y
    return total


def _with_matrix_gradient(fn, x, mx, my):
    """`fn(x)` whose vector-Jacobian product is the transposed matrices' (TensorFlow).

    `fn` must be the linear map `apply_matrices(., mx, my)` in another form.
    The gradient is itself plain matrix products, so it can be differentiated
    again (R1's double backward).
    """
    import tensorflow as tf

    mx_t, my_t = np.transpose(mx, (0, 2, 1)), np.transpose(my, (0, 2, 1))

    @tf.custom_gradient
    def linear(x):
        def backward(dy):
            return apply_matrices(dy, mx_t, my_t)

        return fn(x), backward

    return linear(x)


def adjoint_polyphase_plan(in_size, f, up=1, down=1, pad_lo=0, pad_hi=0, gain=1.0):
    """The polyphase plan of the transpose of 1-D upfirdn's map (see `polyphase_plan`).

    The transpose of "zero-insert by `up`, pad, convolve with `f`, keep every
    `down`-th" is again an upfirdn: zero-insert by `down`, pad by
    `taps - 1 - pad_lo` (crop where negative) and whatever brings the output
    back to `in_size` samples, convolve with the reversed `f`, keep every
    `up`-th. It maps `out_size` samples to `in_size`.
    """
    f = np.ascontiguousarray(_as_filter(f).reshape(-1))
    taps = f.size
    out_size = output_size(in_size, taps, up, down, pad_lo, pad_hi)
    lo = taps - 1 - pad_lo
    hi = (in_size - 1) * up + taps - out_size * down - lo
    return polyphase_plan(out_size, f[::-1], down, up, lo, hi, gain)


def _polyphase_apply(x, plans, separate_passes=False):
    """`sum_r` of the separable polyphase maps `plans` (`((plan_x, plan_y), ...)`).

    `separate_passes` (under XLA: JAX, TensorFlow's `jit_compile`): where
    the height pass is a plain decimating filter (one phase, no padding),
    one zero row is appended to the width pass's output; the height pass
    never reads it. Without it XLA fuses the two passes into one loop that
    recomputes each width-pass sample for every height tap (12 times for the
    12-tap 2x downsampling): a [8, 178, 178, 128] downsampling took 60 ms
    instead of 37; the 64 px bench forward went 6.3 -> 7.5 img/s on JAX,
    6.7 -> 8.5 on TensorFlow's XLA, the JAX train step 6.6 -> 6.1 s
    (BUILD_NOTES.md "Speed"). XLA does not fuse a padded operand into a
    consumer that reads each element many times. Upsampling passes (several
    phases, interleaved by a stack) are not fused that way and get no row.
    """
    total = None
    for plan_x, plan_y in plans:
        y = _polyphase_axis(x, plan_x, axis=2)
        _, _, pad_left, pad_right, phases = plan_y
        if separate_passes and len(phases) == 1 and not (pad_left or pad_right):
            y = ops.pad(y, [[0, 0], [0, 1], [0, 0], [0, 0]])
        y = _polyphase_axis(y, plan_y, axis=1)
        total = y if total is None else total + y
    return total


@functools.cache
def _jax_linear_map():
    """`apply(x, plans, adjoint_plans)`: `_polyphase_apply(x, plans)` (JAX) whose
    vector-Jacobian product is `apply(dy, adjoint_plans, plans)`.

    The map and its transpose are each other's gradient, so derivatives of
    every order (R1's double backward) are polyphase maps again. The forward
    rule calls `apply` itself so that a second derivative, which also
    differentiates the forward pass, meets these rules there too.
    """
    import jax

    @functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
    def apply(x, plans, adjoint_plans):
        return _polyphase_apply(x, plans, separate_passes=True)

    def forward(x, plans, adjoint_plans):
        return apply(x, plans, adjoint_plans), None

    def backward(plans, adjoint_plans, _, dy):
        return (apply(dy, adjoint_plans, plans),)

    apply.defvjp(forward, backward)
    return apply


def _zero_insert(x, up, axis):
    if up == 1:
        return x
    shape = list(ops.shape(x))
    zeros = ops.zeros_like(x)
    x = ops.stack([x] + [zeros] * (up - 1), axis=axis + 1)
    shape[axis] = shape[axis] * up
    return ops.reshape(x, shape)


def _pad_or_crop(x, lo, hi, axis):
    size = x.shape[axis]
    start, stop = max(-lo, 0), size - max(-hi, 0)
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    x = x[tuple(index)]
    pad = [[0, 0]] * 4
    pad[axis] = [max(lo, 0), max(hi, 0)]
    return ops.pad(x, pad)


def upfirdn2d_reference(x, f, up=1, down=1, padding=0, gain=1.0):
    """Slow, obviously-correct `upfirdn2d`: same arguments and result.

    Zero-inserts, pads or crops, convolves with the whole 2-D filter (the
    outer product of a 1-D one) as a depthwise convolution, then slices.
    Computes every sample that decimation throws away; for tests only.
    """
    x_lo, x_hi, y_lo, y_hi = _parse_padding(padding)
    f = _as_filter(f)
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = (f2 * gain)[::-1, ::-1]  # true convolution = correlation with the flipped filter
    channels = int(x.shape[-1])
    x = _zero_insert(x, up, axis=1)
    x = _zero_insert(x, up, axis=2)
    x = _pad_or_crop(x, y_lo, y_hi, axis=1)
    x = _pad_or_crop(x, x_lo, x_hi, axis=2)
    kernel = np.tile(f2[:, :, None, None], [1, 1, channels, 1]).astype(np.float32)
    x = ops.depthwise_conv(x, ops.convert_to_tensor(kernel, dtype=x.dtype), padding="valid")
    return x[:, ::down, ::down, :]
