"""PyTorch's side of benchmarks/allreduce_cpu.sh: torch.distributed.all_reduce (gloo, CPU
tensors, in place, sum) timed like `dptrain bench allreduce`: sizes doubling from --min to --max
bytes, --warmup untimed calls, --iters timed calls, the slowest rank's mean. Run one process per
rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. Rank 0 prints "size time_us" lines.
    torch_allreduce.py [--min 8] [--max 67108864] [--warmup 5] [--iters 20]"""
import argparse
import os
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min", type=int, default=8)
    ap.add_argument("--max", type=int, default=64 << 20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo")
    size = a.min
    while size <= a.max:
        x = torch.zeros((size + 3) // 4, dtype=torch.float32)
        for _ in range(a.warmup):
            dist.all_reduce(x)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            dist.all_reduce(x)
        t = torch.tensor([(time.perf_counter() - t0) / a.iters], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if dist.get_rank() == 0:
            print(f"{x.numel() * 4} {t.item() * 1e6:.2f}", flush=True)
        size *= 2
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
