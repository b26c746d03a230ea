"""`AliasFreeGAN`: the StyleGAN3 training recipe as a `keras.Model`.

One `fit` step is one iteration of the reference's training loop (docs/design.md
section 4): Gmain, Dmain and, every `r1_interval` iterations, the lazy R1
phase Dreg, each its own optimizer step on the same minibatch of reals; then
the G-EMA update; with an augmentation pipe, every image D sees is augmented
and, under ADA, its probability moves every `ada_interval` iterations. The
step is written once in keras.ops; the few
backend-specific pieces (gradients, the double backward of R1, the lazy
phase's conditional) live in `keras_afgan.training.steps`.

Mixed precision is the networks' dtype policy (`Generator(dtype=...)`,
`Discriminator(dtype=...)`, the same for both). Under `mixed_float16` each
network's Adam is wrapped in a `keras.optimizers.LossScaleOptimizer`: each
phase scales its loss by its optimizer's dynamic scale before differentiating,
and a step whose gradients overflow is skipped (counted in `skipped_steps_G`,
`skipped_steps_D`) while the scale halves. bfloat16 has float32's range and
needs no scaling.
"""

import re

import keras
from keras import ops

from keras_afgan.augment.pipe import NUM_DRAWS
from keras_afgan.layers.statistics import cross_replica_mean
from keras_afgan.ops.blur import blur_images
from keras_afgan.training import losses
from keras_afgan.training.optimizers import Adam
from keras_afgan.training.steps import backend_module


def mix_styles(ws, other, cutoff):
    """`ws` with the entries from index `cutoff` on (along axis 1) taken from `other`."""
    take = ops.arange(ws.shape[1]) >= ops.cast(cutoff, "int32")
    return ops.where(take[None, :, None], other, ws)


def default_optimizers(r1_interval=16, g_lr=0.0025, d_lr=0.002, g_reg_interval=0):
    """Adam (betas 0, 0.99; eps 1e-8, in torch's form) for G and for D.

    D takes `r1_interval + 1` steps per `r1_interval` iterations, so its
    learning rate is scaled by `r1_interval / (r1_interval + 1)` and its betas
    raised to that power, as in the reference; so is G's by
    `g_reg_interval / (g_reg_interval + 1)` when it has a lazy
    path-length phase (`g_reg_interval > 0`). The optimizer is
    `keras_afgan.training.optimizers.Adam`: epsilon is added to the
    bias-corrected `sqrt(v_hat)` as `torch.optim.Adam` does.
    """
    ratio = r1_interval / (r1_interval + 1) if r1_interval else 1.0
    g_ratio = g_reg_interval / (g_reg_interval + 1) if g_reg_interval else 1.0
    g_opt = Adam(g_lr * g_ratio, beta_1=0.0, beta_2=0.99**g_ratio, epsilon=1e-8, name="adam_g")
    d_opt = Adam(d_lr * ratio, beta_1=0.0, beta_2=0.99**ratio, epsilon=1e-8, name="adam_d")
    return g_opt, d_opt


@keras.saving.register_keras_serializable(package="keras_afgan")
class NetworkOptimizers(keras.optimizers.MultiOptimizer):
    """A `MultiOptimizer` whose members may be `LossScaleOptimizer`s.

    Keras's `MultiOptimizer.build` refuses loss-scaled members, since its
    `apply` receives the gradients of one loss, which one member's scale
    cannot have produced. `AliasFreeGAN` never calls it: each phase scales its
    own loss by its network's optimizer and applies that member. The members'
    variables (loss scales and growth counters included) are this optimizer's,
    so they go through JAX's compiled `fit` and into checkpoints.
    """

    def build(self, var_list):
        if self.built:
            return
        members = self.optimizers
        groups = [[] for _ in members]
        self._var_to_optimizer_idx = {}
        for var in var_list:
            index = members.index(self._optimizer_map(var))
            self._var_to_optimizer_idx[self._var_key(var)] = index
            groups[index].append(var)
        for member, variables in zip(members, groups):
            if variables:
                member.build(variables)
        super(keras.optimizers.MultiOptimizer, self).build(var_list)


