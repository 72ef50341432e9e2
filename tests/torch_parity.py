"""dptrain vs PyTorch on a whole ResNet-9: the same initial weights (written by this script),
the same batch, the same recipe for two steps (SGD with Nesterov momentum and weight decay,
label smoothing, BatchNorm in training mode). Checks the model builders, every layer's forward
and backward in context, the loss, the optimizer and the running-statistics update at once.

The reference is PyTorch in float64. Two training steps through BatchNorm and max-pooling are
ill-conditioned (a rounding difference flips a near-tie of a max-pool window), so PyTorch in
float32 itself lands up to ~1e-3 away from float64 on the input-side layers. The criterion is
therefore relative to that: every tensor of dptrain (float32) must be no further from float64
than 3x PyTorch-float32's distance, with a floor of 1e-5. A wiring or formula error is orders of
magnitude above either. The first step's loss must match to 1e-6.

usage: torch_parity.py WORKDIR TRAIN.h5 TEST.h5 -- DPTRAIN-COMMAND..."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "peer"))
import dpt_peer  # noqa: E402

workdir, train_h5, test_h5 = sys.argv[1:4]
dptrain = sys.argv[sys.argv.index("--") + 1:]
torch.manual_seed(0)
torch.set_num_threads(1)
N, WIDTH, LR, WD, MOM, SMOOTH = 64, 8, 0.1, 0.01, 0.9, 0.1
failures = 0
checks = 0


def check(ok, msg):
    global failures, checks
    checks += 1
    if not ok:
        failures += 1
    print(("ok: " if ok else "FAILED: ") + msg, flush=True)


for norm in ("batch", "none"):
    images, labels, mean, std = dpt_peer.load_split(train_h5, N)
    model = dpt_peer.ResNet9(1, 10, WIDTH, norm == "batch", zero_init_residual=False)
    # Non-trivial BatchNorm state so that gamma, beta and the running statistics all matter.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    run = os.path.join(workdir, f"parity-{norm}")
    os.makedirs(run, exist_ok=True)
    init = os.path.join(run, "init.h5")
    with h5py.File(init, "w") as f:
        for k, v in model.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            group = "buffers" if "running_" in k else "params"
            f[f"{group}/{k}"] = v.detach().numpy().astype(np.float32)

    sets = {"model.name": "resnet9", "model.width": WIDTH, "model.norm": norm, "model.zero_init_residual": "false",
            "data.train": train_h5, "data.test": test_h5, "data.train_subset": N, "data.test_subset": 100,
            "data.crop_padding": 0, "data.flip": "false", "train.batch_size": N, "train.epochs": 2,
            "train.max_steps": 2, "train.log_every": 1, "train.label_smoothing": SMOOTH, "train.init_weights": init,
            "train.progress": "off", "optim.lr": LR, "optim.momentum": MOM, "optim.nesterov": "true",
            "optim.weight_decay": WD, "schedule.name": "constant", "schedule.scale_lr": "false"}
    cmd = dptrain + ["train", os.path.join(os.path.dirname(__file__), "..", "configs", "fashion-resnet9.ini"),
                     "--out", run]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        check(False, f"norm={norm}: dptrain failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        continue

    # The same two steps in PyTorch, in float64 and float32. Every epoch holds the same N samples
    # (batch = subset), in another order, which changes neither the batch statistics nor the
    # mean loss.
    init_state = {k: v.clone() for k, v in model.state_dict().items()}

    def torch_run(dtype):
        m = dpt_peer.ResNet9(1, 10, WIDTH, norm == "batch", zero_init_residual=False).to(dtype)
        m.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in init_state.items()})
        opt = dpt_peer.make_optimizer(m, {"optim": {"weight_decay": WD, "momentum": MOM, "nesterov": "true"}})
        for g in opt.param_groups:
            g["lr"] = LR
        lossf = torch.nn.CrossEntropyLoss(label_smoothing=SMOOTH)
        x = dpt_peer.normalize(images, mean, std).to(dtype)
        m.train()
        losses = []
        for step in range(2):
            opt.zero_grad()
            loss = lossf(m(x), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return m.state_dict(), losses

    ref, losses = torch_run(torch.float64)
    t32, _ = torch_run(torch.float32)

    with open(os.path.join(run, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f]
    dl = [l["loss"] for l in lines if l["type"] == "train"]
    rel = abs(dl[0] - losses[0]) / abs(losses[0])
    check(rel < 1e-6, f"norm={norm}: step-1 loss dptrain {dl[0]:.8f} vs PyTorch float64 {losses[0]:.8f} "
                      f"(rel {rel:.2e})")
    with h5py.File(os.path.join(run, "weights.h5"), "r") as f:
        worst, worst_name, worst_d, worst_t, n = 0.0, "", 0.0, 0.0, 0
        for k, v in ref.items():
            if k.endswith("num_batches_tracked"):
                continue
            group = "buffers" if "running_" in k else "params"
            if f"{group}/{k}" not in f:
                check(False, f"norm={norm}: {group}/{k} missing in dptrain's weight file")
                continue
            t = v.detach().double().numpy()
            scale = max(np.linalg.norm(t), 1e-12)
            ed = np.linalg.norm(np.asarray(f[f"{group}/{k}"], dtype=np.float64) - t) / scale
            et = np.linalg.norm(t32[k].double().numpy() - t) / scale
            ratio = ed / max(1e-5, 3 * et)
            n += 1
            if ratio > worst:
                worst, worst_name, worst_d, worst_t = ratio, k, ed, et
        check(n == len([k for k in ref if not k.endswith("num_batches_tracked")]), f"norm={norm}: {n} tensors compared")
        check(worst <= 1.0, f"norm={norm}: after 2 steps every tensor within max(1e-5, 3x PyTorch-float32's error) of "
                            f"PyTorch float64; tightest {worst_name}: dptrain {worst_d:.2e}, PyTorch float32 {worst_t:.2e}")
        # The weights moved: agreement of untouched weights would prove nothing.
        with h5py.File(init, "r") as fi:
            moved = min(np.linalg.norm(np.asarray(f[f"params/{k}"]) - np.asarray(fi[f"params/{k}"])) for k in fi["params"])
        check(moved > 1e-4, f"norm={norm}: every parameter tensor moved in 2 steps (smallest change {moved:.3g})")

print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures or not checks else 0)
