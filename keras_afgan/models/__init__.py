"""Generator, discriminator, layer schedule and presets."""

from keras_afgan.layers.schedule import synthesis_spec
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.generator import generator_with_dtype
from keras_afgan.models.presets import PRESETS
from keras_afgan.models.presets import discriminator_from_preset
from keras_afgan.models.presets import generator_from_preset
from keras_afgan.models.sampling import inference_scope
from keras_afgan.models.stylegan2 import StyleGAN2Generator
