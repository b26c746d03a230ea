"""Golden generators in mixed precision against the reference's float32 images.

    KERAS_BACKEND=jax python scripts/mixed_precision_errors.py

Prints one JSON line: for each golden case and mixed policy, the max |error|
and the RMS error of G(z) (eager call, every layer in reduced precision:
`num_fp16_res=4` covers all layers at 16-32 px). BUILD_NOTES.md "Mixed
precision" records the numbers. Reads the golden vectors as the tests do
(`../shared/golden` or `$KERAS_AFGAN_GOLDEN`).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_afgan.convert.reference import generator_kwargs_from_reference  # noqa: E402
from keras_afgan.models import Generator  # noqa: E402
from tests.conftest import golden_case  # noqa: E402


def main():
    rows = {}
    for name in ("t16", "t32", "r32c"):
        case = golden_case(name)
        reference = case.generator()
        settings = dict(generator_kwargs_from_reference(**case.meta["G_kwargs"]), num_fp16_res=4)
        for precision in ("mixed_bfloat16", "mixed_float16"):
            G = Generator(**settings, dtype=precision)
            G.set_weights(reference.get_weights())
            images = G(case.arrays["in/z"], case.arrays["in/c"],
                       truncation_psi=case.meta["truncation_psi"])
            err = np.asarray(keras.ops.convert_to_numpy(images), np.float64) - case.nhwc("out/img")
            rows[f"{name} {precision}"] = [float(np.abs(err).max()),
                                           float(np.sqrt(np.mean(err**2)))]
    print(json.dumps({keras.backend.backend(): rows}))


if __name__ == "__main__":
    main()
