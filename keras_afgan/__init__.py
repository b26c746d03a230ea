"""keras_afgan: Alias-Free GAN (StyleGAN3) for Keras 3 on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"

from keras_afgan import augment
from keras_afgan import convert
from keras_afgan import layers
from keras_afgan import models
from keras_afgan import ops
# Every class a saved file may name (AliasFreeGAN, its optimizers) is
# registered with Keras on import, so `keras.saving.load_model` reads any
# keras_afgan file after `import keras_afgan` alone.
from keras_afgan import training
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.models import StyleGAN2Generator
from keras_afgan.models import discriminator_from_preset
from keras_afgan.models import generator_from_preset
from keras_afgan.models import inference_scope
