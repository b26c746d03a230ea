"""`.keras` files a user names: clear errors for bad files, and `import keras_afgan`
alone reads every kind keras_afgan writes (in a fresh process, every backend)."""

import keras
import pytest

from keras_afgan.augment import AugmentPipe
from keras_afgan.cli.common import load_generator
from keras_afgan.models import Discriminator
from keras_afgan.models import Generator
from keras_afgan.models.saving import load_keras_file
from keras_afgan.training import AliasFreeGAN
from keras_afgan.training.pretrained import load_pretrained
from keras_afgan.training.run import resolve_config
from keras_afgan.training.run import train
from tests.testing import run_python


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A compiled (never trained) GAN with ADA, saved as training saves its checkpoint."""
    G = Generator(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=4,
                  num_layers=3, margin_size=2)
    D = Discriminator(img_resolution=16, channel_base=64, channel_max=4, mbstd_group_size=2)
    gan = AliasFreeGAN(G, D, augment_pipe=AugmentPipe(xflip=1), ada_target=0.6)
    gan.compile()
    path = tmp_path_factory.mktemp("saving") / "checkpoint.keras"
    gan.save(path)
    return path


@pytest.fixture
def bad_files(checkpoint, tmp_path):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(checkpoint.read_bytes()[:2000])
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    return {"truncated": truncated, "not a zip": text}


def test_corrupt_keras_files_are_named_clearly(bad_files, tmp_path):
    for kind, path in bad_files.items():
        expected = rf"Expected {{what}} to be a \.keras file \(a zip archive\)\. Received: " \
                   rf"'{path}', which is not one: truncated, corrupt or another kind of file"
        with pytest.raises(ValueError, match=expected.format(what="--network")):
            load_generator(str(path))
        with pytest.raises(ValueError, match=expected.format(what="--resume")):
            load_pretrained(str(path))
        # A run whose own checkpoint is damaged.
        outdir = tmp_path / kind.replace(" ", "_")
        outdir.mkdir()
        (outdir / "checkpoint.keras").write_bytes(path.read_bytes())
        with pytest.raises(ValueError, match=expected.format(what="the run's checkpoint")
                           .replace(f"'{path}'", ".*checkpoint.keras'")):
            train(resolve_config(outdir=str(outdir), preset="tiny", resolution=16, batch=4,
                                 mbstd_group=2, verbose=0))
    with pytest.raises(ValueError, match=r"Expected --network to name a \.keras file\. "
                                         r"Received: '.*missing\.keras' \(no such file\)"):
        load_keras_file(tmp_path / "missing.keras", "--network")


def test_import_keras_afgan_alone_reads_a_checkpoint(checkpoint):
    out = run_python("import keras\n"
                     "import keras_afgan\n"
                     f"print(type(keras.saving.load_model({str(checkpoint)!r})).__name__)\n",
                     keras.config.backend())
    assert out.split()[-1] == "AliasFreeGAN"
