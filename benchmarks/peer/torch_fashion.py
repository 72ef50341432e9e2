"""The PyTorch peer of `dptrain train`: the same network, data files, augmentation and recipe
(read from dptrain's INI config), on one process or several (DDP over gloo on 127.0.0.1).

  torch_fashion.py CONFIG --mode throughput|tta [--set section.key=value ...] [--threads T]
                   [--channels-last] [--steps N] [--target 0.94]

Environment for several processes: WORLD_SIZE, RANK, MASTER_PORT (benchmarks/*.sh set them).
Prints one JSON line with the result on rank 0.

throughput: median time of forward + backward (+ allreduce) + update per step, with batches
  prepared before the timed loop: the peer's data pipeline is not timed, so its number is an
  upper bound of what it delivers (dptrain's number includes its loader).
tta: real training, augmentation inline, evaluation after every epoch, stops at the target;
  the time runs from the first step and includes evaluation, as dptrain's does."""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dpt_peer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("config")
ap.add_argument("--mode", choices=["throughput", "tta"], required=True)
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--channels-last", action="store_true")
ap.add_argument("--steps", type=int, default=60)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--target", type=float, default=0.0)
args = ap.parse_args()

torch.set_num_threads(args.threads)
world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
if world > 1:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ.get('MASTER_PORT', '29512')}",
                            rank=rank, world_size=world)

cfg = dpt_peer.read_ini(args.config, args.set)
G = dpt_peer.get
seed = G(cfg, "train", "seed", 0, int)
torch.manual_seed(seed)
gb = G(cfg, "train", "batch_size", 512, int)
assert gb % world == 0, "batch not divisible by world size"
lb = gb // world
images, labels, mean, std = dpt_peer.load_split(G(cfg, "data", "train", ""), G(cfg, "data", "train_subset", 0, int))
timages, tlabels, _, _ = dpt_peer.load_split(G(cfg, "data", "test", ""), G(cfg, "data", "test_subset", 0, int))
num_classes = int(max(labels.max(), tlabels.max())) + 1
model = dpt_peer.build_model(cfg, images.shape[1], num_classes)
fmt = torch.channels_last if args.channels_last else torch.contiguous_format
model = model.to(memory_format=fmt)
if world > 1:
    model = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=G(cfg, "comm", "bucket_mb", 25.0, float))
opt = dpt_peer.make_optimizer(model, cfg)
lossf = nn.CrossEntropyLoss(label_smoothing=G(cfg, "train", "label_smoothing", 0.0, float))
spe = len(images) // gb
epochs = G(cfg, "train", "epochs", 10, int)
total = spe * epochs
max_steps = G(cfg, "train", "max_steps", 0, int)
if max_steps:
    total = min(total, max_steps)
sched = dpt_peer.Schedule(cfg, gb, spe, total)
pad, flip = G(cfg, "data", "crop_padding", 4, int), G(cfg, "data", "flip", True, bool)
gen = torch.Generator().manual_seed(seed * 1000 + rank)


_perm = {}


def batch_indices(epoch, step):
    """This rank's slice of global batch `step` of a permutation shared by all ranks."""
    if epoch not in _perm:
        _perm.clear()
        _perm[epoch] = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return _perm[epoch][step * gb + rank * lb: step * gb + (rank + 1) * lb]


def train_step(x, y, step):
    lr, mom = sched.at(step)
    for g in opt.param_groups:
        g["lr"] = lr
        g["momentum"] = mom
    opt.zero_grad(set_to_none=True)
    loss = lossf(model(x), y)
    loss.backward()
    opt.step()
    return loss


def evaluate():
    model.eval()
    n = len(timages)
    b, e = n * rank // world, n * (rank + 1) // world
    hits = torch.zeros(2, dtype=torch.int64)
    with torch.no_grad():
        for i in range(b, e, 1000):
            j = min(e, i + 1000)
            x = dpt_peer.normalize(timages[i:j], mean, std).contiguous(memory_format=fmt)
            hits[0] += (model(x).argmax(1) == tlabels[i:j]).sum()
            hits[1] += j - i
    if world > 1:
        dist.all_reduce(hits)
    model.train()
    return hits[0].item() / hits[1].item()


result = {"impl": "pytorch", "torch": torch.__version__, "mode": args.mode, "world": world, "threads": args.threads,
          "channels_last": args.channels_last, "global_batch": gb}
if args.mode == "throughput":
    batches = []
    for s in range(min(spe, 8)):
        idx = batch_indices(0, s)
        x = dpt_peer.augment(images[idx], mean, std, pad, flip, gen).contiguous(memory_format=fmt)
        batches.append((x, labels[idx]))
    times = []
    for step in range(args.warmup + args.steps):
        x, y = batches[step % len(batches)]
        t0 = time.perf_counter()
        train_step(x, y, step)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[args.warmup:])
    if world > 1:  # the step is as slow as the slowest rank
        t = torch.tensor([med])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        med = t.item()
    result.update(median_step_ms=1e3 * med, img_per_s=gb / med, steps=args.steps)
else:
    t0 = time.perf_counter()
    step, reached, history = 0, None, []
    for epoch in range(epochs):
        for s in range(spe):
            if step >= total:
                break
            idx = batch_indices(epoch, s)
            x = dpt_peer.augment(images[idx], mean, std, pad, flip, gen).contiguous(memory_format=fmt)
            train_step(x, labels[idx], step)
            step += 1
        acc = evaluate()
        elapsed = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "top1": acc, "time_s": elapsed})
        if rank == 0:
            print(f"pytorch epoch {epoch + 1}: top-1 {100 * acc:.2f}%  elapsed {elapsed:.1f}s", flush=True)
        if args.target and acc >= args.target:
            reached = elapsed
            break
    result.update(history=history, final_top1=history[-1]["top1"], target=args.target,
                  time_to_target_s=reached, total_s=time.perf_counter() - t0)
if rank == 0:
    print(json.dumps(result), flush=True)
if world > 1:
    dist.destroy_process_group()
