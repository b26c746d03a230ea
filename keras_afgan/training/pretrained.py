"""Pretrained networks to fine-tune from (`afgan-train --resume=PATH`).

Three kinds of PATH hold them: a reference snapshot pickle (`.pkl`, read
without its code by `keras_afgan.convert.load_reference_pickle`), a
keras_afgan training checkpoint (`.keras`, e.g. another run's
`checkpoint.keras`) and an `afgan-convert` output directory (`G_ema.keras`,
`G.keras`, `D.keras`, `augment.json`).

A run started from them is transfer learning with the reference's
semantics: new networks are built with the pretrained architecture and the
new run's training settings, every weight (and statistic) whose name and
shape match is copied, and counters, optimizers and schedules start afresh.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from keras_afgan.convert.reference import reference_variables
from keras_afgan.models.discriminator import Discriminator
from keras_afgan.models.generator import Generator
from keras_afgan.models.presets import GENERATOR_CLASSES
from keras_afgan.models.saving import load_keras_file

KINDS = "a reference snapshot .pkl, a training checkpoint .keras or an afgan-convert directory"


@dataclasses.dataclass
class Pretrained:
    """Networks to start from, and where they came from.

    `G` and `G_ema` are both set (a source holding only one gives it for
    both); `augment` is the reference's augmentation settings and
    probability (`{"kwargs", "p"}`) when the source has them.
    """

    path: str
    kind: str
    G: Generator
    G_ema: Generator
    D: Discriminator
    augment: dict = None


def load_pretrained(path):
    """The networks at `path` (see the module docstring) as a `Pretrained`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return _from_converted(path)
    if not os.path.isfile(path):
        raise ValueError(f"Expected --resume to name {KINDS}. Received: {path!r} (not found)")
    if path.endswith(".keras"):
        return _from_checkpoint(path)
    if path.endswith(".pkl"):
        from keras_afgan.convert.snapshot import load_reference_pickle

        models = load_reference_pickle(path)
        return _complete(path, "reference snapshot", models.get("G"), models.get("G_ema"),
                         models.get("D"), models.get("augment"))
    raise ValueError(f"Expected --resume to name {KINDS}. Received: {path!r}")


def _from_checkpoint(path):
    from keras_afgan.training.gan import AliasFreeGAN

    model = load_keras_file(path, "--resume")
    if not isinstance(model, AliasFreeGAN):
        raise ValueError(
            f"Expected {path} to be a training checkpoint (AliasFreeGAN) with a discriminator to "
            f"fine-tune. Received: {type(model).__name__}")
    return _complete(path, "training checkpoint", model.generator, model.generator_ema,
                     model.discriminator, None)


def _from_converted(path):
    models = {}
    for key in ("G", "G_ema", "D"):
        file = os.path.join(path, f"{key}.keras")
        if os.path.exists(file):
            models[key] = load_keras_file(file, "--resume")
    augment = None
    if os.path.exists(os.path.join(path, "augment.json")):
        with open(os.path.join(path, "augment.json")) as f:
            augment = json.load(f)
    if not models:
        raise ValueError(
            f"Expected {path} to hold afgan-convert's G_ema.keras, G.keras and D.keras. "
            f"Received: {sorted(os.listdir(path))}")
    return _complete(path, "afgan-convert directory", models.get("G"), models.get("G_ema"),
                     models.get("D"), augment)


GENERATORS = tuple(GENERATOR_CLASSES.values())


def _complete(path, kind, G, G_ema, D, augment):
    if G is None and G_ema is None:
        raise ValueError(f"Expected a generator (G or G_ema) in {path}. Received: none")
    if D is None:
        raise ValueError(
            f"Expected a discriminator (D) in {path} to fine-tune against. Received: only "
            "generators (a generator alone serves afgan-generate and afgan-export)")
    for name, model, kinds in (("G", G, GENERATORS), ("G_ema", G_ema, GENERATORS),
                               ("D", D, (Discriminator,))):
        if model is not None and not isinstance(model, kinds):
            raise ValueError(f"Expected {name} in {path} to be a "
                             f"{' or '.join(k.__name__ for k in kinds)}. "
                             f"Received: {type(model).__name__}")
    if G is not None and G_ema is not None and type(G) is not type(G_ema):
        raise ValueError(f"Expected G and G_ema in {path} to be of one class. Received: "
                         f"{type(G).__name__} and {type(G_ema).__name__}")
    G, G_ema = (G if G is not None else G_ema), (G_ema if G_ema is not None else G)
    return Pretrained(path, kind, G, G_ema, D, augment)


def copy_weights(target, source, fresh=()):
    """Copy every weight of `source` into `target` whose reference name and shape match.

    Args:
        target, source: two `Generator`s or two `Discriminator`s.
        fresh: name prefixes to leave as initialised even where they match
            (the label embeddings when the labels change).

    Returns:
        The reference names of the `target` weights left as initialised.
    """
    sources, targets = reference_variables(source), reference_variables(target)
    named = {id(v) for v in targets.values()}
    unnamed = [v.path for v in target.variables if id(v) not in named]
    if unnamed:  # every weight must be copied or reported
        raise ValueError(f"Weights without a reference name: {unnamed}")
    initialised = []
    for name, variable in targets.items():
        value = sources.get(name)
        if (name.startswith(tuple(fresh)) or value is None
                or tuple(value.shape) != tuple(variable.shape)):
            initialised.append(name)
            continue
        variable.assign(np.asarray(keras.ops.convert_to_numpy(value.value), np.float32))
    return initialised
