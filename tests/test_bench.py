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
    result = run_benchmark(BenchConfig(mode=mode, r1_interval=2, **TINY))
    assert result["backend"] == keras.config.backend() and result["mode"] == mode
    # train: what afgan-train compiles (XLA on JAX; a graph on TF CPUs; eager torch)
    expected_jit = keras.config.backend() == "jax" or (
        mode == "forward" and keras.config.backend() == "tensorflow")
    assert result["jit"] == expected_jit
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


def test_roofline_is_a_positive_rate_measured_in_process():
    result = run_benchmark(BenchConfig(mode="forward", roofline=True, **TINY))
    assert result["roofline_gflops"] > 0.1
    assert run_benchmark(BenchConfig(mode="forward", **TINY))["roofline_gflops"] is None


def _fake_reference_checkout(root):
    """A stand-in with the reference's module layout and the calls the driver makes
    (its real networks are not shipped; the driver's plumbing is what is tested)."""
    for package in ("training", "torch_utils", "torch_utils/ops"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "torch_utils/ops/filtered_lrelu.py").write_text("")
    (root / "training/networks_stylegan3.py").write_text(
        "import torch\n"
        "class Generator(torch.nn.Module):\n"
        "    def __init__(self, z_dim, img_resolution, **kwargs):\n"
        "        super().__init__()\n"
        "        self.z_dim, self.res = z_dim, img_resolution\n"
        "        self.fc = torch.nn.Linear(z_dim, 3 * img_resolution ** 2)\n"
        "    def forward(self, z, c, **kwargs):\n"
        "        return self.fc(z).reshape(-1, 3, self.res, self.res)\n")
    (root / "training/networks_stylegan2.py").write_text(
        "import torch\n"
        "class Discriminator(torch.nn.Module):\n"
        "    def __init__(self, img_resolution, **kwargs):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(3 * img_resolution ** 2, 1)\n"
        "    def forward(self, img, c):\n"
        "        return self.fc(img.flatten(1))\n")
    (root / "training/loss.py").write_text(
        "import torch\n"
        "CALLS = []\n"
        "class StyleGAN2Loss:\n"
        "    def __init__(self, device, G, D, r1_gamma, **kwargs):\n"
        "        self.G, self.D = G, D\n"
        "    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain,\n"
        "                             cur_nimg):\n"
        "        CALLS.append(phase)\n"
        "        logits = self.D(self.G(gen_z, gen_c), gen_c)\n"
        "        (torch.nn.functional.softplus(-logits).mean() * gain).backward()\n")


