"""afgan-metrics end to end: equivariance values equal the library's; FID/KID/PR with data."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_afgan.metrics import sampled_equivariance
from keras_afgan.metrics.registry import parse_metrics
from tests.conftest import golden_case
from tests.testing import REPO_ROOT


def _run(*args):
    env = dict(os.environ, KERAS_BACKEND=keras.config.backend(), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "keras_afgan.cli.metrics", *args],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    G = golden_case("t16").generator()
    path = str(tmp_path_factory.mktemp("net") / "G.keras")
    G.save(path)
    return G, path


def test_equivariance_metrics_print_and_append_json(network, tmp_path):
    G, path = network
    out = str(tmp_path / "metrics.jsonl")
    result = _run(f"--network={path}", "--metrics=eqt50k_int,eqr50k", "--num=4", "--seed=1",
                  f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()
               if line.startswith("eq")}
    (record,) = [json.loads(line) for line in open(out)]
    assert record["results"] == pytest.approx(printed, abs=1e-4)
    assert record["num"] == 4
    for name in ("eqt50k_int", "eqr50k"):
        assert printed[name] == pytest.approx(
            sampled_equivariance(G, name, num=4, seed=1), abs=1e-3)


def test_fid_kid_pr_from_a_folder_of_reals(network, inception_file, vgg16_file, tmp_path):
    _, path = network
    reals = tmp_path / "reals"
    reals.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(reals / f"{i}.png")
    out = str(tmp_path / "m.jsonl")
    result = _run(f"--network={path}", "--metrics=fid50k_full,kid50k_full,pr50k3_full",
                  f"--data={reals}", f"--inception={inception_file}", f"--vgg16={vgg16_file}",
                  "--num=6", "--batch=3", f"--out={out}", f"--cache-dir={tmp_path / 'cache'}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(open(out).read())["results"]
    assert set(results) == {"fid50k_full", "kid50k_full", "pr50k3_full_precision",
                            "pr50k3_full_recall"}
    assert results["fid50k_full"] > 0 and np.isfinite(results["kid50k_full"])
    assert 0 <= results["pr50k3_full_precision"] <= 1


def test_bad_requests_fail_clearly(network):
    _, path = network
    result = _run(f"--network={path}", "--metrics=fid50k_full", "--num=2")
    assert result.returncode != 0 and "Expected --data for ['fid50k_full']" in result.stderr
    # The other refusals are library errors the CLI passes through (one process is enough).
    with pytest.raises(ValueError, match=r"Expected metrics from .*Received: \['eqt_int'\]"):
        parse_metrics("eqt50k_int,eqt_int")
    assert parse_metrics("none") == [] and parse_metrics(" eqr50k ") == ["eqr50k"]
