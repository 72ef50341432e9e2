"""PyTorch peer of dptrain: the same networks, data, augmentation and recipe, for benchmarks
(benchmarks/*.sh) and for the parity test (tests/mpi/torch_parity.sh).

Module attribute names are chosen so that state_dict keys equal dptrain's parameter and buffer
names (prep.conv.weight, layer1.res1.bn.running_mean, fc.weight, ...)."""
import configparser
import math

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNorm(nn.Module):
    """3x3 conv -> BatchNorm -> ReLU, or 3x3 conv with bias -> ReLU (norm=none)."""

    def __init__(self, cin, cout, batchnorm=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)
        self.bn = nn.BatchNorm2d(cout) if batchnorm else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x)


class Stage(nn.Module):
    def __init__(self, cin, cout, residual, batchnorm=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)
        self.bn = nn.BatchNorm2d(cout) if batchnorm else None
        self.residual = residual
        if residual:
            self.res1 = ConvNorm(cout, cout, batchnorm)
            self.res2 = ConvNorm(cout, cout, batchnorm)

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        x = F.max_pool2d(F.relu(x), 2)
        if self.residual:
            x = x + self.res2(self.res1(x))
        return x


class ResNet9(nn.Module):
    """dptrain's resnet9 (the DAWNBench CIFAR network), width w: channels w-2w-4w-8w."""

    def __init__(self, in_channels=1, num_classes=10, width=16, batchnorm=True, zero_init_residual=True):
        super().__init__()
        w = width
        self.prep = ConvNorm(in_channels, w, batchnorm)
        self.layer1 = Stage(w, 2 * w, True, batchnorm)
        self.layer2 = Stage(2 * w, 4 * w, False, batchnorm)
        self.layer3 = Stage(4 * w, 8 * w, True, batchnorm)
        self.fc = nn.Linear(8 * w, num_classes, bias=False)
        # dptrain's initialisation scheme: Kaiming normal (fan_out) for convolutions, PyTorch's
        # default for the linear layer, BatchNorm gamma 1 (0 for the last of a residual branch).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if batchnorm and zero_init_residual:
            for stage in (self.layer1, self.layer3):
                nn.init.zeros_(stage.res2.bn.weight)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        x = torch.amax(x, dim=(2, 3))
        return self.fc(x) * 0.125


