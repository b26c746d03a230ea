"""Train from Python with `Model.fit`, the same way `afgan-train` does.

    KERAS_BACKEND=jax python examples/train_in_python.py
"""

import keras

import keras_afgan
from keras_afgan import data
from keras_afgan.augment import NUM_DRAWS
from keras_afgan.augment import AugmentPipe
from keras_afgan.augment import preset_kwargs
from keras_afgan.training import AliasFreeGAN

# 100 faces at 32 px; a zip or folder of any size streams the same way (decoded per batch).
images = data.open_images("builtin:faces", resolution=32)
# Batches carry latents and the augmentation pipe's random numbers, seeded by the step.
stream = data.training_dataset(images, batch_size=8, z_dim=64, mirror=True, seed=0,
                               augment_draws=NUM_DRAWS)

G = keras_afgan.Generator(z_dim=64, w_dim=64, img_resolution=32, channel_base=2048,
                          channel_max=32, num_layers=8, margin_size=6,
                          magnitude_ema_beta=0.5 ** (8 / 20000))
D = keras_afgan.Discriminator(img_resolution=32, channel_base=2048, channel_max=32)
# ADA: every image D sees is augmented (bgc), p adjusted towards rt = 0.6.
pipe = AugmentPipe(**preset_kwargs("bgc"), p=0.0)
gan = AliasFreeGAN(G, D, r1_gamma=0.5, ema_kimg=8 * 10 / 32, augment_pipe=pipe, ada_target=0.6,
                   ada_kimg=10)
gan.compile()  # Adam for G and D in a MultiOptimizer, the reference's settings
gan.fit(stream, epochs=2, steps_per_epoch=25)

samples = gan.generator_ema(keras.random.normal((4, 64)))  # [4, 32, 32, 3]
gan.save("gan.keras")  # both networks, the G-EMA and both optimizers' state
