"""Multi-device training (`keras_afgan.training.distribute`): two devices, one device's step.

Each strategy belongs to one backend, so the two-device tests are
backend-specific by nature: the MirroredStrategy and MultiWorkerMirroredStrategy
tests run in the TensorFlow CI job, the DataParallel tests in the JAX job and
the DDP test in the torch job; the other jobs skip them with a reason naming
the job that runs them. The devices are simulated on the CPU: two logical CPU
devices (TF), two XLA host devices and two JAX processes joined by
jax.distributed, two gloo processes (torch), two TF workers on localhost.
The other tests run on every backend.

The step is a conditional GAN's on a global batch of 8 in minibatch-std
groups of 2: 4 samples per device, so the per-replica strategies must reorder
the batch to keep the single-device groups. The step runs lazy R1, a G-EMA
that moves (beta 0.57) and ADA augmentation with p moving every iteration;
every variable of G, D, G_ema and the pipe (p, the sign sums) must match.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_afgan.augment import NUM_DRAWS
from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import preset_kwargs
from keras_afgan.data import ImageDataset
from keras_afgan.layers import MinibatchStdDev
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training.distribute import check_strategy
from keras_afgan.training.distribute import make_distribution
from keras_afgan.training.distribute import mbstd_group
from keras_afgan.training.distribute import replica_order
from keras_afgan.training.gan import default_optimizers
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.testing import REPO_ROOT
from tests.testing import assert_close
from tests.testing import python_env
from tests.testing import run_python
from tests.testing import to_numpy

BATCH, GROUP, Z_DIM, SEED = 8, 2, 8, 5
ATOL = 1e-5
BACKEND = keras.config.backend()

# Grappler's graph optimisation takes half the time of tracing these one-step
# graphs and changes nothing a test checks.
TF_PRELUDE = """
import tensorflow as tf
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
"""
TF_TWO_CPUS = TF_PRELUDE + """
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def only_on(backend, what):
    return pytest.mark.skipif(
        BACKEND != backend, reason=f"{what} is a {backend} strategy: the {backend} CI job runs it")


def _images():
    rng = np.random.default_rng(0)
    return ImageDataset("test", rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8),
                        rng.integers(0, 2, 12), c_dim=2)


def _gan(precision="float32", **compile_kwargs):
    keras.utils.set_random_seed(3)
    G = Generator(z_dim=Z_DIM, c_dim=2, w_dim=8, img_resolution=16, channel_base=128,
                  channel_max=8, num_layers=2, num_critical=1, margin_size=2, mapping_layers=1,
                  seed=1, dtype=precision)
    D = Discriminator(c_dim=2, img_resolution=16, channel_base=128, channel_max=8,
                      mapping_layers=1, mbstd_group_size=GROUP, dtype=precision)
    # ADA moving p every iteration: the sign statistic must be the global
    # batch's (reduced over replicas) for p, and every later draw, to agree.
    pipe = AugmentPipe(**preset_kwargs("bgc"), p=0.5)
    gan = AliasFreeGAN(G, D, r1_interval=2, ema_kimg=0.01, ema_rampup=None, augment_pipe=pipe,
                       ada_target=0.6, ada_interval=1, ada_kimg=0.02)
    # The default Adams, with epsilon 1e-6 instead of 1e-8: the first step of a
    # weight whose gradient is ~1e-8 is lr * g / (|g| + eps), which turns the
    # gradients' float32 rounding (summed in another order on two devices) into
    # weight differences of up to ~0.3 lr, and the later phases compound them
    # (measured on torch DDP: 4e-4 after two iterations). The step is the same
    # computation; this keeps its rounding within the comparison's tolerance.
    g_optimizer, d_optimizer = default_optimizers(gan.r1_interval)
    g_optimizer.epsilon = d_optimizer.epsilon = 1e-6
    compile_kwargs = dict(dict(g_optimizer=g_optimizer, d_optimizer=d_optimizer),
                          **compile_kwargs)
    gan.compile(**compile_kwargs)
    return gan


def _state(gan):
    """Every variable of the GAN (G, D, G_ema, counters), by index and path in the model."""
    return {f"{i}:{v.path.split('/', 1)[-1]}": to_numpy(v) for i, v in enumerate(gan.variables)}


