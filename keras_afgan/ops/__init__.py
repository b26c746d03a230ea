"""Backend-neutral signal ops in keras.ops (NHWC)."""

from keras_afgan.ops.bias_act import bias_act
from keras_afgan.ops.blur import blur_images
from keras_afgan.ops.filter_design import design_lowpass_filter
from keras_afgan.ops.filter_design import gaussian_blur_filter
from keras_afgan.ops.filter_design import resample_filter_1d
from keras_afgan.ops.filtered_lrelu import filtered_lrelu
from keras_afgan.ops.modulated_conv import modulated_conv2d
from keras_afgan.ops.upfirdn2d import upfirdn2d
from keras_afgan.ops.upfirdn2d import upfirdn2d_reference
