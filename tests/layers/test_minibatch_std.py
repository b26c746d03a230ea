"""MinibatchStdDev (docs/design.md section 3) vs numpy."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_afgan.layers.discriminator_blocks import MinibatchStdDev
from tests.testing import assert_close


def _minibatch_std_np(x, group_size, num_channels):
    """Loop form: G = min(group_size, N); sample n's group is every m with
    m = n (mod N/G); population std over the group (+1e-8 under the sqrt),
    averaged over pixels and the channels of each of `num_channels` groups."""
    x = x.astype(np.float64)
    n, h, w, c = x.shape
    g = n if group_size is None else min(group_size, n)
    m = n // g
    per = c // num_channels
    extra = np.zeros((n, h, w, num_channels))
    for i in range(n):
        members = [j for j in range(n) if j % m == i % m]
        assert len(members) == g
        group = x[members]  # [G, H, W, C]
        std = np.sqrt(np.mean((group - group.mean(axis=0)) ** 2, axis=0) + 1e-8)
        for f in range(num_channels):
            extra[i, :, :, f] = std[:, :, f * per:(f + 1) * per].mean()
    return np.concatenate([x, extra], axis=-1)


@pytest.mark.parametrize("batch,group_size", [(4, 2), (4, 4), (2, 4), (6, 3), (4, None),
                                              (8, 2)])
@pytest.mark.parametrize("num_channels", [1, 2])
def test_minibatch_std_matches_numpy(batch, group_size, num_channels):
    rng = np.random.default_rng(batch * 10 + num_channels)
    # Per-sample scales make the groups' stds differ, so a wrong grouping shows.
    scales = rng.uniform(0.2, 3.0, size=(batch, 1, 1, 1))
    x = (rng.normal(size=(batch, 3, 5, 4)) * scales).astype(np.float32)
    layer = MinibatchStdDev(group_size=group_size, num_channels=num_channels)
    y = layer(ops.convert_to_tensor(x))
    assert tuple(y.shape) == (batch, 3, 5, 4 + num_channels)
    assert_close(y, _minibatch_std_np(x, group_size, num_channels), atol=1e-5)


def test_minibatch_std_grouping_is_strided():
    # Batch 4, group 2: groups are {0, 2} and {1, 3}, not {0, 1} and {2, 3}.
    x = np.zeros((4, 1, 1, 1), dtype=np.float32)
    x[:, 0, 0, 0] = [0.0, 10.0, 2.0, 10.0]
    y = keras.ops.convert_to_numpy(MinibatchStdDev(group_size=2)(ops.convert_to_tensor(x)))
    np.testing.assert_allclose(y[:, 0, 0, 1], [1.0, 1e-4, 1.0, 1e-4], rtol=1e-4)


def test_minibatch_std_in_a_model():
    # Through a functional model with an unknown batch size.
    x = np.random.default_rng(5).normal(size=(4, 3, 3, 2)).astype(np.float32)
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, MinibatchStdDev(group_size=2)(inputs))
    y = model.predict(x, batch_size=4, verbose=0)
    assert_close(y, _minibatch_std_np(x, 2, 1), atol=1e-5)


def test_minibatch_std_indivisible_batch():
    with pytest.raises(ValueError, match="group size"):
        MinibatchStdDev(group_size=4)(ops.zeros((6, 2, 2, 3)))