def test_reference_driver_runs_the_loops_phases(tmp_path):
    # The driver imports only torch: run it in a subprocess on a stand-in checkout.
    _fake_reference_checkout(tmp_path / "ref")
    out = tmp_path / "ref.jsonl"
    script = os.path.join(REPO_ROOT, "keras_afgan", "reference_bench.py")
    check = ("import runpy, sys, json; sys.argv = sys.argv[1:]; "
             "g = runpy.run_path(sys.argv[0], run_name='bench'); r = g['main']();"
             "import training.loss as l; print(json.dumps(l.CALLS))")
    result = subprocess.run(
        [sys.executable, "-c", check, script, f"--src={tmp_path / 'ref'}", "--mode=train",
         "--res=8", "--batch=2", "--zdim=4", "--r1_interval=2", "--warmup=0", "--repeats=1",
         f"--json={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # One R1 cycle of 2 iterations: Gmain, Dmain, Dreg, then Gmain, Dmain (lazy R1).
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "Gmain", "Dmain", "Dreg", "Gmain", "Dmain"]
    record = json.loads(out.read_text())
    assert record["backend"] == "reference" and record["img_per_s"] > 0
    assert record["sec_per_iteration"] == pytest.approx(record["times"][0] / 2)


def test_reference_driver_can_run_with_our_process_settings(tmp_path):
    # --reuse_freed_memory loads cpu_tuning by its path (the process must not
    # import Keras): a freed 256 MiB block then stays resident.
    _fake_reference_checkout(tmp_path / "ref")
    script = os.path.join(REPO_ROOT, "keras_afgan", "reference_bench.py")
    check = ("import runpy, sys, json; sys.argv = sys.argv[1:]; "
             "g = runpy.run_path(sys.argv[0], run_name='bench'); r = g['main']();"
             "import numpy as np\n"
             "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
             "before = rss(); a = np.ones(2**26, np.float32); del a\n"
             "print(json.dumps([r['backend'], rss() - before, 'keras' in sys.modules]))")
    grown = {}
    for flag in ("", "--reuse_freed_memory"):
        result = subprocess.run(
            [sys.executable, "-c", check, script, f"--src={tmp_path / 'ref'}", "--res=8",
             "--batch=2", "--zdim=4", "--warmup=0", "--repeats=1"] + ([flag] if flag else []),
            capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        backend, grown[flag], imported_keras = json.loads(result.stdout.strip().splitlines()[-1])
        assert backend == ("reference-tuned" if flag else "reference")
        assert not imported_keras
    assert grown[""] < 64 and grown["--reuse_freed_memory"] > 192, grown


def test_reference_driver_refuses_a_folder_that_is_no_checkout(tmp_path):
    script = os.path.join(REPO_ROOT, "keras_afgan", "reference_bench.py")
    result = subprocess.run([sys.executable, script, f"--src={tmp_path}"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "is not a checkout of the reference" in result.stderr
    assert "training/networks_stylegan3.py is missing" in result.stderr


def test_compare_reference_prints_ratios_to_the_reference(tmp_path):
    # The whole side-by-side run, on the stand-in checkout and this backend only.
    _fake_reference_checkout(tmp_path / "ref")
    out = str(tmp_path / "side.jsonl")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT)
    args = [f"--{k}={v}" for k, v in TINY.items() if k not in ("warmup", "repeats")]
    result = subprocess.run(
        [sys.executable, "-m", "keras_afgan.cli.bench", *args, "--warmup=0", "--repeats=1",
         "--train_warmup=0", "--train_repeats=1", "--r1_interval=1",
         f"--compare-reference={tmp_path / 'ref'}", f"--backends={keras.config.backend()}",
         f"--json={out}"], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in open(out).read().splitlines()]
    backend = keras.config.backend()
    assert [(r["mode"], r["backend"]) for r in rows] == [
        (mode, name) for mode in ("forward", "train")
        for name in ("reference", "reference-tuned", backend)]
    assert all(r["roofline_gflops"] > 0 for r in rows)
    table = result.stdout[result.stdout.index("x ref"):].splitlines()
    for r in rows:
        refs = [next(x for x in rows if x["mode"] == r["mode"] and x["backend"] == name)
                for name in ("reference", "reference-tuned")]
        line = next(line for line in table if line.split()[:2] == [r["mode"], r["backend"]])
        ratios = [f"{r['img_per_s'] / ref['img_per_s']:.2f}" for ref in refs]
        assert line.split()[3:5] == ratios, (line, ratios)


def test_compare_reference_refuses_a_folder_that_is_no_checkout(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, "-m", "keras_afgan.cli.bench",
                             f"--compare-reference={tmp_path}"], capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode != 0
    assert "Expected --compare-reference to be a checkout of NVlabs/stylegan3" in result.stderr


def test_cpu_tuning_adds_the_xla_flags_once_and_keeps_the_users():
    from keras_afgan import cpu_tuning

    env = dict(os.environ)
    try:
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        assert cpu_tuning.use_xla_cpu_flags()
        assert os.environ["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=2 "
                                           "--xla_cpu_experimental_ynn_fusion_type=")
        assert not cpu_tuning.use_xla_cpu_flags()  # already there: unchanged
        os.environ["XLA_FLAGS"] = "--xla_cpu_experimental_ynn_fusion_type=dot"
        assert not cpu_tuning.use_xla_cpu_flags()  # the user's value stays
        assert os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=dot"
        del os.environ["XLA_FLAGS"]
        os.environ["KERAS_AFGAN_CPU_TUNING"] = "0"
        assert cpu_tuning.tune_process("torch") == []
        assert "XLA_FLAGS" not in os.environ
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_reuse_freed_memory_keeps_a_freed_block_resident():
    # In a fresh process: without the setting glibc unmaps a freed 256 MiB
    # block (resident memory falls back); with it the block stays for reuse.
    code = ("import sys, numpy as np\n"
            "from keras_afgan.cpu_tuning import reuse_freed_memory\n"
            "if sys.argv[1] == '1': assert reuse_freed_memory()\n"
            "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
            "before = rss(); a = np.ones(2**26, np.float32); del a\n"
            "print(rss() - before)\n")
    grown = {}
    for setting in ("0", "1"):
        result = subprocess.run([sys.executable, "-c", code, setting], capture_output=True,
                                text=True, env=dict(os.environ, PYTHONPATH=REPO_ROOT),
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        grown[setting] = float(result.stdout.strip().splitlines()[-1])
    assert grown["0"] < 64 and grown["1"] > 192, grown
