"""keras_afgan: Alias-Free GAN (StyleGAN3) for Keras 3 on TensorFlow, JAX and PyTorch."""

import os

# Torch's CPU allocator backs allocations of 2 MiB and more with transparent
# huge pages when this is set before torch starts: far fewer page faults on
# the large activations (64 px bench, torch forward 1.76 -> 2.15 img/s
# before its CPU inference path; training allocates them still; BUILD_NOTES.md).
# Read by torch only; a value set by the user wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

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
from keras_afgan.models import discriminator_from_preset
from keras_afgan.models import generator_from_preset
from keras_afgan.models import inference_scope
