"""Equivariance (EQ-T, EQ-T_frac, EQ-R), FID, KID and precision/recall."""

from keras_afgan.metrics.equivariance import eqr_psnr
from keras_afgan.metrics.equivariance import eqt_psnr
from keras_afgan.metrics.equivariance import sampled_equivariance
from keras_afgan.metrics.equivariance import transformed_synthesis
from keras_afgan.metrics.fid import InceptionFeatures
from keras_afgan.metrics.fid import VGG16Features
from keras_afgan.metrics.fid import fid_from_features
from keras_afgan.metrics.fid import frechet_distance
from keras_afgan.metrics.fid import kernel_inception_distance
from keras_afgan.metrics.fid import precision_recall
from keras_afgan.metrics.registry import METRICS
from keras_afgan.metrics.registry import compute_metrics
from keras_afgan.metrics.registry import parse_metrics
from keras_afgan.metrics.registry import snapshot_metrics
