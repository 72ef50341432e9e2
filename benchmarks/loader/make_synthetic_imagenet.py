#!/usr/bin/env python3
"""Writes an ImageNet-like folder tree of JPEGs for the loader benchmark (benchmarks/loader_throughput.sh):

  OUT/n00000000/n00000000_0.JPEG, OUT/n00000001/n00000001_1.JPEG, ...

  make_synthetic_imagenet.py --out DIR [--n 20000] [--classes 100] [--seed 0] [--jobs NPROC]
                             [--quality 90] [--portrait 0.2]

Images are 500x375 (width x height), a fraction --portrait of them 375x500, as most of ImageNet's
are; image i belongs to class i % classes. The content is built to cost a JPEG decoder what a
photograph costs, not to look like one: a smooth colour field, 4-24 soft-edged shapes under smooth
shading, band-limited texture whose strength varies across the image and between images, and mild
sensor noise. Pure noise would be several times larger than a photograph and skip none of the
decoder's work on zero coefficients; flat shapes would be several times smaller. At quality 90 the
files come out at roughly 60-150 KB, mean about 100 KB (ImageNet's training set: about 110 KB at
a mean of about 400x350 pixels and mixed qualities); the constants below were tuned on samples of
a few hundred images for that.

Every image is a pure function of (seed, index), so any --jobs gives the same bytes. The tree is
written into OUT.partial-PID and renamed to OUT at the end: an interrupted run leaves no OUT, and
an existing OUT is never touched (--force replaces it)."""
import argparse
import multiprocessing
import os
import shutil
import sys
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W_LAND, H_LAND = 500, 375
DETAIL = 50.0  # texture amplitude, median over images (pixel levels, 1 sigma)
MASK_BIAS = 0.9  # higher: more of each image textured
TEXTURE_OCTAVES = ((1.0, 6), (1.0, 3), (1.0, 1.5))  # (amplitude, feature size in pixels)


def wnid(c):
    return f"n{c:08d}"


def smooth_field(rng, h, w, cells, octaves):
    """Sum of upsampled random grids, `cells` across the width for the coarsest and twice as many
    for each next octave, each with half the amplitude of the one before (about the 1/f spectrum
    of natural images). The octaves are summed at a few times the finest grid and upsampled once.
    Zero-mean, about unit range; float32 (h, w)."""
    fw = min(w, int(4 * cells * 2 ** (octaves - 1)))
    fh = max(2, int(round(fw * h / w)))
    out = np.zeros((fh, fw), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gw = max(2, int(round(cells * 2 ** o)))
        gh = max(2, int(round(gw * h / w)))
        g = rng.standard_normal((gh, gw), dtype=np.float32)
        out += amp * (g if (gh, gw) == (fh, fw) else np.asarray(Image.fromarray(g, "F").resize((fw, fh), Image.BICUBIC)))
        total += amp
        amp *= 0.5
    if (fh, fw) != (h, w):
        out = np.asarray(Image.fromarray(out, "F").resize((w, h), Image.BICUBIC))
    return out / total


TILE = 768
_tiles = {}


def tiles(seed):
    """Texture and noise tiles, shared by every image of a seed; images take crops at random
    offsets (drawing fresh per-pixel noise for each image would double the generation time)."""
    if seed not in _tiles:
        rng = np.random.default_rng([seed, 1 << 31])
        # Broadband texture: features of about 6, 3 and 1.5 pixels.
        tex = sum(a * smooth_field(rng, TILE, TILE, TILE / d, 1) for a, d in TEXTURE_OCTAVES)
        tex /= tex.std()
        _tiles[seed] = tex, rng.standard_normal((TILE, TILE, 3), dtype=np.float32)
    return _tiles[seed]


def crop(rng, tile, h, w):
    y, x = rng.integers(0, TILE - h + 1), rng.integers(0, TILE - w + 1)
    t = tile[y:y + h, x:x + w]
    return t[:, ::-1] if rng.random() < 0.5 else t


def render(seed, index, classes, portrait_fraction):
    """One image as uint8 (H, W, 3)."""
    tex_tile, noise_tile = tiles(seed)
    rng = np.random.default_rng([seed, index])
    w, h = (H_LAND, W_LAND) if rng.random() < portrait_fraction else (W_LAND, H_LAND)
    # A class-dependent base colour, so the labels carry a little signal.
    crng = np.random.default_rng([seed, 1 << 30, index % classes])
    base = (crng.uniform(70, 180) + crng.normal(0, 30, 3)).astype(np.float32)

    # Smooth colour field: sky, walls, out-of-focus background.
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[:, :, c] = base[c] + rng.uniform(25, 60) * smooth_field(rng, h, w, 2, 3)

    # Objects: flat-filled shapes, sizes from a power law (a few large, many small), then
    # softened, since a photograph's edges are never aliased.
    np.clip(img, 0, 255, out=img)
    canvas = Image.fromarray(img.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(8, 60))):
        s = min(w, h) * 0.4 * rng.random() ** 2.5 + 3
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        fill = tuple(min(255, max(0, int(v))) for v in base + rng.normal(0, 50, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([cx - s, cy - s * rng.uniform(0.3, 1.0), cx + s, cy + s * rng.uniform(0.3, 1.0)], fill=fill)
        elif kind == 1:
            draw.rectangle([cx - s, cy - s * rng.uniform(0.2, 1.0), cx + s * rng.uniform(0.2, 1.0), cy + s], fill=fill)
        else:
            n = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            rad = s * rng.uniform(0.4, 1.0, n)
            draw.polygon([(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(ang, rad)], fill=fill)
    canvas = canvas.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.2)))
    img = np.array(canvas, np.float32)

    # Lighting: a smooth multiplicative shading over everything.
    img *= (1.0 + 0.3 * smooth_field(rng, h, w, 3, 3))[:, :, None]

    # Texture (foliage, fabric, fur, gravel): strong in some regions, absent in others, stronger
    # in some images than in others; the main knob of the file size.
    detail = rng.lognormal(np.log(DETAIL), 0.35)
    mask = np.clip(MASK_BIAS + 1.2 * smooth_field(rng, h, w, 2, 2), 0.0, 1.0)
    tex = crop(rng, tex_tile, h, w) * (detail * mask)
    tint = (1.0 + 0.4 * (rng.random(3) - 0.5)).astype(np.float32)
    img += tex[:, :, None] * tint

    # Sensor noise.
    img += np.float32(rng.uniform(2.0, 5.0)) * crop(rng, noise_tile, h, w)
    np.clip(img, 0, 255, out=img)
    img += 0.5
    return img.astype(np.uint8)


