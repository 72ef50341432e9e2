"""The PyTorch peer of dptrain's BigGAN training step: BigGAN-PyTorch itself (its BigGAN.py,
layers.py; from a checkout given with --repo, not shipped here), one training step as its
train_fns.GAN_training_function runs it: D steps on G_D(z, y, x) with D(cat(fake, real)), hinge
losses, Adam; one G step with D's parameters frozen, ortho regularisation (not on the shared
embedding), Adam; an EMA update of a G copy. Random real images. Prints the parameter counts and
the median step time.
    python3 torch_biggan_step.py --repo BigGAN-PyTorch --ch 16 --dim-z 64 --shared-dim 64 --hier \
        --attn 16 --batch 64 --d-steps 2 --steps 25 --threads 2"""
import argparse
import statistics
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--ch", type=int, default=16)
    ap.add_argument("--dim-z", type=int, default=64)
    ap.add_argument("--shared-dim", type=int, default=64)
    ap.add_argument("--hier", action="store_true")
    ap.add_argument("--attn", default="16")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--d-steps", type=int, default=2)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, a.repo)
    import BigGAN  # noqa: E402  (BigGAN-PyTorch's module)

    kw = dict(resolution=a.resolution, n_classes=a.classes, G_shared=True, shared_dim=a.shared_dim, hier=a.hier,
              G_lr=2e-4, G_B1=0.0, G_B2=0.999, adam_eps=1e-6, D_lr=2e-4, D_B1=0.0, D_B2=0.999)
    G = BigGAN.Generator(G_ch=a.ch, dim_z=a.dim_z, G_attn=a.attn, **{k: v for k, v in kw.items() if not k.startswith("D")})
    D = BigGAN.Discriminator(D_ch=a.ch, D_attn=a.attn, resolution=a.resolution, n_classes=a.classes,
                             D_lr=2e-4, D_B1=0.0, D_B2=0.999, adam_eps=1e-6)
    G_ema = BigGAN.Generator(G_ch=a.ch, dim_z=a.dim_z, G_attn=a.attn, skip_init=True, no_optim=True,
                             **{k: v for k, v in kw.items() if not k.startswith(("D", "G_lr", "G_B", "adam"))})
    G_ema.load_state_dict(G.state_dict())
    GD = BigGAN.G_D(G, D)
    nG = sum(p.numel() for p in G.parameters())
    nD = sum(p.numel() for p in D.parameters())
    print(f"PEER BigGAN-PyTorch G {nG} D {nD} parameters; batch {a.batch}, {a.d_steps} D steps, {a.threads} threads")
    bs = a.batch
    x = torch.rand(bs * a.d_steps, 3, a.resolution, a.resolution) * 2 - 1
    y = torch.randint(0, a.classes, (bs * a.d_steps,))
    shared = list(G.shared.parameters())

    def toggle(m, on):
        for p in m.parameters():
            p.requires_grad = on

    def step():
        G.train(); D.train()
        toggle(D, True); toggle(G, False)
        for k in range(a.d_steps):
            D.optim.zero_grad()
            z = torch.randn(bs, a.dim_z); yf = torch.randint(0, a.classes, (bs,))
            d_fake, d_real = GD(z, yf, x[k * bs:(k + 1) * bs], y[k * bs:(k + 1) * bs], train_G=False)
            loss = torch.mean(torch.relu(1. - d_real)) + torch.mean(torch.relu(1. + d_fake))
            loss.backward()
            D.optim.step()
        toggle(D, False); toggle(G, True)
        G.optim.zero_grad()
        z = torch.randn(bs, a.dim_z); yf = torch.randint(0, a.classes, (bs,))
        g_loss = -torch.mean(GD(z, yf, train_G=True))
        g_loss.backward()
        with torch.no_grad():  # utils.ortho(G, 1e-4, blacklist=shared)
            for p in G.parameters():
                if p.dim() < 2 or any(p is s for s in shared):
                    continue
                w = p.view(p.shape[0], -1)
                p.grad += 1e-4 * (2 * torch.mm(torch.mm(w, w.t()) * (1. - torch.eye(w.shape[0])), w)).view(p.shape)
        G.optim.step()
        with torch.no_grad():  # ema.update with decay 0.999
            for (k, e), (_, s) in zip(G_ema.state_dict().items(), G.state_dict().items()):
                if e.dtype.is_floating_point:
                    e.copy_(e * 0.999 + s * 0.001)

    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    warm = 2 if a.steps > 10 else 0
    print(f"PEER median {statistics.median(times[warm:]):.4f} s per step over {a.steps - warm} steps")


if __name__ == "__main__":
    main()