def run_steps(strategy, out_path, steps=1, batch_gpu=None, **compile_kwargs):
    """Build the test GAN under `strategy`, fit `steps` steps (micro-batches
    of `batch_gpu` per device), save its state to `out_path`."""
    distribution = make_distribution(strategy)
    with distribution.scope():
        gan = _gan(**compile_kwargs)
    distribution.broadcast_state(gan)
    gan.batch_gpu = distribution.step_batch_gpu(batch_gpu)
    dataset = distribution.dataset(_images(), BATCH, mbstd_group(gan.discriminator),
                                   z_dim=Z_DIM, seed=SEED,
                                   augment_draws=NUM_DRAWS, batch_gpu=batch_gpu)
    gan.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    np.savez(out_path, num_replicas=distribution.num_replicas, **_state(gan))


def overflow_step(out_path):
    """One mixed_float16 step on two mirrored replicas with loss scales so large
    that every gradient overflows; saves the logs and whether weights moved."""
    distribution = make_distribution("mirrored")
    with distribution.scope():
        gan = _gan("mixed_float16")
    before = [to_numpy(v) for v in gan.trainable_variables]
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        optimizer.dynamic_scale.assign(2.0**100)
    dataset = distribution.dataset(_images(), BATCH, mbstd_group(gan.discriminator),
                                   z_dim=Z_DIM, seed=SEED,
                                   augment_draws=NUM_DRAWS)
    history = gan.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    moved = max(np.abs(to_numpy(v) - b).max() for v, b in zip(gan.trainable_variables, before))
    np.savez(out_path, moved=moved, num_replicas=distribution.num_replicas,
             **{k: v[-1] for k, v in history.history.items()})


def train_and_save(out_path, **settings):
    """`train` a run, then save the state of its GAN to `out_path`."""
    np.savez(out_path, **_state(train(resolve_config(**settings))))


def _load(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_python(code, backend, env, log):
    """A worker process of a multi-process test (see `run_python`), stderr to `log`.

    A file, not a pipe: a worker blocked on a full pipe would stall the others
    at their next collective.
    """
    with open(log, "w") as stderr:
        return subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                env=python_env(backend, env))


def _wait(processes, logs, timeout=600):
    try:
        for p in processes:
            p.wait(timeout=timeout)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, log in zip(processes, logs):
        assert p.returncode == 0, open(log).read()[-4000:]


def _assert_same_step(actual, expected, steps, atol=ATOL, replicas=2):
    assert int(actual.pop("num_replicas")) == replicas
    assert int(expected.pop("num_replicas")) == 1
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert_close(actual[key], value, atol=atol, what=key)
    counters = {k.split(":")[1]: int(v) for k, v in expected.items()
                if k.endswith(("images_seen", "iteration"))}
    assert counters == {"images_seen": BATCH * steps, "iteration": steps}


@pytest.mark.slow
@only_on("tensorflow", "MirroredStrategy")
def test_mirrored_step_on_two_devices_is_the_one_device_step(tmp_path):
    ref, out = str(tmp_path / "one.npz"), str(tmp_path / "two.npz")
    # The one-device step runs eagerly: the same arithmetic, without 90 s of XLA compilation.
    run_python(TF_TWO_CPUS + "from tests.training.test_distribution import run_steps\n"
               f"run_steps('none', {ref!r}, run_eagerly=True)\n"
               f"run_steps('mirrored', {out!r})\n", "tensorflow")
    _assert_same_step(_load(out), _load(ref), steps=1)


def test_micro_batches_give_the_whole_batch_step(tmp_path):
    """`--batch=8 --batch-gpu=2`: each phase runs 4 micro-batches of 2 (one
    minibatch-std group each) and averages their gradients; after two
    iterations (Gmain, Dmain, lazy R1, ADA moving p, G-EMA) every variable
    equals that of the unaccumulated step."""
    whole, micro = str(tmp_path / "whole.npz"), str(tmp_path / "micro.npz")
    run_steps("none", whole, steps=2)
    run_steps("none", micro, steps=2, batch_gpu=2)
    _assert_same_step(_load(micro), _load(whole), steps=2, replicas=1)


@pytest.mark.slow
@only_on("tensorflow", "MirroredStrategy")
def test_mirrored_step_with_micro_batches_is_the_one_device_step(tmp_path):
    """Two replicas of 4 rows, each in micro-batches of 2, against one device, whole."""
    ref, out = str(tmp_path / "one.npz"), str(tmp_path / "two.npz")
    run_python(TF_TWO_CPUS + "from tests.training.test_distribution import run_steps\n"
               f"run_steps('none', {ref!r}, run_eagerly=True)\n"
               f"run_steps('mirrored', {out!r}, batch_gpu=2)\n", "tensorflow")
    _assert_same_step(_load(out), _load(ref), steps=1)


