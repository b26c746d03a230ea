"""Average power spectra of images, and their plots (heatmap, slices) as PNG.

`average_power_spectrum(images)`: per image and channel, subtract the mean,
multiply by a 2-D Kaiser window (beta 8) to suppress the edge's leakage,
zero-pad to `pad * R`, take `|FFT|^2` divided by the window's energy (so
white noise of variance s^2 reads s^2), average over images and channels,
and centre (fftshift).
Frequencies run from -R/2 to R/2 cycles per image. Aliasing shows as energy
that does not fall off towards the corners and as grid-aligned streaks.
"""

import numpy as np

from keras_afgan.images import from_uint8

KAISER_BETA = 8.0


def average_power_spectrum(images, pad=2, beta=KAISER_BETA):
    """Centred average power spectrum `[pad * R, pad * R]` (float64) of `[N, R, R, C]` images.

    uint8 images are mapped to [-1, 1] first; float images are taken as they are.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"Expected square images [N, R, R, C]. Received shape: {images.shape}")
    x = from_uint8(images, np.float64) if images.dtype == np.uint8 else images.astype(np.float64)
    n, r, _, c = x.shape
    x = x - x.mean(axis=(1, 2), keepdims=True)
    window = np.kaiser(r, beta)
    window2d = np.outer(window, window)
    x = x * window2d[None, :, :, None]
    size = int(pad * r)
    spectrum = np.abs(np.fft.fft2(x, s=(size, size), axes=(1, 2))) ** 2
    spectrum = spectrum.mean(axis=(0, 3)) / np.sum(window2d ** 2)
    return np.fft.fftshift(spectrum)


def average_power_spectrum_of_batches(batches, pad=2, beta=KAISER_BETA):
    """`average_power_spectrum` over an iterable of image batches (weighted by batch size)."""
    total, count = 0.0, 0
    for images in batches:
        total = total + average_power_spectrum(images, pad, beta) * len(images)
        count += len(images)
    if count == 0:
        raise ValueError("Expected at least one image. Received: none")
    return total / count


def spectrum_frequencies(size, resolution):
    """Frequencies (cycles per image) of the centred spectrum's rows/columns."""
    return np.fft.fftshift(np.fft.fftfreq(size)) * resolution


def spectrum_slices(spectrum):
    """Horizontal and diagonal slices from the centre outwards: `(horizontal, diagonal)`."""
    size = spectrum.shape[0]
    centre = size // 2
    horizontal = spectrum[centre, centre:]
    k = np.arange(size - centre)
    diagonal = spectrum[centre + k, centre + k]
    return horizontal, diagonal


def save_heatmaps(spectra, path, resolution, titles=None):
    """Plot spectra (dB, shared colour scale) side by side; write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = titles or [f"spectrum {i}" for i in range(len(spectra))]
    db = [10 * np.log10(np.maximum(s, 1e-20)) for s in spectra]
    vmax = max(d.max() for d in db)
    vmin = vmax - 80
    freqs = spectrum_frequencies(spectra[0].shape[0], resolution)
    extent = [freqs[0], freqs[-1], freqs[-1], freqs[0]]
    fig, axes = plt.subplots(1, len(spectra), figsize=(4.2 * len(spectra), 4), squeeze=False)
    for ax, d, title in zip(axes[0], db, titles):
        image = ax.imshow(d, cmap="inferno", vmin=vmin, vmax=vmax, extent=extent)
        ax.set_title(title)
        ax.set_xlabel("cycles / image")
    fig.colorbar(image, ax=list(axes[0]), label="power (dB)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_slices(spectra, path, resolution, labels=None):
    """Plot horizontal and diagonal slices of each spectrum (dB); write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [f"spectrum {i}" for i in range(len(spectra))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for spectrum, label in zip(spectra, labels):
        horizontal, diagonal = spectrum_slices(spectrum)
        freqs = np.arange(len(horizontal)) / spectrum.shape[0] * resolution
        axes[0].plot(freqs, 10 * np.log10(np.maximum(horizontal, 1e-20)), label=label)
        axes[1].plot(freqs * np.sqrt(2), 10 * np.log10(np.maximum(diagonal, 1e-20)), label=label)
    for ax, title in zip(axes, ("horizontal slice", "diagonal slice")):
        ax.set_title(title)
        ax.set_xlabel("cycles / image")
        ax.set_ylabel("power (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
