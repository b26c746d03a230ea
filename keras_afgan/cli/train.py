"""afgan-train: train an alias-free GAN with `Model.fit` on the current backend.

    KERAS_BACKEND=jax afgan-train --outdir=runs/tiny --preset=tiny --data=builtin
    afgan-train --outdir=runs/ffhq --cfg=stylegan3-t --data=/data/ffhq-256.zip \
        --batch=32 --gamma=2 --mirror
    KERAS_BACKEND=torch torchrun --nproc_per_node=2 -m keras_afgan.cli.train \
        --strategy=ddp --outdir=runs/ffhq ...

    # Fine-tune a pretrained model (a reference .pkl, a training checkpoint
    # or an afgan-convert directory) on a small dataset:
    afgan-train --outdir=runs/mine --resume=stylegan3-t-ffhqu-256x256.pkl \
        --data=~/mine.zip --mirror --freezed=4 --gamma=2 --kimg=200

Flags follow the reference's train.py. A run restarted with the same
--outdir continues from its last checkpoint (flags left out keep the run's
settings).
"""

from absl import flags

from keras_afgan.cli.common import prepare_process
from keras_afgan.cli.common import run_tool

_FLAGS = flags.FLAGS
flags.DEFINE_string("outdir", None, "Where to write the run.", required=True)
flags.DEFINE_string("cfg", None, "Base configuration: a preset of keras_afgan.models.PRESETS "
                    "(stylegan3-t, stylegan3-r, stylegan2).")
flags.DEFINE_string("data", None,
                    "builtin[:faces|:textures], tfds:NAME[:SPLIT], an image folder or a zip.")
flags.DEFINE_integer("resolution", None, "Training resolution (default: the data's).")
flags.DEFINE_integer("batch", None, "Total batch size.")
flags.DEFINE_float("gamma", None, "R1 regularisation weight.")
flags.DEFINE_float("kimg", None, "Total training duration in thousands of images.")
flags.DEFINE_float("tick", None, "Thousands of images per tick (one Keras epoch).")
flags.DEFINE_integer("snap", None, "Ticks between image grids and generator snapshots.")
flags.DEFINE_boolean("mirror", None, "Add x-flipped copies of the dataset.")
flags.DEFINE_boolean("cond", None, "Train a conditional model on the dataset's labels.")
flags.DEFINE_float("glr", None, "G learning rate (default 0.0025; stylegan2: 0.002).")
flags.DEFINE_float("dlr", None, "D learning rate (default 0.002).")
flags.DEFINE_integer("cbase", None, "Capacity multiplier (channel base).")
flags.DEFINE_integer("cmax", None, "Max. feature maps.")
flags.DEFINE_integer("map-depth", None, "Mapping network depth (default 2; stylegan2: 8).")
flags.DEFINE_enum("filter-window", None, ["kaiser", "lanczos", "gaussian"],
                  "Window of the StyleGAN3 up/down filters (default kaiser, the paper's; the "
                  "others are the paper's filter ablation).")
flags.DEFINE_boolean("critical-sampling", None, "Ablation: sample every StyleGAN3 layer "
                     "critically (f_c = s/2; the paper's configs before G).")
flags.DEFINE_boolean("noise-inputs", None, "Ablation: per-pixel noise inputs in the StyleGAN3 "
                     "layers, as StyleGAN2 has (the paper's configs before C).")
flags.DEFINE_boolean("fixed-fourier", None, "Ablation: Fourier features not transformed by w "
                     "(the paper's configs before H).")
flags.DEFINE_float("stopband-start", None, "First layer's stopband f_t,0 (default 2**2.1).")
flags.DEFINE_integer("margin-size", None, "StyleGAN3 layer margin in pixels (default 10).")
flags.DEFINE_float("mixing", None, "Style mixing probability (default 0; stylegan2: 0.9).")
flags.DEFINE_float("pl-weight", None, "Path-length regularisation weight, lazy every 4 "
                   "iterations (default 0; stylegan2: 2).")
flags.DEFINE_integer("mbstd-group", None, "Minibatch std group size.")
flags.DEFINE_integer("seed", None, "Random seed.")
flags.DEFINE_string("resume", None,
                    "Fine-tune these pretrained networks: a reference snapshot .pkl, a training "
                    "checkpoint .keras or an afgan-convert directory. Their architecture is "
                    "kept; kimg, ticks and schedules start at 0.")
flags.DEFINE_integer("freezed", None, "Freeze-D: the first N discriminator layers are not "
                     "trained (default 0).")
flags.DEFINE_integer("conv-clamp", None, "Clamp of conv activations (default 256; 0: none).")
flags.DEFINE_integer("fp16-res", None, "Under mixed precision, the number of highest "
                     "resolutions that compute in reduced precision (default 4).")
flags.DEFINE_string("preset", None, "Run preset: 'tiny' (CPU-sized, 32 px).")
flags.DEFINE_string("metrics", None,
                    "Metrics at each snapshot, e.g. eqt50k_int,eqr50k,fid50k_full (afgan-metrics).")
