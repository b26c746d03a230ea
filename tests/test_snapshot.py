"""Reference snapshot pickles: loaded without their code, to the golden outputs.

The pickles are written by tests/snapshot_writer.py from the golden weights,
in the reference's format. Runs on every backend (torch decodes the tensors;
the models are built on the current backend).
"""

import os
import pickle
import sys

import numpy as np
import pytest

from keras_afgan.convert.snapshot import load_reference_pickle
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from tests.conftest import golden_case
from tests.snapshot_writer import write_case_snapshot
from tests.testing import assert_close
from tests.testing import other_backends
from tests.testing import run_python


def _images_close(G, case):
    img = G(case.arrays["in/z"], case.arrays["in/c"], truncation_psi=case.meta["truncation_psi"])
    # ~10x the largest error measured (1.1e-6, JAX).
    assert_close(img, case.nhwc("out/img"), atol=2e-5, what=f"{case.name} G(z, c)")


# What each golden case's pickle is written as (train.py's flags): config T
# with ADA's pipe, T with --fp32 and no augmentation, R conditional with
# ADA's pipe and Freeze-D.
SNAPSHOT_FLAGS = {"t16": dict(augment_p=0.25), "t32": dict(fp32=True),
                  "r32c": dict(augment_p=0.6, freezed=3)}


def test_snapshot_loads_to_the_golden_images_and_logits(case, tmp_path):
    """A pickle with exactly the constructor arguments train.py passes."""
    flags = SNAPSHOT_FLAGS.get(case.name, {})
    path = write_case_snapshot(str(tmp_path / "network-snapshot-000000.pkl"), case, **flags)
    models = load_reference_pickle(path)
    assert isinstance(models["G"], Generator) and isinstance(models["G_ema"], Generator)
    assert isinstance(models["D"], Discriminator)
    assert models["training_set_kwargs"]["resolution"] == case.meta["G_kwargs"]["img_resolution"]
    _images_close(models["G_ema"], case)
    # G holds the same golden weights here: compare them rather than run it again.
    for a, b in zip(models["G"].weights, models["G_ema"].weights):
        assert a.path.split("/", 1)[1] == b.path.split("/", 1)[1]
        assert_close(a, b, what=a.path)
    c = case.arrays["in/c"]
    D = models["D"]
    assert_close(D(case.nhwc("in/real"), c), case.arrays["out/d_real"], rtol=1e-5,
                 atol=1e-5, what="d_real")  # as tests/test_golden.py's logits
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules

    # train.py's settings, honoured: the reference's class defaults (4
    # reduced-precision resolutions, clamp 256) unless --fp32.
    fp32 = flags.get("fp32", False)
    for network in (models["G_ema"].synthesis, D):
        assert network.num_fp16_res == (0 if fp32 else 4)
        assert network.conv_clamp == (None if fp32 else 256)
    assert D.mbstd_group_size == case.meta["D_kwargs"]["epilogue_kwargs"]["mbstd_group_size"]
    freezed = flags.get("freezed", 0)
    assert D.freeze_layers == freezed
    frozen = [v.path.split("/", 1)[1] for v in D.non_trainable_variables]
    # Freeze-D counts fromRGB, conv0, conv1, skip of the first block, ...
    first = f"b{case.meta['D_kwargs']['img_resolution']}"
    expected = [f"{first}/{layer}/{kind}" for layer in ("fromrgb", "conv0", "conv1", "skip")
                for kind in ("kernel", "bias")][:2 * freezed]
    assert frozen == [e for e in expected if e != f"{first}/skip/bias"]
    if "augment_p" in flags:
        assert models["augment"]["p"] == pytest.approx(flags["augment_p"])
        assert models["augment"]["kwargs"] == dict(
            xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
            contrast=1, lumaflip=1, hue=1, saturation=1)
    else:
        assert "augment" not in models


@pytest.mark.parametrize("network, kwargs, message", [
    ("D", {"block_kwargs": {"freeze_layers": 0, "architecture": "skip"}},
     r"Unexpected block_kwargs: \['architecture'\]"),
    ("G", {"fused_modconv_default": "inference_only"},
     r"Unexpected generator arguments: \['fused_modconv_default'\]"),
    ("augment_pipe", {"bogus_std": 1.0}, r"Unexpected augment_pipe arguments: \['bogus_std'\]"),
])
def test_unknown_constructor_arguments_are_named(network, kwargs, message, tmp_path):
    path = write_case_snapshot(str(tmp_path / "s.pkl"), golden_case("t16"), augment_p=0.1,
                               init_kwargs={network: kwargs})
    with pytest.raises(ValueError, match=message):
        load_reference_pickle(path)


