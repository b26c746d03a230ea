"""`AliasFreeGAN`: the StyleGAN3 training recipe as a `keras.Model`.

One `fit` step is one iteration of the reference's training loop (DESIGN.md
section 4): Gmain, Dmain and, every `r1_interval` iterations, the lazy R1
phase Dreg, each its own optimizer step on the same minibatch of reals; then
the G-EMA update. The step is written once in keras.ops; the few
backend-specific pieces (gradients, the double backward of R1, the lazy
phase's conditional) live in `keras_afgan.training.steps`.
"""

import re

import keras
from keras import ops

from keras_afgan.models.generator import Generator
from keras_afgan.ops.blur import blur_images
from keras_afgan.training import losses
from keras_afgan.training.steps import backend_module


def default_optimizers(r1_interval=16, g_lr=0.0025, d_lr=0.002):
    """Adam (betas 0, 0.99; eps 1e-8) for G and for D.

    D takes `r1_interval + 1` steps per `r1_interval` iterations, so its
    learning rate is scaled by `r1_interval / (r1_interval + 1)` and its betas
    raised to that power, as in the reference.
    """
    ratio = r1_interval / (r1_interval + 1) if r1_interval else 1.0
    g_opt = keras.optimizers.Adam(g_lr, beta_1=0.0, beta_2=0.99, epsilon=1e-8, name="adam_g")
    d_opt = keras.optimizers.Adam(d_lr * ratio, beta_1=0.0, beta_2=0.99**ratio, epsilon=1e-8,
                                  name="adam_d")
    return g_opt, d_opt


