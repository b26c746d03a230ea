"""Deployment: TF Serving SavedModels and ONNX models of a generator."""

from keras_afgan.export.onnx import export_onnx
from keras_afgan.export.saved_model import SIGNATURE_NAMES
from keras_afgan.export.saved_model import export_saved_model
from keras_afgan.export.saved_model import serving_endpoints
