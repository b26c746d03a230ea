"""Weight conversion from and to the reference implementation's layout."""

from keras_afgan.convert.reference import discriminator_from_reference
from keras_afgan.convert.reference import discriminator_to_reference
from keras_afgan.convert.reference import generator_from_reference
from keras_afgan.convert.reference import generator_to_reference
from keras_afgan.convert.reference import reference_variables
from keras_afgan.convert.snapshot import load_reference_pickle