def read_ini(path, overrides=()):
    """dptrain's INI (with ';' comments) plus section.key=value overrides, as strings."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    cp.read(path)
    cfg = {s: dict(cp[s]) for s in cp.sections()}
    for o in overrides:
        k, v = o.split("=", 1)
        sec, key = k.split(".", 1)
        cfg.setdefault(sec, {})[key] = v
    return cfg


def get(cfg, sec, key, default, kind=str):
    v = cfg.get(sec, {}).get(key, default)
    if kind is bool:
        return str(v).lower() in ("1", "true", "yes", "on")
    return kind(v)


def load_split(path, subset=0):
    """A dptrain HDF5 split: uint8 images (N, C, H, W), labels, mean/std attributes."""
    with h5py.File(path, "r") as f:
        n = f["images"].shape[0] if subset <= 0 else min(subset, f["images"].shape[0])
        images = torch.from_numpy(np.asarray(f["images"][:n]))
        labels = torch.from_numpy(np.asarray(f["labels"][:n]).astype(np.int64))
        mean = torch.tensor(np.asarray(f.attrs["mean"], dtype=np.float32).reshape(-1))
        std = torch.tensor(np.asarray(f.attrs["std"], dtype=np.float32).reshape(-1))
    return images, labels, mean, std


def augment(images_u8, mean, std, pad, flip, gen):
    """Per-sample random crop (zero padding in pixel space) and horizontal flip, then
    normalisation; the same transformation dptrain applies."""
    x = images_u8.float()
    n, c, h, w = x.shape
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        out = torch.empty_like(x)
        for oy in range(2 * pad + 1):
            for ox in range(2 * pad + 1):
                sel = ((dy == oy) & (dx == ox)).nonzero(as_tuple=True)[0]
                if len(sel):
                    out[sel] = xp[sel, :, oy:oy + h, ox:ox + w]
        x = out
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return (x / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]


def normalize(images_u8, mean, std):
    return (images_u8.float() / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]


class Schedule:
    """dptrain's schedule_at (src/optim/schedule.c), the onecycle/step/cosine/constant forms."""

    def __init__(self, cfg, global_batch, steps_per_epoch, total_steps):
        self.kind = get(cfg, "schedule", "name", "onecycle")
        lr = get(cfg, "optim", "lr", 0.1, float)
        ref = get(cfg, "schedule", "reference_batch", 256, float)
        self.peak = lr * (global_batch / ref if get(cfg, "schedule", "scale_lr", True, bool) else 1.0)
        self.start = get(cfg, "schedule", "warmup_start_factor", 0.0, float)
        self.spe = steps_per_epoch
        self.total = max(total_steps, 1)
        self.warm = round(get(cfg, "schedule", "warmup_epochs", 0.0, float) * steps_per_epoch)
        self.final = get(cfg, "schedule", "final_lr_factor", 0.0, float)
        self.peak_step = max(1, round(get(cfg, "schedule", "peak_fraction", 0.25, float) * self.total))
        self.milestones = [float(v) for v in get(cfg, "schedule", "milestones", "30,60,80").split(",")]
        self.gamma = get(cfg, "schedule", "gamma", 0.1, float)
        self.mom = get(cfg, "optim", "momentum", 0.9, float)
        self.cycle = get(cfg, "schedule", "cycle_momentum", False, bool)
        self.mmin = get(cfg, "schedule", "momentum_min", 0.85, float)
        self.mmax = get(cfg, "schedule", "momentum_max", 0.95, float)

    def at(self, step):
        lerp = lambda a, b, t: a + (b - a) * t
        if self.kind == "onecycle":
            if step < self.peak_step:
                t = (step + 1) / self.peak_step
                return lerp(self.start * self.peak, self.peak, t), (lerp(self.mmax, self.mmin, t) if self.cycle else self.mom)
            span = self.total - self.peak_step
            t = min(1.0, (step - self.peak_step) / span) if span > 0 else 1.0
            return lerp(self.peak, self.final * self.peak, t), (lerp(self.mmin, self.mmax, t) if self.cycle else self.mom)
        if step < self.warm:
            return lerp(self.start * self.peak, self.peak, (step + 1) / self.warm), self.mom
        if self.kind == "step":
            e = step / self.spe
            return self.peak * self.gamma ** sum(e >= m for m in self.milestones), self.mom
        if self.kind == "cosine":
            span = self.total - self.warm
            t = min(1.0, (step - self.warm) / span) if span > 0 else 1.0
            return self.final * self.peak + (1 - self.final) * self.peak * 0.5 * (1 + math.cos(math.pi * t)), self.mom
        return self.peak, self.mom


def make_optimizer(model, cfg):
    """SGD with dptrain's parameter groups: no weight decay on BatchNorm parameters and biases."""
    wd = get(cfg, "optim", "weight_decay", 5e-4, float)
    decay_all = get(cfg, "optim", "decay_bn_bias", False, bool)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim > 1 or decay_all else no_decay).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                           lr=0.1, momentum=get(cfg, "optim", "momentum", 0.9, float),
                           nesterov=get(cfg, "optim", "nesterov", True, bool))


def build_model(cfg, in_channels, num_classes):
    name = get(cfg, "model", "name", "resnet9")
    if name != "resnet9":
        raise SystemExit(f"dpt_peer: only resnet9 has a PyTorch peer here, not {name}")
    return ResNet9(in_channels, num_classes, get(cfg, "model", "width", 64, int),
                   get(cfg, "model", "norm", "batch") == "batch", get(cfg, "model", "zero_init_residual", True, bool))
