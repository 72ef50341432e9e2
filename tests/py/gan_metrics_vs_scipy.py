"""FID and Inception Score against the reference arithmetic in numpy/scipy: numpy.cov and
scipy.linalg.sqrtm as in pytorch-fid's calculate_frechet_distance, and improved-gan's
inception_score loop. Features are correlated (non-commuting covariances), with means far from
zero; one case has fewer samples than dimensions (singular covariances), where sqrtm itself is
only accurate to about 1e-8 relative, so that case gets a looser bound.
usage: gan_metrics_vs_scipy.py GAN_METRICS_TOOL"""
import subprocess
import sys

import numpy as np
from scipy import linalg

tool = sys.argv[1]
rng = np.random.default_rng(7)
failed = False


def features(n, d, shift):
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix + shift).astype(np.float32)


def reference_fid(x1, x2):
    x1, x2 = x1.astype(np.float64), x2.astype(np.float64)
    mu1, mu2 = x1.mean(0), x2.mean(0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def reference_is(p, splits):
    scores = []
    m = p.shape[0] // splits
    for k in range(splits):
        part = p[k * m:(k + 1) * m].astype(np.float64)
        py = part.mean(0, keepdims=True)
        kl = np.where(part > 0, part * (np.log(np.where(part > 0, part, 1)) - np.log(py)), 0)
        scores.append(np.exp(kl.sum(1).mean()))
    return np.mean(scores), np.std(scores)


def check(name, ours, ref, tol):
    global failed
    rel = abs(ours - ref) / max(abs(ref), 1e-300)
    status = "ok" if rel <= tol else "FAIL"
    print(f"{status} {name}: ours {ours:.12g}, reference {ref:.12g}, relative error {rel:.2e} (bound {tol:g})")
    failed |= rel > tol


for d, n1, n2, tol in [(8, 500, 700, 1e-11), (64, 2000, 1500, 1e-11), (256, 3000, 3000, 1e-11), (48, 30, 40, 1e-6)]:
    x1, x2 = features(n1, d, 3.0), features(n2, d, 2.5)
    out = subprocess.run([tool, "fid", str(d), str(n1), str(n2)], input=x1.tobytes() + x2.tobytes(),
                         capture_output=True, check=True).stdout
    check(f"FID d={d} n={n1},{n2}", float(out), reference_fid(x1, x2), tol)

for k, n, splits in [(10, 1000, 10), (100, 5003, 10), (7, 640, 3)]:
    logits = rng.normal(size=(n, k)) * 3
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    out = subprocess.run([tool, "is", str(k), str(n), str(splits)], input=p.tobytes(), capture_output=True,
                         check=True).stdout.split()
    mean, std = reference_is(p, splits)
    check(f"IS mean k={k} n={n} splits={splits}", float(out[0]), mean, 1e-10)
    check(f"IS std k={k} n={n} splits={splits}", float(out[1]), std, 1e-10)

sys.exit(1 if failed else 0)
