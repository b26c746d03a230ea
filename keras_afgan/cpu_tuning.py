"""Process settings that make training on CPUs fast (measured in BUILD_NOTES.md, "Speed").

Both act on the whole process and must come early, so the library never
applies them by itself: the command-line tools do (`cli.common.prepare_process`),
and a Python program calls `tune_process()` first thing, before it imports
JAX or builds a network:

    import keras_afgan.cpu_tuning
    keras_afgan.cpu_tuning.tune_process()

- `use_xla_cpu_flags()`: `--xla_cpu_experimental_ynn_fusion_type=` (no
  "YNN" fusions) in `XLA_FLAGS`, unless `XLA_FLAGS` already names it, for
  XLA's CPU compiler (JAX; TensorFlow's `jit_compile`): with them a 3x3
  128-to-128 convolution ran at 63 GFLOP/s, without them 189 (2026-12-05,
  AVX-512); NaN still propagates through clamps (checked on both).
  `--xla_cpu_use_fusion_emitters=false` is not used: TensorFlow's XLA
  with it clamps NaN to the bound (a NaN request served as -64 gray instead
  of NaN; a TF process started from a JAX one inherits `XLA_FLAGS`), and
  since the resampling's own gradients it no longer speeds JAX's step
  (BUILD_NOTES.md). XLA reads the variable when it
  creates its CPU client: before the first JAX computation.
- `reuse_freed_memory()`: glibc returns every freed block over 32 MiB to the
  system and maps the next one afresh, so each large activation of a torch
  train step (130 MB at 64 px) is paged in again: an elementwise op on one
  took 260 ms instead of 10. Asks glibc (`mallopt`) to serve all blocks
  from its heap and keep freed memory for reuse: the 64 px torch train step
  went from 17 s to 7.4 s; the process's peak memory grew ~20 % (it never
  shrinks). Torch only by default: TensorFlow's and JAX's steps did not
  change.
"""

import ctypes
import ctypes.util
import os

XLA_CPU_OPTIONS = (("--xla_cpu_experimental_ynn_fusion_type", ""),)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def use_xla_cpu_flags():
    """Add `XLA_CPU_OPTIONS` that `XLA_FLAGS` does not name; True if any was added."""
    flags = os.environ.get("XLA_FLAGS", "")
    added = [f"{name}={value}" for name, value in XLA_CPU_OPTIONS if name not in flags]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([flags] + added).strip()
    return bool(added)


def reuse_freed_memory():
    """Keep freed memory in glibc's heap for reuse (Linux/glibc only); True if set."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # No block from mmap (each would be returned at free), no trimming of the heap's top.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def tune_process(backend=None):
    """Both settings as the tools use them: XLA flags always, the heap for torch.

    `backend`: the Keras backend (default: `KERAS_BACKEND`, else "tensorflow",
    Keras's default; read without importing Keras). `KERAS_AFGAN_CPU_TUNING=0`
    turns both off. Returns the names of the settings applied.
    """
    if os.environ.get("KERAS_AFGAN_CPU_TUNING", "1") == "0":
        return []
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    applied = []
    if use_xla_cpu_flags():
        applied.append("xla_cpu_flags")
    if backend == "torch" and reuse_freed_memory():
        applied.append("reuse_freed_memory")
    return applied