def serialize_optimizer(optimizer):
    """An optimizer's config that any backend loads.

    `keras.optimizers.serialize` keeps torch's backend-specific Adam class,
    which other backends cannot load, and so does a `LossScaleOptimizer`'s
    config for its inner optimizer; `deserialize_optimizer` finds built-in
    optimizers by name.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        config = dict(optimizer.get_config(),
                      inner_optimizer=keras.optimizers.serialize(optimizer.inner_optimizer))
        return {"class_name": "LossScaleOptimizer", "config": config}
    return keras.optimizers.serialize(optimizer)


def deserialize_optimizer(config):
    """The optimizer of a `serialize_optimizer` config."""
    if config.get("class_name") == "LossScaleOptimizer":
        config = dict(config["config"])
        inner = keras.optimizers.deserialize(config.pop("inner_optimizer"))
        return keras.optimizers.LossScaleOptimizer(inner, **config)
    return keras.optimizers.deserialize(config)


@keras.saving.register_keras_serializable(package="keras_afgan")
class AliasFreeGAN(keras.Model):
    """Trains a `Generator` (or `StyleGAN2Generator`) against a `Discriminator` with `fit`.

    `fit` takes batches of real images `[N, R, R, C]` in [-1, 1] (NHWC), or
    `(images, labels)` with one-hot labels `[N, c_dim]` for conditional
    models, or dicts (see `_unpack`): keras_afgan's data pipeline sends the
    fake images' labels too, drawn from the dataset independently of the
    real batch as the reference does; without them fake images use the real
    batch's labels. The precision of training is the networks' dtype policy
    (see the module docstring).

    Args:
        generator: the `Generator` to train.
        discriminator: the `Discriminator`.
        r1_gamma: R1 regularisation weight gamma.
        r1_interval: lazy regularisation interval (Dreg every that many
            iterations, loss multiplied by it); 0 disables R1.
        ema_kimg: half-life of the G-EMA in thousands of images (the reference
            uses `batch * 10 / 32`).
        ema_rampup: the EMA half-life is at most `images_seen * ema_rampup`
            (`None` for no ramp-up, as when fine-tuning a pretrained model).
        blur_init_sigma: initial sigma of the blur on every image D sees
            (10 for config R, 0 for T and when fine-tuning).
        blur_fade_kimg: thousands of images over which sigma falls linearly
            to 0 (the reference: `batch * 200 / 32`).
        seed: seed of the latent sampling.
        augment_pipe: a `keras_afgan.augment.AugmentPipe` applied to every
            image D sees (after the blur), as the reference's loss does: the
            fakes of Gmain and Dmain, the reals of Dmain and of R1 (whose
            gradient flows through it); None for no augmentation.
        ada_target: ADA's target for `rt = E[sign(D(real))]`: every
            `ada_interval` iterations the pipe's `p` moves by
            `sign(rt - ada_target) * batch * ada_interval / (ada_kimg * 1000)`
            (clamped at 0), `rt` taken over the real logits of Dmain and R1
            since the last move (over all replicas). None keeps `p` fixed.
        ada_interval: iterations between adjustments of `p`.
        ada_kimg: thousands of images for `p` to move by 1.
        mixing_prob: style mixing: with this probability per batch, the ws
            from a random index in `[1, num_ws)` on come from a second z
            (StyleGAN2 trains with 0.9; StyleGAN3 with 0).
        pl_weight: path-length regularisation weight (StyleGAN2: 2; 0 off).
            Greg runs every `g_reg_interval` iterations on the first
            `N // pl_batch_shrink` samples: `g_reg_interval * pl_weight *
            mean((|J_w^T y| - a)^2)`, with y ~ N(0, 1) / R, the length taken
            as `sqrt(mean over ws of sum over w_dim)` of the gradient, and `a`
            (`pl_mean`) its moving average with decay `pl_decay`.
        pl_decay, pl_batch_shrink, g_reg_interval: see `pl_weight`.
        batch_gpu: micro-batch size: each device's batch is run as
            micro-batches of this many samples whose gradients are averaged
            before the optimizer step (the reference's `--batch-gpu`); None
            runs it whole. The step equals the unaccumulated one to float
            rounding when each micro-batch holds whole minibatch-std groups
            of the whole batch (keras_afgan's pipeline orders the rows so,
            `training.distribute.replica_order`). Dmain's fakes are generated
            in one no-gradient pass over the batch, so `w_avg` and the
            magnitude EMAs take one update per iteration as without
            accumulation (the reference updates them once per micro-batch);
            Greg runs per micro-batch and updates `pl_mean` after each, as the
            reference does.
    """

    def __init__(self, generator, discriminator, r1_gamma=2.0, r1_interval=16, ema_kimg=10.0,
                 ema_rampup=0.05, blur_init_sigma=0.0, blur_fade_kimg=200.0, seed=None,
                 augment_pipe=None, ada_target=None, ada_interval=4, ada_kimg=500.0,
                 mixing_prob=0.0, pl_weight=0.0, pl_decay=0.01, pl_batch_shrink=2,
                 g_reg_interval=4, batch_gpu=None, **kwargs):
        super().__init__(**kwargs)
        if generator.c_dim != discriminator.c_dim:
            raise ValueError(
                f"Expected the generator and discriminator to take the same labels. Received: "
                f"generator c_dim={generator.c_dim}, discriminator c_dim={discriminator.c_dim}")
        if generator.img_resolution != discriminator.img_resolution:
            raise ValueError(
                "Expected the generator and discriminator to have the same resolution. "
                f"Received: {generator.img_resolution} and {discriminator.img_resolution}")
        if generator.dtype_policy.name != discriminator.dtype_policy.name:
            raise ValueError(
                "Expected the generator and discriminator to have the same dtype policy. "
                f"Received: {generator.dtype_policy.name} and {discriminator.dtype_policy.name}")
        self.generator = generator
        self.discriminator = discriminator
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = int(r1_interval)
        self.ema_kimg = float(ema_kimg)
        self.ema_rampup = ema_rampup
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.seed = seed
        if ada_target is not None and augment_pipe is None:
            raise ValueError(f"Expected an augment_pipe with ada_target={ada_target!r}. "
                             "Received: augment_pipe=None")
        if int(ada_interval) < 1 or not float(ada_kimg) > 0:
            raise ValueError("Expected ada_interval >= 1 and ada_kimg > 0. Received: "
                             f"ada_interval={ada_interval!r}, ada_kimg={ada_kimg!r}")
        if not 0 <= mixing_prob <= 1:
            raise ValueError(f"Expected mixing_prob in [0, 1]. Received: {mixing_prob!r}")
        if not pl_weight >= 0 or not 0 <= pl_decay <= 1:
            raise ValueError(f"Expected pl_weight >= 0 and pl_decay in [0, 1]. Received: "
                             f"pl_weight={pl_weight!r}, pl_decay={pl_decay!r}")
        for name, value in (("pl_batch_shrink", pl_batch_shrink),
                            ("g_reg_interval", g_reg_interval)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"Expected {name} to be a positive integer. Received: {value!r}")
        if batch_gpu is not None and (isinstance(batch_gpu, bool) or int(batch_gpu) != batch_gpu
                                      or batch_gpu < 1):
            raise ValueError(f"Expected batch_gpu to be a positive integer or None. "
                             f"Received: {batch_gpu!r}")
        self.batch_gpu = None if batch_gpu is None else int(batch_gpu)
        self.mixing_prob = float(mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_decay = float(pl_decay)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.g_reg_interval = int(g_reg_interval)
        self.augment_pipe = augment_pipe
        self.ada_target = None if ada_target is None else float(ada_target)
        self.ada_interval = int(ada_interval)
        self.ada_kimg = float(ada_kimg)
        self.generator_ema = type(generator).from_config(
            dict(generator.get_config(), name=f"{generator.name}_ema"))
        self.generator_ema.trainable = False
        for target, source in zip(self.generator_ema.variables, generator.variables):
            target.assign(ops.copy(source.value))  # own buffers: JAX donates the state
        self.seed_generator = keras.random.SeedGenerator(seed, name="latents")
        self.images_seen = self.add_weight(name="images_seen", shape=(), dtype="int32",
                                           initializer="zeros", trainable=False)
        self.iteration = self.add_weight(name="iteration", shape=(), dtype="int32",
                                         initializer="zeros", trainable=False)
        if self.pl_weight > 0:
            self.pl_mean = self.add_weight(name="pl_mean", shape=(), dtype="float32",
                                           initializer="zeros", trainable=False, autocast=False)
        if augment_pipe is not None:
            # Sums of sign(D(real)) and of the logits counted since p last
            # moved, and the rt of that move (for the logs).
            self.ada_signs, self.ada_count, self.ada_rt = (
                self.add_weight(name=name, shape=(), dtype="float32", initializer="zeros",
                                trainable=False, autocast=False)
                for name in ("ada_signs", "ada_count", "ada_rt"))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in (
            "loss_G", "loss_D", "loss_D_real", "loss_D_gen", "r1_penalty", "D_real", "D_fake",
            "blur_sigma")}
        if self.pl_weight > 0:
            self.trackers["pl_penalty"] = keras.metrics.Mean(name="pl_penalty")
        if self.loss_scaling:
            self.trackers.update({name: keras.metrics.Sum(name=name)
                                  for name in ("skipped_steps_G", "skipped_steps_D")})
        self.built = True  # every sublayer is built; fit must not trace call() on a batch

    # ------------------------------------------------------------------ setup

    def compile(self, g_optimizer=None, d_optimizer=None, optimizer=None, **kwargs):
        """Compile with one Adam per network in a `MultiOptimizer`.

        Args:
            g_optimizer, d_optimizer: optimizers for G and D (default:
                `default_optimizers(r1_interval)`). Under `mixed_float16`
                each is wrapped in a `LossScaleOptimizer` unless it is one.
            optimizer: a ready `MultiOptimizer` (used when a saved model is
                restored); overrides the two above.
            **kwargs: passed to `keras.Model.compile`. `jit_compile`
                defaults to True on JAX; on TensorFlow to True where a GPU or
                TPU is present (on a CPU, XLA was no faster and took ~40 s to
                compile), never under a tf.distribute strategy, whose step
                spans several devices; False on torch, which runs eager
                (compiled torch cannot do R1's double backward).
        """
        if optimizer is None:
            default_g, default_d = default_optimizers(self.r1_interval,
                                                      g_reg_interval=self.lazy_g_interval)
            optimizer = NetworkOptimizers(keras.optimizers.OptimizerMap(
                self._with_loss_scale(d_optimizer or default_d),
                {f"{re.escape(self.generator.name)}/.*":
                 self._with_loss_scale(g_optimizer or default_g)}))
        elif not isinstance(optimizer, keras.optimizers.MultiOptimizer):
            raise ValueError(
                "Expected g_optimizer and d_optimizer, or a MultiOptimizer as optimizer. "
                f"Received: optimizer={optimizer!r}")
        kwargs.setdefault("jit_compile", backend_module().jit_compile_default(self))
        # Loss scaling is per network (above), never Keras's one wrapper around both.
        kwargs["auto_scale_loss"] = False
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            # Each Adam by itself: inside a MultiOptimizer's config, torch's Adam
            # keeps its backend-specific class, which other backends cannot load;
            # keras.optimizers.deserialize finds built-in optimizers by name.
            config.pop("optimizer", None)
            config["g_optimizer"] = serialize_optimizer(self.g_optimizer)
            config["d_optimizer"] = serialize_optimizer(self.d_optimizer)
        return config

    def compile_from_config(self, config):
        # Keras skips a custom compile() on load unless this is overridden; the
        # optimizer state is restored only into a compiled (built) optimizer.
        config = dict(config)
        # Whether the step compiles depends on the backend that loads the model
        # (torch cannot compile R1's double backward), not on the one that saved it.
        config.pop("jit_compile", None)
        optimizers = {name: deserialize_optimizer(config.pop(name))
                      for name in ("g_optimizer", "d_optimizer") if name in config}
        self.compile(**optimizers, **keras.saving.deserialize_keras_object(config))

    @property
    def precision(self):
        """The networks' dtype policy: "float32", "mixed_bfloat16" or "mixed_float16"."""
        return self.generator.dtype_policy.name

    @property
    def lazy_g_interval(self):
        """The interval of the lazy path-length phase, or 0 without one."""
        return self.g_reg_interval if self.pl_weight > 0 else 0

    @property
    def loss_scaling(self):
        """Whether each network's optimizer scales its loss (float16 compute)."""
        return self.generator.compute_dtype == "float16"

    def _with_loss_scale(self, optimizer):
        is_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        if not self.loss_scaling:
            if is_scaled:
                raise ValueError(
                    "Expected no LossScaleOptimizer: loss scaling is for mixed_float16 networks. "
                    f"Received one for networks in {self.precision}")
            return optimizer
        if is_scaled:
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"loss_scale_{optimizer.name}")

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

    def mapped_ws(self, z, c, update_emas=False):
        """G's ws for `z`, style-mixed with probability `mixing_prob`: from a
        cutoff drawn in `[1, num_ws)` on, the ws of a second z (one cutoff per
        batch, as the reference)."""
        G = self.generator
        ws = G.mapping(z, c, update_emas=update_emas)
        if self.mixing_prob <= 0:
            return ws
        cutoff = keras.random.randint((), 1, G.num_ws, seed=self.seed_generator)
        mix = keras.random.uniform((), seed=self.seed_generator) < self.mixing_prob
        cutoff = ops.where(mix, cutoff, G.num_ws)
        other = G.mapping(keras.random.normal(ops.shape(z), seed=self.seed_generator), c)
        return mix_styles(ws, other, cutoff)

    def run_generator(self, z, c, update_emas=False):
        """Images of G for `z` (style-mixed, see `mapped_ws`)."""
        ws = self.mapped_ws(z, c, update_emas=update_emas)
        return self.generator.synthesis(ws, update_emas=update_emas)

    def run_discriminator(self, images, c, blur_sigma=None, augment=None):
        """D's logits of `images`, blurred, then augmented (`augment`: the
        pipe's uniforms `[N, NUM_DRAWS]`, or None for its own draws)."""
        if blur_sigma is not None:
            images = blur_images(images, blur_sigma, max_sigma=self.blur_init_sigma)
        if self.augment_pipe is not None:
            images = self.augment_pipe(images, uniforms=augment)
        return self.discriminator(images, c)

    @staticmethod
    def _augment_draws(augment, call):
        """The uniforms of augmentation `call` (0: Gmain's fakes, 1: Dmain's
        fakes, 2: Dmain's reals, 3: R1's reals) from `[N, 4, NUM_DRAWS]`."""
        return None if augment is None else ops.cast(augment[:, call], "float32")

    def _state(self):
        variables = list(self.variables)
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            variables += list(optimizer.variables)
        return variables + list(self.metrics_variables)

    def _network_optimizer(self, network):
        """The optimizer of `network` ("G" or "D")."""
        return self.g_optimizer if network == "G" else self.d_optimizer

    def _loss_scale_optimizer(self, network):
        """The `LossScaleOptimizer` of `network` ("G" or "D"), or None."""
        if getattr(self, "optimizer", None) is None:
            return None  # not compiled: the phases can still run (tests do)
        optimizer = self._network_optimizer(network)
        return optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else None

    def _value_and_grad(self, fn, variables, network):
        """`(loss, aux, grads)` of `fn`; grads of the loss times the loss scale
        of `network`'s optimizer where it has one (the loss returned is unscaled)."""
        steps = backend_module()
        optimizer = self._loss_scale_optimizer(network)
        if optimizer is None:
            return steps.value_and_grad(fn, variables, self._state())

        def scaled():
            loss, aux = fn()
            return optimizer.scale_loss(loss), (loss, aux)

        _, (loss, aux), grads = steps.value_and_grad(scaled, variables, self._state())
        return loss, aux, grads

    def _apply(self, grads, variables, network):
        """One optimizer step of `network` ("G" or "D") on a phase's gradients."""
        steps = backend_module()
        optimizer = self._loss_scale_optimizer(network)
        if optimizer is None:
            optimizer = self._network_optimizer(network)
            steps.apply_gradients(optimizer, losses.sanitize_gradients(grads), variables)
            return
        # Unsanitized: a non-finite gradient is the LossScaleOptimizer's signal to
        # skip the step and halve the scale (sanitizing would turn an overflow
        # into a huge finite step). Finite gradients stay finite once unscaled.
        skipped = ops.cast(ops.logical_not(optimizer.check_finite(grads)), "float32")
        if steps.num_replicas() > 1:
            # An overflow on any replica skips the step on all of them (TF's
            # LossScaleOptimizer reads the first replica's verdict only).
            skipped = ops.cast(ops.greater(steps.replica_mean(skipped), 0.0), "float32")
            grads = [ops.where(ops.greater(skipped, 0.0), ops.full_like(g, float("nan")), g)
                     for g in grads]
        # Every replica counts the (common) verdict: Keras averages the replicas'
        # step logs (TF), or the trackers are averaged over processes (torch).
        self.trackers[f"skipped_steps_{network}"].update_state(skipped)
        steps.apply_gradients(optimizer, grads, variables)

    def phase_gmain(self, z, c, blur_sigma=None, augment=None):
        """Gmain: loss, fake logits and gradients w.r.t. G (not applied).

        `c`: the fake images' labels (those G and D are given); `augment`:
        the augmentation uniforms `[N, 4, NUM_DRAWS]` of the iteration.
        """

        def fn():
            logits = self.run_discriminator(self.run_generator(z, c), c, blur_sigma,
                                            self._augment_draws(augment, 0))
            return losses.generator_loss(logits), logits

        return self._value_and_grad(fn, self.generator.trainable_variables, "G")

    def dmain_fakes(self, z, gen_c):
        """Dmain's fake images: G runs with statistics updates (w_avg,
        magnitude EMAs: means over the global batch, all replicas), no gradient."""
        steps = backend_module()
        with steps.no_grad(), cross_replica_mean(steps.replica_mean):
            return ops.stop_gradient(self.run_generator(z, gen_c, update_emas=True))

    def phase_dmain(self, z, real, c, blur_sigma=None, gen_c=None, augment=None, fake=None):
        """Dmain: G runs with statistics updates (w_avg, magnitude EMAs) first.

        `c`: the real images' labels; `gen_c`: the fake images' (default `c`);
        `fake`: the fakes when already made (`dmain_fakes`; then `z` is unused).
        """
        gen_c = c if gen_c is None else gen_c
        if fake is None:
            fake = self.dmain_fakes(z, gen_c)

        def fn():
            fake_logits = self.run_discriminator(fake, gen_c, blur_sigma,
                                                 self._augment_draws(augment, 1))
            real_logits = self.run_discriminator(real, c, blur_sigma,
                                                 self._augment_draws(augment, 2))
            total, loss_gen, loss_real = losses.discriminator_loss(fake_logits, real_logits)
            return total, (loss_gen, loss_real, fake_logits, real_logits)

        return self._value_and_grad(fn, self.discriminator.trainable_variables, "D")

    def phase_greg(self, z, c, pl_noise=None, noise_mode="random"):
        """Greg: path-length regularisation (see `pl_weight`) on the first
        `N // pl_batch_shrink` samples of `z`; aux is `(lengths, pl_mean)`,
        `pl_mean` the moving average after this step (not yet stored).

        `pl_noise`: the `[n, R, R, C]` image-space noise y (default: drawn,
        `N(0, 1) / R`); `noise_mode`: G's per-pixel noise (StyleGAN2).
        """
        steps = backend_module()
        G = self.generator
        n = max(int(z.shape[0]) // self.pl_batch_shrink, 1)
        z, c = z[:n], None if c is None else c[:n]
        if pl_noise is None:
            r = G.img_resolution
            pl_noise = keras.random.normal((n, r, r, G.img_channels), seed=self.seed_generator) / r
        pl_noise = ops.cast(pl_noise, "float32")
        pl_mean_before = ops.convert_to_tensor(self.pl_mean)

        def image_sum(ws):
            images = ops.cast(G.synthesis(ws, noise_mode=noise_mode), "float32")
            return ops.sum(images * pl_noise), None

        def fn():
            ws = self.mapped_ws(z, c)
            grads, _ = steps.input_gradient(image_sum, ws, differentiable_input=True)
            lengths = losses.path_lengths(grads)
            # Moving average over all replicas; the penalty differentiates through it.
            pl_mean = pl_mean_before + (steps.replica_mean(ops.mean(lengths))
                                        - pl_mean_before) * self.pl_decay
            penalty = ops.square(lengths - pl_mean)
            loss = ops.mean(penalty) * self.pl_weight * self.g_reg_interval
            return loss, (lengths, pl_mean)

        return self._value_and_grad(fn, G.trainable_variables, "G")

    def phase_dreg(self, real, c, blur_sigma=None, augment=None):
        """Dreg: `r1_interval * mean(gamma / 2 * r1_penalty)`; aux is
        `(penalty, real_logits)`."""
        steps = backend_module()
        gain = self.r1_interval or 1

        def logits_sum(x):
            logits = self.run_discriminator(x, c, blur_sigma, self._augment_draws(augment, 3))
            return ops.sum(logits), ops.stop_gradient(logits)

        def fn():
            grads, logits = steps.input_gradient(logits_sum, real)
            penalty = losses.r1_penalty(grads)
            return ops.mean(penalty) * (self.r1_gamma / 2) * gain, (penalty, logits)

        return self._value_and_grad(fn, self.discriminator.trainable_variables, "D")

    # ----------------------------------------------------------- train step

    def _unpack(self, data):
        """`images`, `(images, labels)` or a dict with `images` and optionally
        `labels`, `latents`, `gen_labels`.

        `augment` `[N, 4, NUM_DRAWS]` are the augmentation pipe's uniforms
        for its four calls (see `_augment_draws`); without them the pipe
        draws its own. `latents` `[N, 2, z_dim]` are the z of Gmain and Dmain; without them z is
        drawn with the model's seed generator. `gen_labels` `[N, 2, c_dim]` are
        the labels of Gmain's and Dmain's fake images; without them the fakes
        take the real batch's labels. keras_afgan's data pipeline sends both
        (seeded by the step), so runs repeat exactly on every backend and after
        a resume.

        Returns `(real, labels, latents, gen_labels, augment)`.
        """
        latents = gen_c = augment = None
        if (isinstance(data, (tuple, list)) and data and isinstance(data[0], dict)
                and all(x is None for x in data[1:])):
            data = data[0]  # train_on_batch(dict) packs it as (x, None, None)
        if isinstance(data, dict):
            unknown = set(data) - {"images", "labels", "latents", "gen_labels", "augment"}
            if unknown or "images" not in data:
                raise ValueError(
                    "Expected batches with keys 'images' and optionally 'labels', 'latents', "
                    f"'gen_labels', 'augment'. Received keys: {sorted(data)}")
            real, c = data["images"], data.get("labels")
            latents, gen_c = data.get("latents"), data.get("gen_labels")
            augment = data.get("augment") if self.augment_pipe is not None else None
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
            c = gen_c = None
        elif c is None:
            raise ValueError(
                f"This GAN is conditional (c_dim={self.generator.c_dim}): expected batches with "
                "labels. Received: images only")
        elif gen_c is not None and tuple(gen_c.shape[1:]) != (2, self.generator.c_dim):
            raise ValueError(
                f"Expected gen_labels of shape [N, 2, {self.generator.c_dim}]. "
                f"Received: shape={tuple(gen_c.shape)}")
        if augment is not None and tuple(augment.shape[1:]) != (4, NUM_DRAWS):
            raise ValueError(f"Expected augment uniforms of shape [N, 4, {NUM_DRAWS}]. "
                             f"Received: shape={tuple(augment.shape)}")
        return ops.cast(real, "float32"), c, latents, gen_c, augment

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras's TF trainer, under a tf.distribute strategy, reduces a first
        # batch over the replicas to build the model symbolically; that fails
        # for dict batches under MultiWorkerMirroredStrategy. The GAN and its
        # optimizer are built by the constructor and `compile`: nothing to build.
        del iterator, data_batch

    def make_train_function(self, force=False):
        if self.train_function is None or force:
            self.train_function = backend_module().make_train_function(self)
        return super().make_train_function(force=self.train_function is None)

    def train_step(self, *args):
        return backend_module().train_step(self, args[0] if len(args) == 1 else args)

    def micro_batches(self, local_batch):
        """How many micro-batches a device's batch of `local_batch` runs as (`batch_gpu`)."""
        if self.batch_gpu is None or self.batch_gpu >= local_batch:
            return 1
        if local_batch % self.batch_gpu:
            raise ValueError(
                f"Expected each device's batch ({local_batch}) to be a multiple of batch_gpu "
                f"({self.batch_gpu}). Received: batch_gpu={self.batch_gpu}")
        return local_batch // self.batch_gpu

    def _accumulate(self, phase, rounds):
        """`phase(k)` -> `(loss, aux, grads)` for micro-batches `k < rounds`:
        the mean loss, the auxes in a list, and the mean gradients (each
        round's loss is its micro-batch's mean, so these are the whole
        batch's). Rounds run one after another (on TensorFlow, each waits
        for the previous one's gradients, which bounds the memory)."""
        if rounds == 1:
            loss, aux, grads = phase(0)
            return loss, [aux], grads
        steps = backend_module()
        total_loss, auxes, total = 0.0, [], None
        for k in range(rounds):
            with steps.after(total or []):
                loss, aux, grads = phase(k)
            total_loss = total_loss + loss
            auxes.append(aux)
            total = list(grads) if total is None else [a + g for a, g in zip(total, grads)]
        return total_loss / rounds, auxes, [g / rounds for g in total]

    def iteration_step(self, data, run_dreg=None, run_greg=None):
        """One training iteration: Gmain, lazy Greg, Dmain, lazy Dreg, G-EMA update.

        `run_dreg`, `run_greg`: whether this iteration runs Dreg / Greg; None
        decides in the step (`iteration % r1_interval == 0`, `iteration %
        g_reg_interval == 0`). Under a tf.distribute strategy the choice is
        made before the step (`steps.tensorflow.make_train_function`).
        With several replicas, `data` is this replica's shard of the batch;
        with `batch_gpu`, each phase runs it as micro-batches of consecutive
        rows (`micro_batches`).
        """
        steps = backend_module()
        real, c, latents, gen_c, augment = self._unpack(data)
        local = int(real.shape[0])
        batch = local * steps.num_replicas()  # the global batch
        rounds = self.micro_batches(local)
        size = local // rounds

        def part(x, k):
            """Micro-batch `k` of `x` (consecutive rows); `x` itself without accumulation."""
            return x if x is None or rounds == 1 else x[k * size:(k + 1) * size]

        z_shape = (local, self.generator.z_dim)
        images_seen = ops.convert_to_tensor(self.images_seen)
        sigma = self.blur_sigma(images_seen)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables

        z = self._latents(latents, 0, z_shape)
        gen_c_main = self._gen_labels(gen_c, 0, c)
        loss_g, fake_logits, grads = self._accumulate(
            lambda k: self.phase_gmain(part(z, k), part(gen_c_main, k), sigma, part(augment, k)),
            rounds)
        fake_logits = ops.concatenate(fake_logits, axis=0)
        self._apply(grads, g_vars, "G")

        if self.pl_weight > 0:
            def greg():
                greg_z = keras.random.normal(z_shape, seed=self.seed_generator)

                def round_(k):
                    # pl_mean moves after each micro-batch, as the reference's rounds.
                    loss, (lengths, pl_mean), grads = self.phase_greg(
                        part(greg_z, k), part(gen_c_main, k))
                    self.pl_mean.assign(ops.stop_gradient(pl_mean))
                    return loss, ops.mean(ops.square(lengths - pl_mean)), grads

                _, penalties, grads = self._accumulate(round_, rounds)
                self._apply(grads, g_vars, "G")
                penalty = sum(penalties) / rounds
                self.trackers["pl_penalty"].update_state(penalty)
                return penalty

            if run_greg is None:
                steps.cond(ops.equal(self.iteration % self.g_reg_interval, 0), greg,
                           self._state())
            elif run_greg:
                greg()

        z = self._latents(latents, 1, z_shape)
        gen_c_dmain = self._gen_labels(gen_c, 1, c)
        # One pass over the whole batch: the statistics G updates (w_avg,
        # magnitude EMAs) take one step per iteration, micro-batches or not.
        fake = self.dmain_fakes(z, c if gen_c_dmain is None else gen_c_dmain)
        loss_d, dmain_aux, grads = self._accumulate(
            lambda k: self.phase_dmain(None, part(real, k), part(c, k), sigma,
                                       gen_c=part(gen_c_dmain, k), augment=part(augment, k),
                                       fake=part(fake, k)),
            rounds)
        self._apply(grads, d_vars, "D")
        loss_gen = sum(aux[0] for aux in dmain_aux) / rounds
        loss_real = sum(aux[1] for aux in dmain_aux) / rounds
        real_logits = ops.concatenate([aux[3] for aux in dmain_aux], axis=0)
        for aux in dmain_aux:
            self._count_signs(aux[3])

        if self.r1_interval > 0:
            def dreg():
                _, dreg_aux, grads = self._accumulate(
                    lambda k: self.phase_dreg(part(real, k), part(c, k), sigma,
                                              part(augment, k)), rounds)
                self._apply(grads, d_vars, "D")
                for _, logits in dreg_aux:
                    self._count_signs(logits)
                penalty = ops.mean(ops.concatenate([p for p, _ in dreg_aux], axis=0))
                self.trackers["r1_penalty"].update_state(penalty)
                return penalty

            if run_dreg is None:
                steps.cond(ops.equal(self.iteration % self.r1_interval, 0), dreg, self._state())
            elif run_dreg:
                dreg()

        self.update_generator_ema(images_seen, batch)
        self.images_seen.assign(self.images_seen + batch)
        self.iteration.assign(self.iteration + 1)
        self._adjust_augment_probability(batch)

        t = self.trackers
        t["loss_G"].update_state(loss_g)
        t["loss_D"].update_state(loss_d)
        t["loss_D_gen"].update_state(loss_gen)
        t["loss_D_real"].update_state(loss_real)
        t["D_fake"].update_state(ops.mean(ops.cast(fake_logits, "float32")))
        t["D_real"].update_state(ops.mean(ops.cast(real_logits, "float32")))
        t["blur_sigma"].update_state(0.0 if sigma is None else sigma)
        logs = {name: tracker.result() for name, tracker in t.items()}
        if self.loss_scaling:
            logs["loss_scale_G"] = ops.convert_to_tensor(self.g_optimizer.dynamic_scale)
            logs["loss_scale_D"] = ops.convert_to_tensor(self.d_optimizer.dynamic_scale)
        if self.augment_pipe is not None:
            logs["augment_p"] = ops.convert_to_tensor(self.augment_pipe.p)
            if self.ada_target is not None:
                logs["rt"] = ops.convert_to_tensor(self.ada_rt)
        return logs

    def _count_signs(self, real_logits):
        """Add `sign(D(real))` to ADA's sums (over all replicas: every replica
        adds the same numbers, so `p` stays identical everywhere)."""
        if self.ada_target is None:
            return
        steps = backend_module()
        logits = ops.cast(real_logits, "float32")
        self.ada_signs.assign(self.ada_signs + steps.replica_mean(ops.sum(ops.sign(logits))))
        self.ada_count.assign(self.ada_count + steps.replica_mean(
            ops.cast(ops.size(logits), "float32")))

    def _adjust_augment_probability(self, batch):
        """ADA: every `ada_interval` iterations, move `p` towards `rt = ada_target`."""
        if self.ada_target is None:
            return
        due = ops.equal(ops.convert_to_tensor(self.iteration) % self.ada_interval, 0)
        signs, count, last_rt, p = (ops.convert_to_tensor(v) for v in (
            self.ada_signs, self.ada_count, self.ada_rt, self.augment_pipe.p))
        rt = signs / ops.maximum(count, 1.0)
        adjust = ops.sign(rt - self.ada_target) * (batch * self.ada_interval
                                                   / (self.ada_kimg * 1000))
        self.augment_pipe.p.assign(ops.where(due, ops.maximum(p + adjust, 0.0), p))
        self.ada_rt.assign(ops.where(due, rt, last_rt))
        self.ada_signs.assign(ops.where(due, 0.0, signs))
        self.ada_count.assign(ops.where(due, 0.0, count))

    @staticmethod
    def _gen_labels(gen_c, phase, c):
        return c if gen_c is None else ops.cast(gen_c[:, phase], "float32")

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
            "augment_pipe": (None if self.augment_pipe is None
                             else keras.saving.serialize_keras_object(self.augment_pipe)),
            "ada_target": self.ada_target,
            "ada_interval": self.ada_interval,
            "ada_kimg": self.ada_kimg,
            "mixing_prob": self.mixing_prob,
            "pl_weight": self.pl_weight,
            "pl_decay": self.pl_decay,
            "pl_batch_shrink": self.pl_batch_shrink,
            "g_reg_interval": self.g_reg_interval,
            "batch_gpu": self.batch_gpu,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        if config.get("augment_pipe") is not None:
            config["augment_pipe"] = keras.saving.deserialize_keras_object(config["augment_pipe"])
        return cls(**config)
