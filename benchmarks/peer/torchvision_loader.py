"""The PyTorch peer of `dptrain bench loader`: images per second that torch.utils.data.DataLoader
delivers from a folder of JPEGs (torchvision ImageFolder) with the standard ImageNet training
transforms, on W worker processes of one thread each.

  torchvision_loader.py DIR [--size 224] [--batch 128] [--workers 2] [--batches 40] [--repeats 3]
                        [--warmup 2*W] [--seed 0]

Pipeline: PIL decode (libjpeg-turbo) -> RandomResizedCrop(size) (default scale and ratio) ->
RandomHorizontalFlip -> ToTensor -> Normalize(ImageNet mean, std); shuffle, persistent workers,
no pinned memory (CPU machine), default collate. The consumer does nothing with the batches, so
this is the most the loader can deliver.

Each repeat starts a new epoch (a new shuffle) on the same persistent workers, skips --warmup
batches (the workers refilling their queues), then times --batches batches. The last line is
machine-readable, in the form `dptrain bench loader` prints: images and seconds summed over the
timed batches of all repeats, img_s the median repeat's rate:

  RESULT images=N*B*R seconds=... workers=W img_s=... img_s_per_worker=..."""
import argparse
import statistics
import sys
import time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def worker_init(_):
    # One thread per worker process: W workers use W cores, as dptrain's W loader threads do.
    torch.set_num_threads(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="ImageFolder tree: DIR/<class>/*.JPEG")
    ap.add_argument("--size", type=int, default=224, help="output side (default 224)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=40, help="timed batches per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=-1, help="untimed batches per repeat (default 2*workers)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if min(a.size, a.batch, a.workers, a.batches, a.repeats) < 1:
        ap.error("--size, --batch, --workers, --batches and --repeats must be >= 1")
    warmup = 2 * a.workers if a.warmup < 0 else a.warmup

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    ds = datasets.ImageFolder(a.dir, transform=tf)
    need = (warmup + a.batches) * a.batch
    if len(ds) < need:
        print(f"torchvision_loader: {a.dir} has {len(ds)} images; one repeat needs (warmup {warmup} + "
              f"{a.batches} batches) x {a.batch} = {need}", file=sys.stderr)
        return 1
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, persistent_workers=True,
                        pin_memory=False, drop_last=True, worker_init_fn=worker_init)
    print(f"torchvision {torchvision.__version__}, torch {torch.__version__}, PIL backend "
          f"{torchvision.get_image_backend()}: {len(ds)} images, {len(ds.classes)} classes, size {a.size}, "
          f"batch {a.batch}, {a.workers} workers, {warmup} + {a.batches} batches x {a.repeats} repeats")

    rates, total = [], 0.0
    for r in range(a.repeats):
        it = iter(loader)
        for _ in range(warmup):
            next(it)
        t0 = time.perf_counter()
        for _ in range(a.batches):
            x, y = next(it)
        t = time.perf_counter() - t0
        # Check what was delivered, outside the timed loop: shape, type, finite, normalised
        # (the per-channel mean of a batch of natural-ish images lies well inside [-3, 3]).
        assert x.shape == (a.batch, 3, a.size, a.size) and x.dtype == torch.float32, (x.shape, x.dtype)
        assert y.shape == (a.batch,) and int(y.min()) >= 0 and int(y.max()) < len(ds.classes)
        assert torch.isfinite(x).all() and x.mean(dim=(0, 2, 3)).abs().max() < 3
        rates.append(a.batches * a.batch / t)
        total += t
        print(f"repeat {r + 1}: {a.batches * a.batch} images in {t:.3f} s, {a.batches * a.batch / t:.1f} img/s")
    del it, loader  # shuts the workers down before the interpreter exits

    med = statistics.median(rates)
    print(f"median {med:.0f} img/s with {a.workers} workers: {med / a.workers:.0f} img/s per worker")
    print(f"RESULT images={a.batches * a.batch * a.repeats} seconds={total:.3f} workers={a.workers} img_s={med:.1f} "
          f"img_s_per_worker={med / a.workers:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
