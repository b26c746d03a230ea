"""Training: the AliasFreeGAN model, losses, data and callbacks."""

from keras_afgan.training.gan import AliasFreeGAN
from keras_afgan.training.gan import default_optimizers
