#!/usr/bin/env python3
"""Writes the JPEG bytes stored in a dptrain HDF5 file (`dptrain prep imagenet ... --jpeg`) back out
as an ImageFolder tree, so that the torchvision peer decodes exactly the bytes dptrain decodes:

  export_jpegs.py IN.h5 DIR        ->  DIR/<class_name>/<i>.JPEG, i the image's index in IN.h5

Layout read: `jpeg` uint8 (all images' bytes concatenated), `jpeg_offsets` int64 (N+1; image i
is jpeg[off[i]:off[i+1]]), `labels` integer (N), attribute `class_names` (num_classes strings;
without it the classes are named class00000, class00001, ...). ImageFolder numbers the class
folders in sorted order, so the names must sort in label order; this is checked.

Every image is checked to start with a JPEG SOI marker and end with EOI. The tree is written into
DIR.partial-PID and renamed to DIR at the end; an existing DIR is an error (--force replaces it)."""
import argparse
import os
import shutil
import sys

import h5py
import numpy as np

BLOCK = 64 << 20  # bytes read from `jpeg` at a time


def fail(msg):
    print(f"export_jpegs: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("h5")
    ap.add_argument("out")
    ap.add_argument("--force", action="store_true", help="replace an existing DIR")
    a = ap.parse_args()
    out = os.path.abspath(a.out.rstrip("/"))
    if os.path.exists(out) and not a.force:
        return fail(f"{out} exists (--force to replace it)")

    try:
        f = h5py.File(a.h5, "r")
    except OSError as e:
        return fail(f"{a.h5}: {e}")
    with f:
        for name in ("jpeg", "jpeg_offsets", "labels"):
            if name not in f:
                return fail(f"{a.h5}: no dataset '{name}' (not written with --jpeg?)")
        jpeg, off, labels = f["jpeg"], f["jpeg_offsets"][:].astype(np.int64), f["labels"][:].astype(np.int64)
        n = len(labels)
        if jpeg.ndim != 1 or jpeg.dtype != np.uint8:
            return fail(f"{a.h5}: jpeg is {jpeg.dtype} {jpeg.shape}, expected 1-d uint8")
        if off.shape != (n + 1,):
            return fail(f"{a.h5}: jpeg_offsets has {off.shape} entries, expected N+1 = {n + 1}")
        if off[0] != 0 or off[-1] != jpeg.shape[0] or np.any(np.diff(off) <= 0):
            return fail(f"{a.h5}: jpeg_offsets must rise strictly from 0 to len(jpeg) = {jpeg.shape[0]}")
        if n and labels.min() < 0:
            return fail(f"{a.h5}: labels[{int(np.argmin(labels))}] = {labels.min()} is negative")
        if "class_names" in f.attrs:
            names = [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(f.attrs["class_names"])]
        else:
            names = [f"class{c:05d}" for c in range(int(labels.max()) + 1 if n else 0)]
        if n and labels.max() >= len(names):
            return fail(f"{a.h5}: labels[{int(np.argmax(labels))}] = {labels.max()} but {len(names)} class_names")
        if names != sorted(names) or len(set(names)) != len(names) or any(not s or "/" in s for s in names):
            return fail(f"{a.h5}: class_names must be distinct, non-empty, without '/', and sorted "
                        "(ImageFolder numbers the folders in sorted order)")

        tmp = f"{out}.partial-{os.getpid()}"
        try:
            for s in names:
                os.makedirs(os.path.join(tmp, s))
            i = 0
            nbytes = 0
            while i < n:
                # Whole images from off[i] up to about BLOCK bytes (at least one image).
                j = max(i + 1, int(np.searchsorted(off, off[i] + BLOCK, side="right")) - 1)
                j = min(j, n)
                buf = jpeg[off[i]:off[j]]
                for k in range(i, j):
                    b = buf[off[k] - off[i]:off[k + 1] - off[i]]
                    if len(b) < 4 or b[0] != 0xFF or b[1] != 0xD8 or b[-2] != 0xFF or b[-1] != 0xD9:
                        raise ValueError(f"{a.h5}: image {k} (bytes {off[k]}..{off[k + 1]}) is not a whole JPEG "
                                         f"(starts {bytes(b[:2]).hex()}, ends {bytes(b[-2:]).hex()})")
                    with open(os.path.join(tmp, names[labels[k]], f"{k}.JPEG"), "wb") as g:
                        g.write(b.tobytes())
                nbytes += len(buf)
                i = j
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, ValueError):
                return fail(str(e))
            raise
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"export_jpegs: {n} images, {len(names)} classes, {nbytes / 1e6:.1f} MB "
          f"({nbytes / max(n, 1) / 1e3:.1f} KB mean) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
