"""afgan-export: checkpoints, TF Serving layout checks, refusing to overwrite, bad input."""

import os

import keras
import pytest

from keras_afgan.export.saved_model import check_version_dir
from tests.export.conftest import run_export_cli
from tests.export.test_saved_model import _assert_images
from tests.export.test_saved_model import _keras_images
from tests.export.test_saved_model import _latents
from tests.export.tf_only import run_signatures


def test_checkpoint_exports_its_generator_ema_and_overwrite_replaces(trained, tmp_path):
    outdir = tmp_path / "afgan" / "7"
    outdir.mkdir(parents=True)
    (outdir / "old-file").write_text("from an earlier export")
    refused = run_export_cli(f"--network={trained.checkpoint_path}", f"--outdir={outdir}",
                             check=False)
    assert refused.returncode != 0
    assert "exists and is not empty" in refused.stderr and "--overwrite" in refused.stderr
    assert os.listdir(outdir) == ["old-file"]

    run_export_cli(f"--network={trained.checkpoint_path}", f"--outdir={outdir}", "--overwrite")
    assert "old-file" not in os.listdir(outdir)
    z, c, psi = _latents(trained.G, 3, seed=5)
    (served,) = run_signatures(str(tmp_path / "run"), [
        (str(outdir), "serving_default", {"z": z, "c": c, "truncation_psi": psi})])
    _assert_images(served, _keras_images(trained.G, z, c, psi), "checkpoint G_ema")
    assert sorted(os.listdir(outdir.parent)) == ["7"]


def test_outdir_must_be_a_version_directory(trained, tmp_path):
    for outdir in ("exported/afgan", "exported/afgan/v1", "exported/afgan/1.5",
                   "exported/afgan/\u00b2"):  # str.isdigit() takes a superscript two
        with pytest.raises(ValueError, match=r"\(--outdir\) to end in an integer version"):
            check_version_dir(str(tmp_path / outdir))
    assert check_version_dir("exported/afgan/12/") == "exported/afgan/12/"
    # Through the command, before anything is loaded or written.
    result = run_export_cli(f"--network={trained.generator_path}",
                            f"--outdir={tmp_path / 'exported/afgan'}", check=False)
    assert result.returncode != 0
    assert "to end in an integer version directory" in result.stderr
    assert not (tmp_path / "exported").exists()


def test_network_must_exist_and_be_a_generator(tmp_path):
    from keras_afgan.models import Discriminator

    missing = run_export_cli(f"--network={tmp_path}/nope.keras", f"--outdir={tmp_path}/m/1",
                             check=False)
    assert missing.returncode != 0
    assert "Expected --network to name a .keras file" in missing.stderr and "nope.keras" in missing.stderr
    path = str(tmp_path / "D.keras")
    Discriminator(img_resolution=16, channel_base=256, channel_max=16).save(path)
    wrong = run_export_cli(f"--network={path}", f"--outdir={tmp_path}/m/1", check=False)
    assert wrong.returncode != 0
    assert "Expected a keras_afgan Generator or training checkpoint" in wrong.stderr
    assert "Discriminator" in wrong.stderr
    assert not (tmp_path / "m").exists()


def test_library_export_refuses_a_non_generator_and_a_file_path(tmp_path):
    from keras_afgan.export import export_saved_model
    from keras_afgan.models import Discriminator
    from keras_afgan.models import Generator

    with pytest.raises(TypeError, match="Expected a keras_afgan Generator or StyleGAN2Generator. "
                                        "Received: Discriminator"):
        export_saved_model(Discriminator(img_resolution=16, channel_base=256, channel_max=16),
                           str(tmp_path / "x"))
    (tmp_path / "file").write_text("")
    G = Generator(z_dim=4, w_dim=4, img_resolution=16, channel_base=64, channel_max=4)
    with pytest.raises(ValueError, match="Expected the export path to be a directory"):
        export_saved_model(G, str(tmp_path / "file"))


@pytest.mark.skipif(keras.config.backend() != "jax",
                    reason="JAX-specific by nature: jax2tf's serialized platforms")
def test_jax_export_serializes_for_cpu_and_cuda(trained_export):
    from tensorflow.core.protobuf import saved_model_pb2

    export_dir, _ = trained_export
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    platforms = {tuple(p.decode() for p in node.attr["platforms"].list.s)
                 for function in proto.meta_graphs[0].graph_def.library.function
                 for node in function.node_def if node.op == "XlaCallModule"}
    assert platforms == {("CPU", "CUDA")}