def work(job):
    out, seed, lo, hi, classes, portrait, quality = job
    nbytes = 0
    for i in range(lo, hi):
        c = i % classes
        path = os.path.join(out, wnid(c), f"{wnid(c)}_{i}.JPEG")
        Image.fromarray(render(seed, i, classes, portrait), "RGB").save(path, "JPEG", quality=quality)
        nbytes += os.path.getsize(path)
    return hi - lo, nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to create (OUT/<wnid>/*.JPEG)")
    ap.add_argument("--n", type=int, default=20000, help="images (default 20000)")
    ap.add_argument("--classes", type=int, default=100, help="classes, wnids n00000000.. (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    ap.add_argument("--portrait", type=float, default=0.2, help="fraction of 375x500 images (default 0.2)")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT")
    a = ap.parse_args()
    if a.n < 1 or a.classes < 1 or a.jobs < 1 or not 0 <= a.portrait <= 1 or not 1 <= a.quality <= 100:
        ap.error("need --n >= 1, --classes >= 1, --jobs >= 1, 0 <= --portrait <= 1, 1 <= --quality <= 100")
    out = os.path.abspath(a.out.rstrip("/"))
    if os.path.exists(out) and not a.force:
        print(f"make_synthetic_imagenet: {out} exists (--force to replace it)", file=sys.stderr)
        return 1
    tmp = f"{out}.partial-{os.getpid()}"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    for c in range(a.classes):
        os.makedirs(os.path.join(tmp, wnid(c)))

    t0 = time.time()
    chunk = 50
    jobs = [(tmp, a.seed, lo, min(lo + chunk, a.n), a.classes, a.portrait, a.quality) for lo in range(0, a.n, chunk)]
    done = nbytes = 0
    try:
        with multiprocessing.Pool(a.jobs) as pool:
            for k, b in pool.imap_unordered(work, jobs):
                done += k
                nbytes += b
                if done % 2000 < k or done == a.n:
                    print(f"  {done}/{a.n} images, {nbytes / done / 1e3:.0f} KB mean, {time.time() - t0:.0f} s",
                          file=sys.stderr)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"make_synthetic_imagenet: {a.n} images in {a.classes} classes, {nbytes / 1e6:.1f} MB "
          f"({nbytes / a.n / 1e3:.0f} KB mean), seed {a.seed}, {time.time() - t0:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
