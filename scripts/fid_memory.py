"""Peak memory of FID's real-image pass, and the cache's second pass.

    python scripts/fid_memory.py --inception=inception_v3_notop.h5 --images=20000

Writes `--images` random 32 px images as a zip in the reference's layout,
then in this process: loads InceptionV3 and runs one batch (the baseline),
computes the features of every real (`real_features`, streamed, cached in a
temporary folder) and their FID statistics, and reports how far the peak
RSS grew over the baseline beside what the features take (2048 float32 per
image) plus one batch. A second `real_features` call on the same data must
come from the cache: it reports its time and whether the zip was read.
"""

import argparse
import io
import os
import resource
import tempfile
import time
import zipfile

import numpy as np


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_zip(path, count, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(count):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                buffer, format="PNG", compress_level=0)
            archive.writestr(f"{i // 1000:05d}/img{i:08d}.png", buffer.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inception", required=True)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    from keras_afgan.data import open_images
    from keras_afgan.metrics import fid

    work = tempfile.mkdtemp(prefix="fid-memory-")
    archive = os.path.join(work, "reals.zip")
    write_zip(archive, args.images)
    network = fid.InceptionFeatures(args.inception, batch_size=args.batch)
    network(np.zeros((args.batch, 32, 32, 3), np.uint8))  # traced and warm
    source = open_images(archive)
    baseline = peak_mib()
    start = time.time()
    features = fid.real_features(source, network, batch_size=args.batch,
                                 cache_dir=os.path.join(work, "cache"), verbose=True)
    fid.feature_statistics(features)
    first = time.time() - start
    grown = peak_mib() - baseline
    feature_mib = features.nbytes / 2**20
    batch_mib = args.batch * 299 * 299 * 3 * 4 / 2**20
    reads = []
    again = open_images(archive)
    again.read = lambda indices: reads.append(len(indices))
    start = time.time()
    fid.real_features(again, network, batch_size=args.batch,
                      cache_dir=os.path.join(work, "cache"))
    second = time.time() - start
    print(f"\n| reals | baseline peak MiB | growth MiB | features MiB | one input batch MiB "
          f"| first pass s | cached pass s | images read by the cached pass |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {args.images} | {baseline:.0f} | {grown:.0f} | {feature_mib:.0f} | {batch_mib:.0f} "
          f"| {first:.0f} | {second:.2f} | {sum(reads)} |")


if __name__ == "__main__":
    main()
