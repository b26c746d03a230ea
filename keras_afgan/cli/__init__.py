"""Command-line entry points (absl). Each is also `python -m keras_afgan.cli.<name>`."""
