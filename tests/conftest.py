"""Shared fixtures: the golden vectors of the reference implementation."""

import json
import os
import pathlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOLDEN_DIR = pathlib.Path(
    os.environ.get("KERAS_AFGAN_GOLDEN", pathlib.Path(__file__).resolve().parents[2] / "shared" / "golden")
)


def _discover_cases():
    # Every CASE.json beside a CASE.npz is a case, so added cases are tested too.
    return tuple(sorted(
        p.stem for p in GOLDEN_DIR.glob("*.json")
        if (GOLDEN_DIR / f"{p.stem}.npz").exists() and not p.stem.endswith(("_train", "_eqops"))
    )) or ("t16", "t32", "r32c")


GOLDEN_CASES = _discover_cases()


class GoldenCase:
    """One golden case: `meta` (the JSON), `arrays` (the npz) and helpers."""

    def __init__(self, name):
        self.name = name
        self.meta = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
        with np.load(GOLDEN_DIR / f"{name}.npz") as data:
            self.arrays = {k: data[k] for k in data.files}

    def state(self, net):
        """The reference state dict of net "G" or "D"."""
        prefix = f"{net}/"
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}

    def nhwc(self, key):
        return self.arrays[key].transpose(0, 2, 3, 1)

    def generator(self):
        from keras_afgan.convert import generator_from_reference

        return generator_from_reference(self.state("G"), **self.meta["G_kwargs"])

    def discriminator(self):
        from keras_afgan.convert import discriminator_from_reference

        return discriminator_from_reference(self.state("D"), **self.meta["D_kwargs"])


_CACHE = {}


def golden_case(name):
    if not (GOLDEN_DIR / f"{name}.npz").exists():
        raise FileNotFoundError(
            f"Golden vectors not found under {GOLDEN_DIR}; set KERAS_AFGAN_GOLDEN to the "
            "shared/golden folder."
        )
    if name not in _CACHE:
        _CACHE[name] = GoldenCase(name)
    return _CACHE[name]


@pytest.fixture(params=GOLDEN_CASES)
def case(request):
    return golden_case(request.param)
