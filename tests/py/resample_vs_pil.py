"""The resampler against PIL's Image.resize(BILINEAR, box=...), which torchvision's
RandomResizedCrop uses on PIL images: random images, boxes and output sizes, enlarging and
shrinking. PIL rounds its intermediate (horizontal pass) to uint8, we keep floats, so values
may differ by one or two levels; anything more is a bug.
usage: resample_vs_pil.py RESAMPLE_TOOL"""
import subprocess
import sys

import numpy as np
from PIL import Image

tool = sys.argv[1]
rng = np.random.default_rng(5)
worst, total, count = 0, 0.0, 0
for trial in range(60):
    w, h = int(rng.integers(8, 300)), int(rng.integers(8, 300))
    c = 3 if trial % 3 else 1
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 80 * np.sin(xx / rng.uniform(2, 30) + yy / rng.uniform(2, 30))
    img = np.clip(base[..., None] + rng.normal(0, 25, (h, w, c)), 0, 255).astype(np.uint8)
    bw, bh = rng.uniform(1, w), rng.uniform(1, h)
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    if trial % 4 == 0:  # whole-pixel boxes, as random-resized crop makes them
        bw, bh = float(int(bw) or 1), float(int(bh) or 1)
        x0, y0 = float(int(x0)), float(int(y0))
    ow, oh = int(rng.integers(1, 260)), int(rng.integers(1, 260))
    pil = Image.fromarray(img[..., 0] if c == 1 else img)
    ref = np.asarray(pil.resize((ow, oh), Image.BILINEAR, box=(x0, y0, x0 + bw, y0 + bh)), dtype=np.int32)
    ref = ref.reshape(oh, ow, c)
    args = [tool] + [str(v) for v in (w, h, c, repr(x0), repr(y0), repr(bw), repr(bh), ow, oh)]
    out = subprocess.run(args, input=img.tobytes(), capture_output=True, check=True).stdout
    ours = np.frombuffer(out, dtype=np.uint8).reshape(oh, ow, c).astype(np.int32)
    d = np.abs(ours - ref)
    worst = max(worst, int(d.max()))
    total += float(d.sum())
    count += d.size
    if d.max() > 2:
        print(f"FAIL trial {trial}: {w}x{h}x{c} box ({x0:.3f}, {y0:.3f}, {bw:.3f}, {bh:.3f}) -> {ow}x{oh}: "
              f"max |ours - PIL| = {d.max()}")
        sys.exit(1)
print(f"ok: 60 resamples match PIL: max |diff| {worst} levels, mean {total / count:.4f}")