@keras.saving.register_keras_serializable(package="keras_afgan")
class AliasFreeGAN(keras.Model):
    """Trains a `Generator` against a `Discriminator` with `fit`.

    `fit` takes batches of real images `[N, R, R, C]` in [-1, 1] (NHWC), or
    `(images, labels)` with one-hot labels `[N, c_dim]` for conditional
    models. Fake images use the batch's labels.

    Args:
        generator: the `Generator` to train.
        discriminator: the `Discriminator`.
        r1_gamma: R1 regularisation weight gamma.
        r1_interval: lazy regularisation interval (Dreg every that many
            iterations, loss multiplied by it); 0 disables R1.
        ema_kimg: half-life of the G-EMA in thousands of images (the reference
            uses `batch * 10 / 32`).
        ema_rampup: the EMA half-life is at most `images_seen * ema_rampup`
            (`None` for no ramp-up).
        blur_init_sigma: initial sigma of the blur on every image D sees
            (10 for config R, 0 for T).
        blur_fade_kimg: thousands of images over which sigma falls linearly
            to 0 (the reference: `batch * 200 / 32`).
        seed: seed of the latent sampling.
    """

    def __init__(self, generator, discriminator, r1_gamma=2.0, r1_interval=16, ema_kimg=10.0,
                 ema_rampup=0.05, blur_init_sigma=0.0, blur_fade_kimg=200.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if generator.c_dim != discriminator.c_dim:
            raise ValueError(
                f"Expected the generator and discriminator to take the same labels. Received: "
                f"generator c_dim={generator.c_dim}, discriminator c_dim={discriminator.c_dim}")
        if generator.img_resolution != discriminator.img_resolution:
            raise ValueError(
                "Expected the generator and discriminator to have the same resolution. "
                f"Received: {generator.img_resolution} and {discriminator.img_resolution}")
        self.generator = generator
        self.discriminator = discriminator
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = int(r1_interval)
        self.ema_kimg = float(ema_kimg)
        self.ema_rampup = ema_rampup
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.seed = seed
        self.generator_ema = Generator.from_config(
            dict(generator.get_config(), name=f"{generator.name}_ema"))
        self.generator_ema.trainable = False
        for target, source in zip(self.generator_ema.variables, generator.variables):
            target.assign(ops.copy(source.value))  # own buffers: JAX donates the state
        self.seed_generator = keras.random.SeedGenerator(seed, name="latents")
        self.images_seen = self.add_weight(name="images_seen", shape=(), dtype="int32",
                                           initializer="zeros", trainable=False)
        self.iteration = self.add_weight(name="iteration", shape=(), dtype="int32",
                                         initializer="zeros", trainable=False)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in (
            "loss_G", "loss_D", "loss_D_real", "loss_D_gen", "r1_penalty", "D_real", "D_fake",
            "blur_sigma")}
        self.built = True  # every sublayer is built; fit must not trace call() on a batch

    # ------------------------------------------------------------------ setup

    def compile(self, g_optimizer=None, d_optimizer=None, optimizer=None, **kwargs):
        """Compile with one Adam per network in a `MultiOptimizer`.

        Args:
            g_optimizer, d_optimizer: optimizers for G and D (default:
                `default_optimizers(r1_interval)`).
            optimizer: a ready `MultiOptimizer` (used when a saved model is
                restored); overrides the two above.
            **kwargs: passed to `keras.Model.compile` (`jit_compile` defaults
                to True except on torch, which runs eager: compiled torch
                cannot do R1's double backward).
        """
        if optimizer is None:
            default_g, default_d = default_optimizers(self.r1_interval)
            optimizer = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(
                d_optimizer or default_d,
                {f"{re.escape(self.generator.name)}/.*": g_optimizer or default_g}))
        elif not isinstance(optimizer, keras.optimizers.MultiOptimizer):
            raise ValueError(
                "Expected g_optimizer and d_optimizer, or a MultiOptimizer as optimizer. "
                f"Received: optimizer={optimizer!r}")
        kwargs.setdefault("jit_compile", keras.backend.backend() != "torch")
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            # Each Adam by itself: inside a MultiOptimizer's config, torch's Adam
            # keeps its backend-specific class, which other backends cannot load;
            # keras.optimizers.deserialize finds built-in optimizers by name.
            config.pop("optimizer", None)
            config["g_optimizer"] = keras.optimizers.serialize(self.g_optimizer)
            config["d_optimizer"] = keras.optimizers.serialize(self.d_optimizer)
        return config

    def compile_from_config(self, config):
        # Keras skips a custom compile() on load unless this is overridden; the
        # optimizer state is restored only into a compiled (built) optimizer.
        config = dict(config)
        # Whether the step compiles depends on the backend that loads the model
        # (torch cannot compile R1's double backward), not on the one that saved it.
        config.pop("jit_compile", None)
        optimizers = {name: keras.optimizers.deserialize(config.pop(name))
                      for name in ("g_optimizer", "d_optimizer") if name in config}
        self.compile(**optimizers, **keras.saving.deserialize_keras_object(config))

    @property
    def g_optimizer(self):
        return self.optimizer._optimizer_map(self.generator.trainable_variables[0])

    @property
    def d_optimizer(self):
        return self.optimizer._optimizer_map(self.discriminator.trainable_variables[0])

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        """Images from the G-EMA generator (the one to evaluate and export)."""
        return self.generator_ema(z, c, truncation_psi=truncation_psi,
                                  truncation_cutoff=truncation_cutoff)

    # ------------------------------------------------------------- schedules

    def blur_sigma(self, images_seen):
        """D-input blur sigma: falls linearly from `blur_init_sigma` to 0."""
        if self.blur_init_sigma <= 0 or self.blur_fade_kimg <= 0:
            return None
        progress = ops.cast(images_seen, "float32") / (self.blur_fade_kimg * 1000)
        return ops.maximum(1 - progress, 0.0) * self.blur_init_sigma

    def ema_beta(self, images_seen, batch_size):
        """`0.5 ** (batch / ema_nimg)`, `ema_nimg` ramped up with the images seen."""
        ema_nimg = ops.convert_to_tensor(self.ema_kimg * 1000, "float32")
        if self.ema_rampup is not None:
            ema_nimg = ops.minimum(ema_nimg, ops.cast(images_seen, "float32") * self.ema_rampup)
        return ops.power(0.5, batch_size / ops.maximum(ema_nimg, 1e-8))

    # ---------------------------------------------------------------- phases

    def run_discriminator(self, images, c, blur_sigma=None):
        if blur_sigma is not None:
            images = blur_images(images, blur_sigma, max_sigma=self.blur_init_sigma)
        return self.discriminator(images, c)

    def _state(self):
        variables = list(self.variables)
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            variables += list(optimizer.variables)
        return variables + list(self.metrics_variables)

    def phase_gmain(self, z, c, blur_sigma=None):
        """Gmain: loss, fake logits and gradients w.r.t. G (not applied)."""
        steps = backend_module()

        def fn():
            logits = self.run_discriminator(self.generator(z, c), c, blur_sigma)
            return losses.generator_loss(logits), logits

        return steps.value_and_grad(fn, self.generator.trainable_variables, self._state())

    def phase_dmain(self, z, real, c, blur_sigma=None):
        """Dmain: G runs with statistics updates (w_avg, magnitude EMAs) first."""
        steps = backend_module()
        with steps.no_grad():
            fake = ops.stop_gradient(self.generator(z, c, update_emas=True))

        def fn():
            fake_logits = self.run_discriminator(fake, c, blur_sigma)
            real_logits = self.run_discriminator(real, c, blur_sigma)
            total, loss_gen, loss_real = losses.discriminator_loss(fake_logits, real_logits)
            return total, (loss_gen, loss_real, fake_logits, real_logits)

        return steps.value_and_grad(fn, self.discriminator.trainable_variables, self._state())

    def phase_dreg(self, real, c, blur_sigma=None):
        """Dreg: `r1_interval * mean(gamma / 2 * r1_penalty)`; aux is the penalty."""
        steps = backend_module()
        gain = self.r1_interval or 1

        def fn():
            grads = steps.input_gradient(
                lambda x: ops.sum(self.run_discriminator(x, c, blur_sigma)), real)
            penalty = losses.r1_penalty(grads)
            return ops.mean(penalty) * (self.r1_gamma / 2) * gain, penalty

        return steps.value_and_grad(fn, self.discriminator.trainable_variables, self._state())

    # ----------------------------------------------------------- train step

    def _unpack(self, data):
        """`images`, `(images, labels)` or a dict with `images`, `labels`, `latents`.

        `latents` `[N, 2, z_dim]` are the z of Gmain and Dmain; without them z is
        drawn with the model's seed generator. keras_afgan's data pipeline adds
        them (seeded by the step), so runs repeat exactly on every backend and
        after a resume.
        """
        latents = None
        if (isinstance(data, (tuple, list)) and data and isinstance(data[0], dict)
                and all(x is None for x in data[1:])):
            data = data[0]  # train_on_batch(dict) packs it as (x, None, None)
        if isinstance(data, dict):
            unknown = set(data) - {"images", "labels", "latents"}
            if unknown or "images" not in data:
                raise ValueError(
                    "Expected batches with keys 'images' and optionally 'labels', 'latents'. "
                    f"Received keys: {sorted(data)}")
            real, c, latents = data["images"], data.get("labels"), data.get("latents")
        elif isinstance(data, (tuple, list)):
            real = data[0]
            c = data[1] if len(data) > 1 else None
        else:
            real, c = data, None
        r, ch = self.generator.img_resolution, self.generator.img_channels
        if tuple(real.shape[1:]) != (r, r, ch):
            raise ValueError(
                f"Expected batches of images of shape [N, {r}, {r}, {ch}]. "
                f"Received: shape={tuple(real.shape)}")
        if self.generator.c_dim == 0:
            c = None
        elif c is None:
            raise ValueError(
                f"This GAN is conditional (c_dim={self.generator.c_dim}): expected batches with "
                "labels. Received: images only")
        return ops.cast(real, "float32"), c, latents

    def train_step(self, *args):
        return backend_module().train_step(self, args[0] if len(args) == 1 else args)

    def iteration_step(self, data):
        """One training iteration: Gmain, Dmain, lazy Dreg, G-EMA update."""
        steps = backend_module()
        real, c, latents = self._unpack(data)
        batch = int(real.shape[0])
        z_shape = (batch, self.generator.z_dim)
        images_seen = ops.convert_to_tensor(self.images_seen)
        sigma = self.blur_sigma(images_seen)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        z = self._latents(latents, 0, z_shape)
        loss_g, fake_logits, grads = self.phase_gmain(z, c, sigma)
        self.g_optimizer.apply(losses.sanitize_gradients(grads), g_vars)

        z = self._latents(latents, 1, z_shape)
        loss_d, (loss_gen, loss_real, _, real_logits), grads = self.phase_dmain(z, real, c, sigma)
        self.d_optimizer.apply(losses.sanitize_gradients(grads), d_vars)

        if self.r1_interval > 0:
            def dreg():
                _, penalty, grads = self.phase_dreg(real, c, sigma)
                self.d_optimizer.apply(losses.sanitize_gradients(grads), d_vars)
                penalty = ops.mean(penalty)
                self.trackers["r1_penalty"].update_state(penalty)
                return penalty

            steps.cond(ops.equal(self.iteration % self.r1_interval, 0), dreg, self._state())

        self.update_generator_ema(images_seen, batch)
        self.images_seen.assign(self.images_seen + batch)
        self.iteration.assign(self.iteration + 1)

        t = self.trackers
        t["loss_G"].update_state(loss_g)
        t["loss_D"].update_state(loss_d)
        t["loss_D_gen"].update_state(loss_gen)
        t["loss_D_real"].update_state(loss_real)
        t["D_fake"].update_state(ops.mean(ops.cast(fake_logits, "float32")))
        t["D_real"].update_state(ops.mean(ops.cast(real_logits, "float32")))
        t["blur_sigma"].update_state(0.0 if sigma is None else sigma)
        return {name: tracker.result() for name, tracker in t.items()}

    def _latents(self, latents, phase, shape):
        if latents is None:
            return keras.random.normal(shape, seed=self.seed_generator)
        return ops.cast(latents[:, phase], "float32")

    def update_generator_ema(self, images_seen, batch_size):
        """`p_ema = lerp(p, p_ema, beta)` for parameters; buffers are copied."""
        beta = self.ema_beta(images_seen, batch_size)
        trainable = {id(v) for v in self.generator.trainable_variables}
        for ema, source in zip(self.generator_ema.variables, self.generator.variables):
            value = ops.convert_to_tensor(source)
            if id(source) in trainable:
                value = value + (ops.convert_to_tensor(ema) - value) * ops.cast(beta, value.dtype)
            ema.assign(value)

    # ---------------------------------------------------------- serialization

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "r1_gamma": self.r1_gamma,
            "r1_interval": self.r1_interval,
            "ema_kimg": self.ema_kimg,
            "ema_rampup": self.ema_rampup,
            "blur_init_sigma": self.blur_init_sigma,
            "blur_fade_kimg": self.blur_fade_kimg,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
