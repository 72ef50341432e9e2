"""The PyTorch peer of `dptrain bench step` for ResNet-50: torchvision's resnet50 (v1.5, the same
25,557,032 parameters), synthetic images, cross-entropy, SGD with momentum 0.9 and weight decay,
one optimizer step per batch. On a GPU: channels_last and autocast bf16 (or --precision fp32,
tf32, fp16 with GradScaler), as the issue's reference; on the CPU: fp32. Times forward+loss,
backward and the update with the device synchronised at each boundary, and prints medians and a
RESULT line like dptrain's.
    python3 torch_resnet50_step.py --batch 256 --size 224 --steps 20 --warmup 5 --device cuda"""
import argparse
import statistics
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "tf32", "bf16", "fp16"])
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cpu":
        a.precision = "fp32"
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50(num_classes=a.classes).to(dev).to(memory_format=torch.channels_last)
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-5)
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    scaler = torch.cuda.amp.GradScaler() if a.precision == "fp16" else None
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t_step, t_fwd, t_bwd, t_upd = [], [], [], []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        sync()
        t2 = time.perf_counter()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        sync()
        t3 = time.perf_counter()
        if s >= a.warmup:
            t_step.append(t3 - t0)
            t_fwd.append(t1 - t0)
            t_bwd.append(t2 - t1)
            t_upd.append(t3 - t2)
    ms = 1e3 * statistics.median(t_step)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} on {name}, {a.precision}, "
          f"{nparams} parameters, batch {a.batch}, {a.size}x{a.size}")
    print(f"step: median {ms:.2f} ms, {1e3 * a.batch / ms:.1f} img/s (forward+loss "
          f"{1e3 * statistics.median(t_fwd):.2f} ms, backward {1e3 * statistics.median(t_bwd):.2f} ms, "
          f"update {1e3 * statistics.median(t_upd):.2f} ms); last loss {loss.item():.4f}")
    print(f"RESULT torch_step model=resnet50 batch={a.batch} size={a.size} median_ms={ms:.3f} "
          f"img_s={1e3 * a.batch / ms:.2f}")


if __name__ == "__main__":
    main()