def test_pretrained_style_pickle_with_only_g_ema(tmp_path):
    case = golden_case("t16")
    path = write_case_snapshot(str(tmp_path / "published.pkl"), case, networks=("G_ema",))
    models = load_reference_pickle(path)
    assert sorted(models) == ["G_ema", "training_set_kwargs"]
    _images_close(models["G_ema"], case)


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func", [os.system, eval], ids=["os.system", "builtins.eval"])
def test_any_other_global_is_refused_and_nothing_runs(func, tmp_path):
    marker = tmp_path / "ran"
    arg = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    path = write_case_snapshot(str(tmp_path / "evil.pkl"), golden_case("t16"),
                          extra={"augment_pipe": _Evil(func, arg)})
    name = "posix.system" if func is os.system else "builtins.eval"
    with pytest.raises(pickle.UnpicklingError, match=rf"Refusing to load global {name}"):
        load_reference_pickle(path)
    assert not marker.exists()


def test_reading_imports_nothing_from_the_pickle_in_a_fresh_process(tmp_path):
    # module_src raises SystemExit if executed; torch_utils must never be imported.
    path = write_case_snapshot(str(tmp_path / "s.pkl"), golden_case("t16"))
    out = run_python(
        "import sys\n"
        "from keras_afgan.convert.snapshot import read_snapshot\n"
        f"data = read_snapshot({path!r})\n"
        "print(type(data['G']).__name__, 'torch_utils' in sys.modules, 'dnnlib' in sys.modules,"
        " data['G'].module_src.startswith('raise SystemExit'))\n",
        backend=__import__("keras").config.backend())
    assert out.split()[-4:] == ["PersistentObject", "False", "False", "True"]


def test_unknown_generator_structure_is_refused_clearly(tmp_path):
    case = golden_case("t16")
    path = write_case_snapshot(str(tmp_path / "g.pkl"), case, networks=("G",))
    with open(path, "rb") as f:
        raw = f.read()
    # Rename the synthesis input module: same byte length, so the pickle stays valid.
    raw = raw.replace(b"\x8c\x05input", b"\x8c\x05other")
    assert b"other" in raw
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(raw)
    with pytest.raises(ValueError, match="unknown generator.*StyleGAN2's"):
        load_reference_pickle(str(bad))


def test_not_a_snapshot(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="Expected a reference snapshot"):
        load_reference_pickle(str(path))
    path.write_bytes(pickle.dumps({"G": None, "other": 1}))
    with pytest.raises(ValueError, match="Expected networks G, D or G_ema"):
        load_reference_pickle(str(path))


def test_convert_cli_then_export_then_tensorflow_only_reproduces_golden(tmp_path):
    from tests.export.conftest import run_export_cli
    from tests.export.tf_only import run_signatures

    case = golden_case("t16")
    source = write_case_snapshot(str(tmp_path / "snapshot.pkl"), case)
    outdir = tmp_path / "models"
    other = other_backends()[0]
    # Convert on another backend than the one that exports (the .keras files
    # are backend-neutral), then export on this one.
    out = run_python(
        "from keras_afgan.cli.convert import convert\n"
        f"print(convert({source!r}, {str(outdir)!r}))\n", backend=other)
    assert "G_ema.keras" in out
    assert sorted(os.listdir(outdir)) == ["D.keras", "G.keras", "G_ema.keras",
                                          "training_set_kwargs.json"]
    export_dir = tmp_path / "served" / "afgan" / "1"
    run_export_cli(f"--network={outdir / 'G_ema.keras'}", f"--outdir={export_dir}")
    z = case.arrays["in/z"]
    psi = np.full((len(z),), case.meta["truncation_psi"], np.float32)
    (served,) = run_signatures(str(tmp_path / "run"), [
        (str(export_dir), "serving_default", {"z": z, "truncation_psi": psi})])
    assert_close(served["images_float"], case.nhwc("out/img"), atol=2e-5,
                 what="served golden")  # measured <= 1.2e-6


def test_convert_cli_refuses_to_overwrite(tmp_path):
    from keras_afgan.cli.convert import convert

    source = write_case_snapshot(str(tmp_path / "s.pkl"), golden_case("t16"), networks=("G_ema",))
    convert(source, str(tmp_path / "out"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert(source, str(tmp_path / "out"))
    assert convert(source, str(tmp_path / "out"), overwrite=True)
    with pytest.raises(FileNotFoundError, match="Expected --source"):
        convert(str(tmp_path / "missing.pkl"), str(tmp_path / "out"))