@pytest.mark.slow
@only_on("tensorflow", "MirroredStrategy")
def test_mirrored_float16_overflow_is_skipped_once_on_every_replica(tmp_path):
    """Each replica checks its own gradients; an overflow skips the step on all
    of them, and the skip counts once (not once per replica)."""
    out = str(tmp_path / "overflow.npz")
    run_python(TF_TWO_CPUS + "from tests.training.test_distribution import overflow_step\n"
               f"overflow_step({out!r})\n", "tensorflow")
    logs = _load(out)
    assert int(logs["num_replicas"]) == 2
    assert float(logs["moved"]) == 0.0
    # Iteration 0 runs Gmain (a G step), Dmain and Dreg (two D steps).
    assert float(logs["skipped_steps_G"]) == 1 and float(logs["skipped_steps_D"]) == 2
    assert float(logs["loss_scale_G"]) == 2.0**99 and float(logs["loss_scale_D"]) == 2.0**98


# XLA's backend optimisation would double the compilation time.
JAX_FAST_COMPILE = "--xla_backend_optimization_level=0"


@pytest.fixture(scope="module")
def data_parallel_run(tmp_path_factory):
    """One process with two host devices: 2 steps on one device, then on both."""
    tmp = tmp_path_factory.mktemp("data_parallel")
    ref, out = str(tmp / "one.npz"), str(tmp / "two.npz")
    run_python("from tests.training.test_distribution import run_steps\n"
               f"run_steps('none', {ref!r}, steps=2)\n"
               f"run_steps('data_parallel', {out!r}, steps=2)\n"
               f"run_steps('data_parallel', {str(tmp / 'micro.npz')!r}, steps=2, batch_gpu=2)\n",
               "jax",
               env={"XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {JAX_FAST_COMPILE}"})
    return tmp


@pytest.mark.slow
@only_on("jax", "DataParallel")
def test_data_parallel_step_on_two_devices_is_the_one_device_step(data_parallel_run):
    _assert_same_step(_load(data_parallel_run / "two.npz"), _load(data_parallel_run / "one.npz"),
                      steps=2)


@pytest.mark.slow
@only_on("jax", "DataParallel")
def test_data_parallel_step_with_micro_batches_is_the_one_device_step(data_parallel_run):
    """Two devices, micro-batches of 2 per device (4 rows of the global batch each)."""
    _assert_same_step(_load(data_parallel_run / "micro.npz"),
                      _load(data_parallel_run / "one.npz"), steps=2)


@pytest.mark.slow
@only_on("jax", "DataParallel")
def test_data_parallel_step_on_two_hosts_is_the_one_device_step(data_parallel_run, tmp_path):
    """Two processes on localhost (one device each) joined by jax.distributed."""
    (port,) = _free_ports(1)
    logs = [tmp_path / f"process{index}.log" for index in range(2)]
    processes = [_start_python(
        "from tests.training.test_distribution import run_steps\n"
        f"run_steps('data_parallel', {str(tmp_path / f'process{index}.npz')!r}, steps=2)\n",
        "jax", {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{port}",
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                "KERAS_DISTRIBUTION_PROCESS_ID": str(index), "XLA_FLAGS": JAX_FAST_COMPILE},
        logs[index])
        for index in range(2)]
    _wait(processes, logs)
    for index in range(2):
        _assert_same_step(_load(tmp_path / f"process{index}.npz"),
                          _load(data_parallel_run / "one.npz"), steps=2)


@pytest.mark.slow
@only_on("torch", "DistributedDataParallel")
@pytest.mark.parametrize("batch_gpu", [None, 2])
def test_ddp_step_on_two_processes_is_the_one_device_step(tmp_path, batch_gpu):
    """Each process's 4 rows whole, or in micro-batches of 2."""
    script = tmp_path / "ddp.py"
    out = str(tmp_path / "rank")
    script.write_text("import os\n"
                      "from tests.training.test_distribution import run_steps\n"
                      f"run_steps('ddp', {out!r} + os.environ['RANK'] + '.npz', steps=2, "
                      f"batch_gpu={batch_gpu})\n")
    run_python("import runpy, sys\n"
               f"sys.argv = ['torchrun', '--standalone', '--nproc_per_node=2', {str(script)!r}]\n"
               "runpy.run_module('torch.distributed.run', run_name='__main__')\n", "torch")
    run_steps("none", str(tmp_path / "one.npz"), steps=2)
    for rank in (0, 1):
        _assert_same_step(_load(tmp_path / f"rank{rank}.npz"), _load(tmp_path / "one.npz"),
                          steps=2)


