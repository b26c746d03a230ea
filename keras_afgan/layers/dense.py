"""Equalized-learning-rate dense layer."""

import math

import keras
import numpy as np

from keras_afgan.ops.bias_act import ACTIVATIONS
from keras_afgan.ops.bias_act import bias_act


@keras.saving.register_keras_serializable(package="keras_afgan")
class EqualizedDense(keras.layers.Layer):
    """Dense layer with the equalized learning rate of ProGAN/StyleGAN.

    The kernel is stored as `N(0, weight_init^2) / lr_multiplier` and
    multiplied at run time by `lr_multiplier / sqrt(fan_in)`; the bias is
    stored divided by `lr_multiplier` and multiplied by it at run time.

    Args:
        units: output features.
        activation: "linear" or "lrelu" (gain sqrt(2)).
        lr_multiplier: learning-rate multiplier.
        use_bias: whether to add a bias.
        bias_init: initial bias, a scalar or a list of `units` values.
        weight_init: standard deviation of the initial weights (0 for zeros).
    """

    def __init__(self, units, activation="linear", lr_multiplier=1.0, use_bias=True,
                 bias_init=0.0, weight_init=1.0, **kwargs):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"Expected activation in {ACTIVATIONS}. Received: {activation!r}")
        self.units = int(units)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.use_bias = use_bias
        self.bias_init = bias_init
        self.weight_init = float(weight_init)

    def build(self, input_shape):
        in_features = int(input_shape[-1])
        self.weight_gain = self.lr_multiplier / math.sqrt(in_features)
        std = self.weight_init / self.lr_multiplier
        self.kernel = self.add_weight(
            name="kernel",
            shape=(in_features, self.units),
            initializer=keras.initializers.RandomNormal(stddev=std) if std else "zeros",
        )
        self.bias = None
        if self.use_bias:
            init = np.broadcast_to(np.asarray(self.bias_init, np.float32), [self.units])
            init = init / self.lr_multiplier
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=lambda shape, dtype=None: keras.ops.convert_to_tensor(init, dtype=dtype),
            )

    def call(self, x):
        x = keras.ops.matmul(x, self.kernel * self.weight_gain)
        b = None if self.bias is None else self.bias * self.lr_multiplier
        return bias_act(x, b, activation=self.activation)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        bias_init = self.bias_init
        if isinstance(bias_init, np.ndarray):
            bias_init = bias_init.tolist()
        config.update({
            "units": self.units,
            "activation": self.activation,
            "lr_multiplier": self.lr_multiplier,
            "use_bias": self.use_bias,
            "bias_init": bias_init,
            "weight_init": self.weight_init,
        })
        return config