flags.DEFINE_integer("metrics-num", None, "Samples per snapshot metric (default 50000; tiny: 200).")
flags.DEFINE_string("inception", None,
                    "InceptionV3 (no top) weights for FID/KID (default $KERAS_AFGAN_INCEPTION).")
flags.DEFINE_integer("batch-gpu", None,
                     "Micro-batch per device: gradients of --batch are accumulated over "
                     "micro-batches of this size (less memory, same step). Default: no "
                     "accumulation.")
flags.DEFINE_string("vgg16", None,
                    "VGG16 (with top) weights for precision/recall (default $KERAS_AFGAN_VGG16).")
flags.DEFINE_enum("strategy", None, ["none", "mirrored", "multiworker", "data_parallel", "ddp"],
                  "Multi-device training (--batch is the global batch): none (one device); "
                  "tensorflow: mirrored (MirroredStrategy, local GPUs) or multiworker "
                  "(MultiWorkerMirroredStrategy, one command per worker with its TF_CONFIG); "
                  "jax: data_parallel (keras.distribution.DataParallel over all devices, hosts "
                  "joined by KERAS_DISTRIBUTION_* variables); torch: ddp (one process per "
                  "device under torchrun).")
flags.DEFINE_enum("aug", None, ["ada", "noaug", "fixed"],
                  "Augmentation of every image D sees: ada (default; p adjusted so that "
                  "E[sign(D(real))] approaches --target), noaug, or fixed (p = --p).")
flags.DEFINE_float("target", None, "ADA's target for E[sign(D(real))] (default 0.6).")
flags.DEFINE_float("p", None, "Augmentation probability for --aug=fixed (default 0.2).")
flags.DEFINE_enum("augpipe", None, ["blit", "geom", "color", "filter", "noise", "cutout", "bg",
                                    "bgc", "bgcf", "bgcfn", "bgcfnc"],
                  "Augmentations (the ADA paper's sets): b(lit) g(eometric) c(olour) "
                  "f(ilter) n(oise) c(utout); default bgc, the reference's.")
flags.DEFINE_float("ada-kimg", None, "ADA's speed: thousands of images for p to move by 1 "
                   "(default 500; 100 when fine-tuning).")
flags.DEFINE_enum("precision", None, ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Compute dtype of G and D (weights, EMAs and losses stay float32); "
                  "mixed_float16 scales each network's loss dynamically and skips overflowing "
                  "steps.")


def main(argv):
    del argv
    prepare_process()
    from keras_afgan.metrics import parse_metrics
    from keras_afgan.metrics import snapshot_metrics
    from keras_afgan.training.run import resolve_config
    from keras_afgan.training.run import train

    config = resolve_config(
        outdir=_FLAGS.outdir, cfg=_FLAGS.cfg, data=_FLAGS.data, resolution=_FLAGS.resolution,
        batch=_FLAGS.batch, gamma=_FLAGS.gamma, kimg=_FLAGS.kimg, tick=_FLAGS.tick,
        snap=_FLAGS.snap, mirror=_FLAGS.mirror, cond=_FLAGS.cond, glr=_FLAGS.glr,
        dlr=_FLAGS.dlr, cbase=_FLAGS.cbase, cmax=_FLAGS.cmax, map_depth=_FLAGS["map-depth"].value,
        mbstd_group=_FLAGS["mbstd-group"].value, seed=_FLAGS.seed, resume=_FLAGS.resume,
        freezed=_FLAGS.freezed, conv_clamp=_FLAGS["conv-clamp"].value,
        fp16_res=_FLAGS["fp16-res"].value,
        preset=_FLAGS.preset, metrics=_FLAGS.metrics,
        metrics_num=_FLAGS["metrics-num"].value, inception=_FLAGS.inception,
        vgg16=_FLAGS.vgg16, batch_gpu=_FLAGS["batch-gpu"].value,
        strategy=_FLAGS.strategy, precision=_FLAGS.precision, aug=_FLAGS.aug,
        target=_FLAGS.target, p=_FLAGS.p, augpipe=_FLAGS.augpipe,
        ada_kimg=_FLAGS["ada-kimg"].value, mixing_prob=_FLAGS.mixing,
        pl_weight=_FLAGS["pl-weight"].value, filter_window=_FLAGS["filter-window"].value,
        critical_sampling=_FLAGS["critical-sampling"].value,
        noise_inputs=_FLAGS["noise-inputs"].value, fixed_fourier=_FLAGS["fixed-fourier"].value,
        stopband_start=_FLAGS["stopband-start"].value, margin_size=_FLAGS["margin-size"].value,
    )
    parse_metrics(config.metrics)  # before anything is loaded or written
    train(config, snapshot_metrics=snapshot_metrics)


def run():
    run_tool(main)


if __name__ == "__main__":
    run()