@pytest.mark.slow
@only_on("tensorflow", "MultiWorkerMirroredStrategy")
def test_multiworker_trains_on_two_workers(tmp_path):
    """Two workers on localhost train 3 steps (R1 at the first) with `train`."""
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    outdir = tmp_path / "run"
    settings = dict(outdir=str(outdir), data=str(data), strategy="multiworker", resolution=16,
                    batch=4, mbstd_group=2, kimg=0.012, tick=0.012, snap=1, cbase=128, cmax=8,
                    num_layers=3, margin_size=2, map_depth=1, z_dim=8, w_dim=8, verbose=0)
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes, logs = [], [tmp_path / f"worker{index}.log" for index in range(2)]
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        code = (TF_PRELUDE + "from tests.training.test_distribution import train_and_save\n"
                f"train_and_save({str(tmp_path / f'worker{index}.npz')!r}, **{settings!r})\n")
        processes.append(_start_python(code, "tensorflow", {"TF_CONFIG": json.dumps(tf_config)},
                                       logs[index]))
    _wait(processes, logs)

    (stats,) = [json.loads(line) for line in open(outdir / "stats.jsonl")]  # the chief's only
    assert stats["kimg"] == pytest.approx(0.012)
    for key in ("loss_G", "loss_D", "r1_penalty"):
        assert np.isfinite(stats[key]), key
    assert {"checkpoint.keras", "generator.keras", "fakes-tick000001.png"} <= set(
        os.listdir(outdir))
    first, second = _load(tmp_path / "worker0.npz"), _load(tmp_path / "worker1.npz")
    for key, value in first.items():
        assert_close(second[key], value, what=key)
    assert {k.split(":")[1]: int(v) for k, v in first.items()
            if k.endswith(("images_seen", "iteration"))} == {"images_seen": 12, "iteration": 3}


def test_replica_shards_hold_the_one_device_minibatch_std_groups():
    """Each replica's MinibatchStdDev on its shard of the reordered batch gives the
    one-device layer's output on those samples."""
    x = np.random.default_rng(2).normal(size=(12, 3, 3, 4)) * np.arange(1, 13)[:, None, None,
                                                                                None]
    x = x.astype("float32")
    for replicas, group in ((2, 2), (3, 2), (2, 3), (2, 6), (6, 2), (1, 4)):
        layer = MinibatchStdDev(group_size=group)
        order = replica_order(12, replicas, group)
        assert sorted(order) == list(range(12))
        shards = np.split(x[order], replicas)
        actual = np.concatenate([to_numpy(layer(shard)) for shard in shards])
        assert_close(actual, to_numpy(layer(x))[order], atol=1e-5,
                     what=f"{replicas} replicas, groups of {group}")
    np.testing.assert_array_equal(replica_order(8, 2, 2), [0, 1, 4, 5, 2, 3, 6, 7])


def test_batch_must_split_into_whole_groups():
    with pytest.raises(ValueError, match=r"\(2 x 4 = 8\).*Received: batch=4 \(per replica: 2\)"):
        replica_order(4, 2, 4)
    with pytest.raises(ValueError, match=r"\(2 x 4 = 8\).*Received: batch=12"):
        replica_order(12, 2, 4)


def test_strategy_must_fit_the_backend(tmp_path):
    wrong = {"tensorflow": "ddp", "jax": "mirrored", "torch": "data_parallel"}[BACKEND]
    pattern = (rf"strategy that the {BACKEND} backend runs.*Received: strategy='{wrong}'.*"
               r"tensorflow: none, mirrored, multiworker; jax: none, data_parallel; "
               r"torch: none, ddp")
    with pytest.raises(ValueError, match=pattern):
        resolve_config(outdir=str(tmp_path), strategy=wrong)
    with pytest.raises(ValueError, match="Received: strategy='horovod'"):
        check_strategy("horovod")
    for backend, strategy in (("tensorflow", "multiworker"), ("jax", "data_parallel"),
                              ("torch", "ddp")):
        check_strategy(strategy, backend)
    assert resolve_config(outdir=str(tmp_path)).strategy == "none"


@only_on("torch", "DistributedDataParallel")
def test_ddp_needs_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="run under torchrun.*Received: no RANK"):
        make_distribution("ddp")
