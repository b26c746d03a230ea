"""Keras layers of the alias-free and StyleGAN2 generators and the StyleGAN2 discriminator."""

from keras_afgan.layers.conv import EqualizedConv2D
from keras_afgan.layers.dense import EqualizedDense
from keras_afgan.layers.discriminator_blocks import DiscriminatorBlock
from keras_afgan.layers.discriminator_blocks import DiscriminatorEpilogue
from keras_afgan.layers.discriminator_blocks import MinibatchStdDev
from keras_afgan.layers.mapping import MappingNetwork
from keras_afgan.layers.synthesis_input import SynthesisInput
from keras_afgan.layers.synthesis_layer import SynthesisLayer
from keras_afgan.layers.synthesis_network import SynthesisNetwork
from keras_afgan.layers.stylegan2 import StyleConv
from keras_afgan.layers.stylegan2 import StyleGAN2Block
from keras_afgan.layers.stylegan2 import StyleGAN2SynthesisNetwork
from keras_afgan.layers.stylegan2 import ToRGB
