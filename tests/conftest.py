"""Shared fixtures: the golden vectors of the reference implementation."""

import json
import os
import pathlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _share_compilations():
    """Persistent XLA caches for this test run, its xdist workers and subprocesses.

    Many tests compile the same programs (the tiny GAN's train step in every
    training subprocess, the golden generators in several files); JAX and
    TensorFlow then load them instead of compiling again. Caching never
    changes a result: an entry is keyed by the whole program and the
    compiler's options. Set before JAX or TensorFlow is imported.
    KERAS_AFGAN_TEST_XLA_CACHE=0 turns it off; a path chooses the directory.
    """
    setting = os.environ.get("KERAS_AFGAN_TEST_XLA_CACHE", "")
    if setting == "0":
        return
    root = pathlib.Path(setting or pathlib.Path(__file__).resolve().parents[1] / ".cache" / "xla")
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(root / "jax"))
    # Every entry: eager JAX compiles each primitive for each shape (~50 ms),
    # and every worker and subprocess would compile the same ones again.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    tf_flag = f"--tf_xla_persistent_cache_directory={root / 'tensorflow'}"
    if "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
        os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {tf_flag}".strip()


_share_compilations()


def _share_cores_between_workers():
    """Under pytest-xdist, give each torch worker its share of the cores.

    torch sizes its OpenMP pool to every core in each worker, so two workers
    on two cores oversubscribe them: measured on 2 cores, a subset of golden
    and ops tests took 65 s with torch's default pool and 30 s with one
    thread per worker. TensorFlow gained little (77 s to 72 s) and JAX lost
    (79 s to 164 s with XLA's CPU threads capped), so only the torch job is
    capped. Subprocesses the tests start inherit the cap. Set before torch is
    imported; an explicit OMP_NUM_THREADS wins.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers < 2 or os.environ.get("KERAS_BACKEND") != "torch":
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = max(1, cores // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(share))


_share_cores_between_workers()

# The XLA flags the tools use (keras_afgan.cpu_tuning): tests run the code as
# users' training does, and JAX's convolutions ~3x faster. Before JAX starts,
# and after the thread settings above: importing keras_afgan imports the
# backend (torch reads OMP_NUM_THREADS when imported).
os.environ.setdefault("KERAS_AFGAN_CPU_TUNING", "1")
if os.environ["KERAS_AFGAN_CPU_TUNING"] != "0":
    from keras_afgan.cpu_tuning import use_xla_cpu_flags

    use_xla_cpu_flags()

GOLDEN_DIR = pathlib.Path(
    os.environ.get("KERAS_AFGAN_GOLDEN", pathlib.Path(__file__).resolve().parents[2] / "shared" / "golden")
)


def _discover_cases():
    # Every StyleGAN3 CASE.json beside a CASE.npz is a case, so added cases are
    # tested too (the folder also holds StyleGAN2 generator cases and the ADA
    # augmentation vectors, which have their own tests).
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*.json")):
        if not (GOLDEN_DIR / f"{path.stem}.npz").exists():
            continue
        meta = json.loads(path.read_text())
        if isinstance(meta, dict) and str(meta.get("cfg", "")).startswith("stylegan3"):
            cases.append(path.stem)
    return tuple(cases) or ("t16", "t32", "r32c")


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


@pytest.fixture(scope="module")
def builtin_data_dir(tmp_path_factory):
    """`KERAS_AFGAN_DATA_DIR` for a module's training runs (subprocesses too):
    the built-in dataset is prepared once per test worker, in its temp dir."""
    old = os.environ.get("KERAS_AFGAN_DATA_DIR")
    os.environ["KERAS_AFGAN_DATA_DIR"] = str(tmp_path_factory.getbasetemp() / "tfds")
    yield os.environ["KERAS_AFGAN_DATA_DIR"]
    if old is None:
        del os.environ["KERAS_AFGAN_DATA_DIR"]
    else:
        os.environ["KERAS_AFGAN_DATA_DIR"] = old


@pytest.fixture(scope="session")
def inception_file():
    """A randomly initialised InceptionV3 (no top) saved as a weights file.

    Stands in for the ImageNet weights (not downloadable here): FID/KID tests
    need the same weights on every backend, not good ones. The batch-norm
    statistics are set from one batch of noise images (momentum 0, training
    mode): with the initial ones (0 and 1) the features hardly depend on the input.

    Made once for the whole test run (every worker and backend job) under
    `.cache/test-inception/`, whichever backend gets there first: building it
    took about a minute per worker on JAX (an eager 299 px InceptionV3 pass).
    The tests compare backends on one file, never with values of their own.
    """
    import fcntl

    import keras

    folder = pathlib.Path(__file__).resolve().parents[1] / ".cache" / "test-inception"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"inception_random-keras{keras.__version__}.weights.h5"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one writer; the others wait, then read
        if not path.exists():
            keras.utils.set_random_seed(0)
            model = keras.applications.InceptionV3(include_top=False, weights=None,
                                                   pooling="avg", input_shape=(299, 299, 3))
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = 0.0
            noise = np.random.default_rng(0).uniform(-1, 1, (8, 299, 299, 3)).astype("float32")
            model(noise, training=True)
            partial = folder / f"partial-{os.getpid()}.weights.h5"
            model.save_weights(str(partial))
            os.replace(partial, path)
    return str(path)


@pytest.fixture(scope="session")
def vgg16_file():
    """A randomly initialised VGG16 (with top) saved as a weights file (528 MB),
    standing in for the ImageNet weights as `inception_file` does; made once
    under `.cache/test-vgg16/`."""
    import fcntl

    import keras

    folder = pathlib.Path(__file__).resolve().parents[1] / ".cache" / "test-vgg16"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vgg16_random-keras{keras.__version__}.weights.h5"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            keras.utils.set_random_seed(0)
            model = keras.applications.VGG16(include_top=True, weights=None)
            partial = folder / f"partial-{os.getpid()}.weights.h5"
            model.save_weights(str(partial))
            os.replace(partial, path)
    return str(path)
