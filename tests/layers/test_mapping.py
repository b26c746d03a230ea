"""The mapping network's normalize_2nd_moment and truncation (docs/design.md
section 2) vs numpy."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_afgan.layers.mapping import MappingNetwork
from keras_afgan.layers.mapping import normalize_2nd_moment
from tests.testing import assert_close


def test_normalize_2nd_moment():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)) * np.array([[0.01], [1.0], [30.0], [0.5], [0.0]])
    x = x.astype(np.float32)
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-8)
    assert_close(normalize_2nd_moment(ops.convert_to_tensor(x)), expected, atol=1e-6,
                 rtol=1e-5)


NUM_WS, W_DIM, BATCH = 5, 6, 3


@pytest.fixture(scope="module")
def mapping():
    net = MappingNetwork(z_dim=4, c_dim=0, w_dim=W_DIM, num_ws=NUM_WS)
    net.build()
    net.w_avg.assign(np.random.default_rng(0).normal(size=(W_DIM,)).astype(np.float32))
    return net


def _truncate_np(ws, w_avg, psi, cutoff):
    """`w_avg + (w - w_avg) * psi` on the first `cutoff` ws; psi scalar or `[N]`."""
    psi = np.asarray(psi, dtype=np.float64)
    if psi.ndim == 1:
        psi = psi[:, None, None]
    out = ws.astype(np.float64)
    cutoff = NUM_WS if cutoff is None else min(cutoff, NUM_WS)
    out[:, :cutoff] = w_avg + (out[:, :cutoff] - w_avg) * psi
    return out


@pytest.mark.parametrize("psi", [0.7, 1.0, -0.5, "scalar_tensor", "vector"])
@pytest.mark.parametrize("cutoff", [None, 2, NUM_WS, NUM_WS + 3])
def test_truncate(mapping, psi, cutoff):
    rng = np.random.default_rng(1)
    ws = rng.normal(size=(BATCH, NUM_WS, W_DIM)).astype(np.float32)
    w_avg = keras.ops.convert_to_numpy(mapping.w_avg).astype(np.float64)
    if psi == "scalar_tensor":
        psi_np, psi_arg = 0.3, ops.convert_to_tensor(np.float32(0.3))
    elif psi == "vector":
        psi_np = np.array([0.2, 1.0, 0.65], dtype=np.float32)
        psi_arg = ops.convert_to_tensor(psi_np)
    else:
        psi_np = psi_arg = psi
    y = mapping.truncate(ops.convert_to_tensor(ws), psi_arg, cutoff)
    assert_close(y, _truncate_np(ws, w_avg, psi_np, cutoff), atol=1e-6)
