"""ADA: the augmentation pipe (a Keras layer) and its probability controller."""

from keras_afgan.augment.pipe import NUM_DRAWS
from keras_afgan.augment.pipe import PRESETS
from keras_afgan.augment.pipe import TRANSFORMS
from keras_afgan.augment.pipe import AugmentPipe
from keras_afgan.augment.pipe import preset_kwargs
