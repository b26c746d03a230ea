"""afgan-study: configuration parsing, the summary files, and a two-configuration
study that is interrupted and resumed (every backend)."""

import json
import os

import numpy as np
import pytest

from keras_afgan.study import StudyConfig
from keras_afgan.study import markdown_table
from keras_afgan.study import parse_configs
from keras_afgan.study import run_study
from keras_afgan.study import training_speed


def test_parse_configs():
    configs = parse_configs("stylegan2, stylegan3-t:noise_inputs=1:filter_window=lanczos,"
                            "stylegan3-r:stopband_start=4.5")
    assert configs == [
        StudyConfig("stylegan2", "stylegan2", ()),
        StudyConfig("stylegan3-t:noise_inputs=1:filter_window=lanczos", "stylegan3-t",
                    (("noise_inputs", True), ("filter_window", "lanczos"))),
        StudyConfig("stylegan3-r:stopband_start=4.5", "stylegan3-r", (("stopband_start", 4.5),)),
    ]
    assert configs[1].slug == "stylegan3-t__noise_inputs=1__filter_window=lanczos"
    for bad, message in (("stylegan4", "Expected a configuration from"),
                         ("stylegan3-t:noise=1", "Expected settings like"),
                         ("stylegan3-t:noise_inputs=maybe", "Expected noise_inputs=0 or 1"),
                         ("stylegan3-t:margin_size=x", "Expected margin_size to be a int"),
                         ("stylegan2,stylegan2", "distinct"), ("", "one or more")):
        with pytest.raises(ValueError, match=message):
            parse_configs(bad)


def test_training_speed_skips_the_compiling_tick(tmp_path):
    with open(tmp_path / "stats.jsonl", "w") as f:
        for speed in (1.0, 10.0, 12.0, 11.0):
            f.write(json.dumps({"img_per_sec": speed}) + "\n")
    assert training_speed(str(tmp_path)) == 11.0


def test_markdown_table():
    results = [{"label": "stylegan2", "metrics": {}, "img_per_sec": 3.0},
               {"label": "stylegan3-t", "metrics": {"eqt50k_int": 50.126, "eqt50k_frac": 49.5,
                                                    "eqr50k": 20.0}, "img_per_sec": 1.25}]
    assert markdown_table(results).splitlines() == [
        "| configuration | eqt50k_int | eqt50k_frac | eqr50k | train img/s |",
        "|---|---|---|---|---|",
        "| stylegan2 | n/a | n/a | n/a | 3.00 |",
        "| stylegan3-t | 50.13 | 49.50 | 20.00 | 1.25 |",
    ]


def test_study_runs_and_resumes(tmp_path, builtin_data_dir, monkeypatch):
    """Two configurations: StyleGAN3-T with fixed Fourier features trains for
    one tick; config A's run is stood in for by its untrained networks (the
    study only reads the run's generator and stats, and config A's EQ
    metrics do not apply). A second run of the study finds the first
    configuration done and redoes only the one whose result is missing."""
    import keras_afgan.study as study
    from keras_afgan.training.run import build_networks

    real_train = study.train

    def train(config):
        if config.cfg != "stylegan2":
            return real_train(config)
        G, _ = build_networks(config, c_dim=0, resolution=config.resolution)
        os.makedirs(config.outdir, exist_ok=True)
        G.save(os.path.join(config.outdir, "generator.keras"))
        with open(os.path.join(config.outdir, "stats.jsonl"), "w") as f:
            f.write(json.dumps({"img_per_sec": 5.0}) + "\n")

    monkeypatch.setattr(study, "train", train)
    outdir = str(tmp_path / "study")
    settings = dict(preset="tiny", resolution=16, kimg=0.008, tick=0.008, cbase=512, cmax=8)
    configs = parse_configs("stylegan2,stylegan3-t:fixed_fourier=1")
    results = run_study(outdir, configs, settings, metrics_num=2, verbose=False)
    assert [r["label"] for r in results] == ["stylegan2", "stylegan3-t:fixed_fourier=1"]
    assert results[0]["metrics"] == {} and results[0]["img_per_sec"] == 5.0
    assert set(results[1]["metrics"]) == {"eqt50k_int", "eqt50k_frac", "eqr50k"}
    assert all(np.isfinite(v) for v in results[1]["metrics"].values())
    assert results[1]["img_per_sec"] > 0 and results[1]["overrides"] == {"fixed_fourier": True}
    for name in ("study.json", "study.md", "study.png"):
        assert os.path.getsize(os.path.join(outdir, name)) > 0
    with open(os.path.join(outdir, "study.json")) as f:
        assert json.load(f) == results

    # Interrupted before the second configuration's metrics: only it runs again.
    os.remove(os.path.join(outdir, configs[1].slug, "result.json"))
    trained = []
    monkeypatch.setattr(study, "train", lambda config: trained.append(config.outdir))
    again = run_study(outdir, configs, settings, metrics_num=2, verbose=False)
    assert trained == [os.path.join(outdir, configs[1].slug)]
    assert again[0] == results[0]
    assert again[1]["metrics"] == pytest.approx(results[1]["metrics"])
