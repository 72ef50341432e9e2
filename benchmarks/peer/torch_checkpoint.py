"""PyTorch's side of benchmarks/checkpoint_cost.sh: the time to save and load a training
checkpoint of the same ResNet-50 (torchvision, 1-channel stem, 10 classes) with SGD momentum
state, done the way dptrain does it: torch.save to a temporary file in the same directory,
fsync, rename, fsync of the directory. Prints medians over ROUNDS.
    torch_checkpoint.py DIR [--rounds N]"""
import argparse
import os
import statistics
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    m = torchvision.models.resnet50(num_classes=10)
    m.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(8, 1, 32, 32)
    torch.nn.functional.cross_entropy(m(x), torch.arange(8) % 10).backward()
    opt.step()  # fills the momentum buffers
    os.makedirs(a.dir, exist_ok=True)
    path = os.path.join(a.dir, "ckpt.pt")
    saves, loads = [], []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "step": 1}, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fd = os.open(a.dir, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        saves.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        s = torch.load(path)
        m.load_state_dict(s["model"])
        opt.load_state_dict(s["optimizer"])
        loads.append(time.perf_counter() - t0)
    n = sum(p.numel() for p in m.parameters())
    print("torch %s: %d parameters, %.1f MB, save %.3f s, load %.3f s (medians of %d)" % (
        torch.__version__, n, os.path.getsize(path) / 1e6, statistics.median(saves), statistics.median(loads),
        a.rounds))


if __name__ == "__main__":
    main()
