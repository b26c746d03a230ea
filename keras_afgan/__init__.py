"""keras_afgan: Alias-Free GAN (StyleGAN3) for Keras 3 on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from keras_afgan import convert
from keras_afgan import layers
from keras_afgan import models
from keras_afgan import ops
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.models import discriminator_from_preset
from keras_afgan.models import generator_from_preset
