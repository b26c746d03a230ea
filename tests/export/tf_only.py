"""Run exported SavedModels in a fresh interpreter that has only TensorFlow.

The subprocess hides keras, keras_afgan, tf_keras, jax and torch from the
import system before importing TensorFlow (as if they were not installed),
then runs signatures of SavedModels on inputs read from `.npz` files and
writes every output, or the error message, to another `.npz` / text.

    python tests/export/tf_only.py JOBS.json

JOBS.json: `[{"export_dir", "signature", "inputs" (npz), "outputs" (npz)}]`.
A job whose signature call fails writes `outputs + ".error"` with the
exception's type and message instead.
"""

import importlib.machinery
import json
import os
import subprocess
import sys

HIDDEN = ("keras", "keras_afgan", "tf_keras", "jax", "torch")


class _HidePackages(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        return super().find_spec(name, path, target)


def run_jobs(jobs_path, env=None):
    """Run the jobs in a TF-only subprocess (called from the tests)."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    full_env.pop("PYTHONPATH", None)  # the repo (keras_afgan) must not be importable
    result = subprocess.run([sys.executable, os.path.abspath(__file__), jobs_path],
                            capture_output=True, text=True, env=full_env, timeout=600,
                            cwd=os.path.dirname(jobs_path))
    if result.returncode != 0:
        raise AssertionError(f"TF-only process failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def run_signatures(workdir, calls):
    """Call SavedModel signatures in one TF-only subprocess.

    Args:
        workdir: a scratch directory.
        calls: `[(export_dir, signature_name, {input name: array})]`.

    Returns:
        One entry per call: `{output name: array}`, or the error text (str).
    """
    import numpy as np

    os.makedirs(workdir, exist_ok=True)
    jobs = []
    for i, (export_dir, signature, inputs) in enumerate(calls):
        inputs_path = os.path.join(workdir, f"in{i}.npz")
        np.savez(inputs_path, **inputs)
        jobs.append({"export_dir": os.path.abspath(export_dir), "signature": signature,
                     "inputs": inputs_path, "outputs": os.path.join(workdir, f"out{i}.npz")})
    jobs_path = os.path.join(workdir, "jobs.json")
    with open(jobs_path, "w") as f:
        json.dump(jobs, f)
    report = json.loads(run_jobs(jobs_path).strip().splitlines()[-1])
    if report["hidden_modules_loaded"]:
        raise AssertionError(f"The TF-only process loaded {report['hidden_modules_loaded']}")
    results = []
    for job in jobs:
        if os.path.exists(job["outputs"] + ".error"):
            with open(job["outputs"] + ".error") as f:
                results.append(f.read())
        else:
            with np.load(job["outputs"]) as data:
                results.append({k: data[k] for k in data.files})
    return results


def _main(jobs_path):
    sys.meta_path = [_HidePackages if f is importlib.machinery.PathFinder else f
                     for f in sys.meta_path]
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    import numpy as np
    import tensorflow as tf

    loaded_forbidden = sorted({m.split(".")[0] for m in sys.modules} & set(HIDDEN))
    if loaded_forbidden:
        raise SystemExit(f"TensorFlow pulled in {loaded_forbidden}")
    models = {}
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        if job["export_dir"] not in models:
            models[job["export_dir"]] = tf.saved_model.load(job["export_dir"])
        fn = models[job["export_dir"]].signatures[job["signature"]]
        with np.load(job["inputs"]) as data:
            inputs = {k: tf.constant(data[k]) for k in data.files}
        try:
            outputs = fn(**inputs)
        except Exception as error:  # the test reads the message
            with open(job["outputs"] + ".error", "w") as f:
                f.write(f"{type(error).__name__}: {error}")
            continue
        np.savez(job["outputs"], **{k: v.numpy() for k, v in outputs.items()})
    loaded_forbidden = sorted({m.split(".")[0] for m in sys.modules} & set(HIDDEN))
    print(json.dumps({"hidden_modules_loaded": loaded_forbidden}))


if __name__ == "__main__":
    _main(sys.argv[1])
