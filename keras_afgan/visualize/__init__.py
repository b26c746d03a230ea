"""Videos and power spectra of generators."""
