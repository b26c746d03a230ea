"""afgan-bench: what it reports (not how fast: speed is measured by the benchmark, never by tests)."""

import json
import os
import statistics
import subprocess
import sys

import keras
import pytest

from keras_afgan.bench import BenchConfig
from keras_afgan.bench import run_benchmark
from tests.testing import REPO_ROOT

TINY = dict(res=16, cbase=256, cmax=16, zdim=8, wdim=8, batch=2, warmup=1, repeats=2)


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_benchmark_reports_images_per_second_from_its_timings(mode):
    # TensorFlow's XLA train step compiles for ~40 s; its graph step reports the same fields.
    jit = mode == "forward" or keras.config.backend() != "tensorflow"
    result = run_benchmark(BenchConfig(mode=mode, r1_interval=2, jit=jit, **TINY))
    assert result["backend"] == keras.config.backend() and result["mode"] == mode
    assert len(result["times"]) == 2 and all(t > 0 for t in result["times"])
    per_call = 2 * (2 if mode == "train" else 1)  # images per timed call
    assert result["img_per_s"] == pytest.approx(per_call / statistics.median(result["times"]))
    assert result["peak_mem_mb"] > 0
    assert keras.config.dtype_policy().name == "float32"  # restored


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="Expected mode in"):
        run_benchmark(BenchConfig(mode="backward", **TINY))
    with pytest.raises(ValueError, match="Expected precision in"):
        run_benchmark(BenchConfig(precision="float64", **TINY))


def test_cli_prints_a_table_and_appends_json(tmp_path):
    out = str(tmp_path / "bench.jsonl")
    env = dict(os.environ, KERAS_BACKEND=keras.config.backend(), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT)
    args = [f"--{k}={v}" for k, v in TINY.items()]
    result = subprocess.run([sys.executable, "-m", "keras_afgan.cli.bench", *args,
                             f"--json={out}"], capture_output=True, text=True, env=env,
                            cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "img/s" in result.stdout
    (line,) = open(out).read().splitlines()
    record = json.loads(line)
    assert {"backend", "mode", "batch", "img_per_s", "peak_mem_mb"} <= set(record)
    assert record["batch"] == 2 and record["mode"] == "forward"
