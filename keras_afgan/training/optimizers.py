"""Adam as the reference's `torch.optim.Adam` computes it."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_afgan")
class Adam(keras.optimizers.Adam):
    """Adam with epsilon added to the bias-corrected `sqrt(v_hat)` (torch's form).

    With `m_hat = m / (1 - beta_1^t)` and `v_hat = v / (1 - beta_2^t)` the
    step is `lr * m_hat / (sqrt(v_hat) + epsilon)`, as `torch.optim.Adam`
    (the reference's optimizer) takes it. Keras's `Adam` folds the bias
    corrections into the learning rate and adds epsilon to the uncorrected
    `sqrt(v)`, i.e. uses `epsilon / sqrt(1 - beta_2^t)`: with the
    reference's `beta_2 = 0.99`, an epsilon 10x larger at step 1 (and still
    1.26x at step 100). The moments are Keras's (`m += (g - m)(1 - beta_1)`,
    `v += (g^2 - v)(1 - beta_2)`); every other argument is Keras's `Adam`'s.
    """

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        bias_correction_1 = 1 - ops.power(ops.cast(self.beta_1, dtype), step)
        bias_correction_2 = 1 - ops.power(ops.cast(self.beta_2, dtype), step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        denominator = ops.sqrt(v) / ops.sqrt(bias_correction_2) + self.epsilon
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / bias_correction_1),
                                             denominator))
