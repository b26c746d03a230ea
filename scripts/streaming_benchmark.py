"""Peak memory and speed of a real-sized dataset: folder -> afgan-dataset zip -> afgan-train.

    python scripts/streaming_benchmark.py --workdir=/tmp/stream-bench --images=12000

1. Writes `--images` JPEGs of 320x288 (smooth random pictures) to a folder.
2. `afgan-dataset --transform=center-crop --resolution=256x256` makes a zip.
3. Reads the zip through `training_dataset` (the training pipeline alone,
   batch 32) and reports its img/s.
4. `afgan-train --preset=tiny --resolution=256` on the zip for `--kimg`,
   per backend; then on the 100 built-in faces (the networks' own memory)
   and on the zip with `--batch-gpu=4` (two micro-batches of the preset's 8),
   or with `--batch-gpu=2 --mbstd-group=2` (`--small`).

Every step runs as its own process under `/usr/bin/time -v`; the peak RSS of
each is printed with the timings as a Markdown table (BUILD_NOTES.md,
"Streaming data").
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

READ_CODE = """
import sys, time
from keras_afgan.data import open_images, training_dataset
source = open_images(sys.argv[1])
stream = iter(training_dataset(source, batch_size=32, z_dim=64))
next(stream)
start, batches = time.time(), int(sys.argv[2])
for _ in range(batches):
    next(stream)
print(f"READ {batches * 32 / (time.time() - start):.1f} img/s over {batches * 32} images "
      f"of {len(source)}")
# Stop the prefetch threads before the interpreter exits: one still inside a
# numpy_function at shutdown can hang the exit.
del stream
"""


def make_folder(folder, count, seed=0):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        path = os.path.join(folder, f"{i // 1000:03d}", f"photo{i:06d}.jpg")
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        coarse = rng.integers(0, 256, (9, 10, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((320, 288), Image.BICUBIC).save(path, quality=90)


def timed(command, env=None):
    """(seconds, peak RSS in MiB, output) of a command under /usr/bin/time -v."""
    start = time.time()
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                            env=dict(os.environ, **(env or {})))
    seconds = time.time() - start
    if result.returncode:
        sys.exit(f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return seconds, peak / 1024, result.stdout + result.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/stream-bench")
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--kimg", type=float, default=0.2)
    parser.add_argument("--read-batches", type=int, default=40)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--baseline", default="tensorflow,jax,torch",
                        help="backends that also train on the built-in faces")
    parser.add_argument("--micro", default="tensorflow,jax,torch",
                        help="backends that also train with --batch-gpu=4")
    parser.add_argument("--small", default="",
                        help="backends that also train with --batch-gpu=2 --mbstd-group=2")
    args = parser.parse_args()

    folder = os.path.join(args.workdir, "photos")
    archive = os.path.join(args.workdir, "photos-256.zip")
    start = time.time()
    make_folder(folder, args.images)
    print(f"folder of {args.images} JPEGs: {time.time() - start:.0f} s", flush=True)
    rows = []
    if not os.path.exists(archive):
        seconds, peak, _ = timed(["afgan-dataset", f"--source={folder}", f"--dest={archive}",
                                  "--transform=center-crop", "--resolution=256x256"])
        rows.append(("afgan-dataset (folder -> zip)", seconds, peak,
                     f"{args.images / seconds:.0f} img/s"))
    print(f"zip: {os.path.getsize(archive) / 2**30:.2f} GiB", flush=True)
    seconds, peak, out = timed([sys.executable, "-c", READ_CODE, archive,
                                str(args.read_batches)])
    rows.append(("training_dataset on the zip (batch 32)", seconds, peak,
                 re.search(r"READ (.*)", out).group(1)))
    runs = [(backend, archive, []) for backend in args.backends.split(",") if backend]
    # The networks' own memory: the same training on the 100 built-in faces
    # (resized to 256 px on read), and with micro-batches of 2.
    runs += [(backend, "builtin", []) for backend in args.baseline.split(",") if backend]
    runs += [(backend, archive, ["--batch-gpu=4"]) for backend in args.micro.split(",")
             if backend]
    # Micro-batches of 2 (minibatch-std groups of 2): the least memory at batch 8.
    runs += [(backend, archive, ["--batch-gpu=2", "--mbstd-group=2"])
             for backend in args.small.split(",") if backend]
    for backend, data, extra in runs:
        outdir = os.path.join(args.workdir, f"run-{backend}-{len(rows)}")
        shutil.rmtree(outdir, ignore_errors=True)  # a finished run would not train again
        seconds, peak, out = timed(
            ["afgan-train", f"--data={data}", "--preset=tiny", "--resolution=256",
             f"--kimg={args.kimg}", f"--tick={args.kimg / 2}", f"--outdir={outdir}",
             "--snap=100", *extra], env={"KERAS_BACKEND": backend})
        with open(os.path.join(outdir, "stats.jsonl")) as f:
            speed = json.loads(f.readlines()[-1])["img_per_sec"]
        what = "the zip" if data == archive else data
        rows.append((f"afgan-train tiny at 256 px on {what} {' '.join(extra)}, {backend}",
                     seconds, peak, f"{speed:.2f} img/s (last tick)"))
        print("ROW | {} | {:.0f} | {:.0f} | {} |".format(*rows[-1]), flush=True)
    print("\n| step | wall s | peak RSS MiB | speed |\n|---|---|---|---|")
    for name, seconds, peak, speed in rows:
        print(f"| {name} | {seconds:.0f} | {peak:.0f} | {speed} |")


if __name__ == "__main__":
    main()
