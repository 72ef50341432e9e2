#!/usr/bin/env python3
"""Data-parallel weak-scaling model for dptrain: ResNet-50 and BigGAN-128 at 8..256 GPUs.

Everything this script prints is a PREDICTION from the formulas below and from inputs that are
cited, assumed or (only where you pass them) measured. It measures nothing itself.

Weak scaling: every GPU keeps the same per-GPU batch, so the compute time of a step, T_c, does
not depend on the number of GPUs n; only the gradient allreduce grows with n.

1. Allreduce time (nccl-tests convention). An allreduce of S bytes on n ranks takes
       t(S, n) = alpha(n) + S * 2(n-1)/n / busbw(n)
   because nccl-tests defines algbw = S / time and busbw = algbw * 2(n-1)/n (the bytes each
   rank puts on its slowest link in a ring, per second). busbw(n) is the intra-node value for
   n <= gpus-per-node and the inter-node value beyond.
   alpha(n) is the ring's latency: 2(n-1) sequential hops, of which 2(N-1) cross nodes
   (N = ceil(n / gpus-per-node)):
       alpha(n) = (2(n-1) - 2(N-1)) * lat_intra + 2(N-1) * lat_inter
   which is NCCL's own ring model (src/graph/tuning.cc: (nsteps-nInterSteps)*intraLat +
   nInterSteps*interLat, nInterSteps = 2*(nNodes-1)). On one node it is 2(n-1) * lat_intra.
   NCCL would switch to Tree / NVLS-Tree (log2 of the node count hops) at large n, so this
   ring latency term is pessimistic at 128-256 GPUs; --lat-inter-us / --lat-intra-us move it.

2. Buckets. As in dptrain (src/comm/buckets.c), gradients are grouped in the order backward
   produces them into buckets of bucket_mb MiB counted in float32 gradient bytes, whatever the
   wire type; a bucket carries elements * b bytes on the wire (b = 4 fp32, 2 bf16). So a model
   of P parameters has k = ceil(4P / bucket) buckets, k-1 full ones and a last remainder, and
   T_comm = sum_i t(S_i, n) = k * alpha(n) + P*b * 2(n-1)/n / busbw(n).
   (dptrain closes buckets at parameter boundaries; the model splits at exact byte counts.)

3. Overlap. Backward takes T_bwd = f_bwd * T_c and is assumed to produce gradient bytes at a
   uniform rate, so bucket j is ready at r_j = T_bwd * (bytes of buckets 1..j) / (P*b).
   Buckets share the same links, so they are modelled as a serial queue (a bucket starts when
   it is ready and the previous one is done; NCCL runs them in order on one stream), and the
   last one finishes at max_j (r_j + sum_{i>=j} t_i), so
       exposed = max_j (r_j + sum_{i>=j} t_i) - T_bwd       (>= 0)
   The j = k term is t_last: the last bucket is ready only when backward ends, so it is always
   exposed. The j = 1 term is T_comm - W with W = T_bwd - r_1 = T_bwd * (1 - S_1 / (P*b)),
   the window between the first bucket being ready and the end of backward. With equal
   buckets the maximum is one of these two or j = k-1 (a full bucket still in flight when the
   small remainder becomes ready), so this is "t_last + max(0, T_comm - t_last - W)" made
   exact for a serial bucket queue.
   The pessimistic bound ignores overlap: exposed = T_comm.

4. Efficiency(n) = T_c / (T_c + exposed(n)); 1 at n = 1, where nothing is reduced.

5. BigGAN. A dptrain GAN step (src/train/gan.c) is d_steps D sub-steps, each allreducing D's
   gradients, then one G sub-step allreducing G's (D's weight gradients are skipped in the G
   step, as BigGAN-PyTorch freezes D). Each sub-step has its own bucket queue and its exposed
   time adds up. T_c is split between sub-steps by a FLOP-style cost model, with
   c = f_bwd / (1 - f_bwd) = backward/forward cost (2 at f_bwd = 2/3), r = G forward cost / D
   forward cost at the same batch, and D's forward cost as the unit:
       D sub-step: G forward r (no grad) + D forward and backward on real and fake halves
                   2(1 + c); D's gradients appear during D's backward, 2c of it.
       G sub-step: G forward r + D forward 1 + D backward to its input only c/2 + G backward
                   r*c; G's gradients appear during G's backward, r*c of it.

Not modelled: BigGAN's cross-replica BatchNorm allreduces in G (configs/imagenet-biggan128.ini
sets model.bn_group = 0; small, latency-bound and not overlapped), the data loader, stragglers,
stream contention between the allreduce and backward kernels, the optimizer update (part of
T_c only if T_c was measured with it, as `dptrain bench step` does), and NCCL algorithm switching.

Run:  python3 benchmarks/scaling_model.py [--help]      python3 benchmarks/scaling_model.py --selftest
Measurements: --from-bench FILE (a `RESULT bench_step ... step_ms=X` or `median_ms=X` line, as
`dptrain bench step` prints) and --from-allreduce FILE (`dptrain bench allreduce` or nccl-tests
table; busbw at the largest size), or --measured-step-ms / --measured-busbw.
"""
import argparse
import re
import sys

MIB = 1024 * 1024

# name -> (default, kind, source). kind: "cited" (a published or project figure), "assumed"
# (a stated guess); values the user passes become "user-set", measurements "measured".
DEFAULTS = {
    "gpus": ("8,16,32,64,128,256", "assumed", "GPU counts to predict"),
    "gpus_per_node": (8, "assumed", "HGX/DGX H100 node: 8 GPUs on NVLink/NVSwitch, one 400 Gb/s NIC per GPU"),
    "busbw_intra": (370.0, "cited", "GB/s, NCCL ring allreduce busbw on 8x H100 NVSwitch: 450 GB/s line rate, "
                    "~370 GB/s after protocol overhead (NCCL_ALGO=RING); NVLS reaches ~480 GB/s busbw "
                    "(S. Jeaugey, NVIDIA, github.com/NVIDIA/nccl-tests/issues/212)"),
    "busbw_inter": (46.0, "cited", "GB/s per GPU, NCCL ring busbw across nodes with one NDR 400 Gb/s NIC per GPU: "
                    "'46-48GB/s per NIC' (NVIDIA, github.com/NVIDIA/nccl-tests/issues/290); low end taken"),
    "lat_intra_us": (5.0, "assumed", "us per intra-node ring hop (NVLink)"),
    "lat_inter_us": (10.0, "assumed", "us per inter-node ring hop (InfiniBand)"),
    "bucket_mb": (25.0, "cited", "MiB of float32 gradients per bucket: dptrain's comm.bucket_mb default"),
    "comm_dtype": ("fp32", "cited", "gradient wire type: dptrain's comm.grad_dtype default (bf16 halves the bytes)"),
    "f_bwd": (2.0 / 3.0, "assumed", "backward share of a step's compute (backward ~ 2x forward FLOPs)"),
    "resnet50_params": (25557032, "cited", "ResNet-50 v1.5 parameters, torchvision's count (dptrain test_models)"),
    "resnet50_batch": (256, "assumed", "per-GPU batch the ResNet-50 step time refers to"),
    "resnet50_step_ms": (256 / 3000 * 1e3, "assumed", "ms per step at batch 256, bf16: ~3000 img/s per H100, taken as "
                         "a conservative H100 figure above the cited 2470 img/s of 1x A100 80GB, AMP "
                         "(NVIDIA DeepLearningExamples PyTorch resnet50v1.5 README); MLPerf-class H100 code is faster"),
    "biggan_g_params": (70433988, "cited", "BigGAN-128 G at ch 96, BigGAN-PyTorch's count (dptrain test_biggan)"),
    "biggan_d_params": (87982370, "cited", "BigGAN-128 D at ch 96, BigGAN-PyTorch's count (dptrain test_biggan)"),
    "biggan_d_steps": (2, "cited", "D steps per G step (Brock et al. 2019; BigGAN-PyTorch; dptrain gan.d_steps)"),
    "biggan_batch": (32, "assumed", "per-GPU batch the BigGAN step time refers to"),
    "biggan_step_ms": (150.0, "assumed", "ms per full step (d_steps D + 1 G) per GPU at batch 32 on an H100: "
                       "a placeholder to be replaced by a measurement"),
    "biggan_g_to_d_cost": (1.0, "assumed", "G forward cost / D forward cost at the same batch (splits T_c)"),
}

REFERENCES = [
    "Goyal et al. 2017, 'Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour': ResNet-50 "
    "(Caffe2, P100, 8 GPUs per server, 50 Gb/s Ethernet), ~90% scaling efficiency from 8 to 256 GPUs.",
    "Sergeev & Del Balso 2018, 'Horovod: fast and easy distributed deep learning in TensorFlow': "
    "~90% scaling efficiency at 512 GPUs for Inception V3 and ResNet-101 (68% for VGG-16).",
]


# ---------------------------------------------------------------- the model
def nodes_of(n, gpn):
    return -(-n // gpn)


def ring_alpha(n, p):
    """Ring allreduce latency in s: 2(n-1) hops, 2(N-1) of them between nodes (NCCL's model)."""
    steps, inter = 2 * (n - 1), 2 * (nodes_of(n, p["gpus_per_node"]) - 1)
    return ((steps - inter) * p["lat_intra_us"] + inter * p["lat_inter_us"]) * 1e-6


def busbw(n, p):
    """GB/s: intra-node (NVLink) tier up to one node, inter-node (network) tier beyond."""
    return p["busbw_intra"] if n <= p["gpus_per_node"] else p["busbw_inter"]


def bucket_bytes(params, p):
    """Wire bytes of each bucket, in backward order: buckets close on float32 gradient bytes
    (dptrain), so bf16 keeps the bucket count and halves every bucket's bytes."""
    elems = max(1, int(p["bucket_mb"] * MIB) // 4)
    b = 2 if p["comm_dtype"] == "bf16" else 4
    full, rest = divmod(params, elems)
    return [elems * b] * full + ([rest * b] if rest else [])


def allreduce_s(nbytes, n, p, latency=True):
    """t(S, n) = alpha(n) + S * 2(n-1)/n / busbw(n); 0 on one rank."""
    if n <= 1:
        return 0.0
    return (ring_alpha(n, p) if latency else 0.0) + nbytes * 2 * (n - 1) / n / (busbw(n, p) * 1e9)


def exposed_s(sizes, n, t_bwd, p):
    """(T_comm, exposed) of one bucket queue: exposed = max_j (r_j + sum_{i>=j} t_i) - T_bwd."""
    t = [allreduce_s(s, n, p) for s in sizes]
    total_bytes, done, worst = sum(sizes), 0, 0.0
    for j, s in enumerate(sizes):
        done += s
        r_j = t_bwd * done / total_bytes  # bucket j is ready once backward produced its bytes
        worst = max(worst, r_j + sum(t[j:]))
    return sum(t), max(0.0, worst - t_bwd)


def substeps(model, p):
    """[(name, params, T_sub in s, T_bwd_sub in s, count)] of one training step."""
    f = p["f_bwd"]
    if model == "resnet50":
        tc = p["resnet50_step_ms"] * 1e-3
        return [("step", p["resnet50_params"], tc, f * tc, 1)]
    c, r, d = f / (1 - f), p["biggan_g_to_d_cost"], p["biggan_d_steps"]
    d_cost, d_bwd = r + 2 * (1 + c), 2 * c  # units: one D forward at the per-GPU batch
    g_cost, g_bwd = r + 1 + c / 2 + r * c, r * c
    unit = p["biggan_step_ms"] * 1e-3 / (d * d_cost + g_cost)
    return [("D", p["biggan_d_params"], d_cost * unit, d_bwd * unit, d),
            ("G", p["biggan_g_params"], g_cost * unit, g_bwd * unit, 1)]


def predict(model, n, p):
    """dict: bytes allreduced per GPU per step, T_c, T_comm, exposed, both efficiencies."""
    tc = tcomm = exp = nbytes = 0.0
    for _, params, t_sub, t_bwd, count in substeps(model, p):
        sizes = bucket_bytes(params, p)
        c, e = exposed_s(sizes, n, t_bwd, p)
        tc, tcomm, exp, nbytes = tc + count * t_sub, tcomm + count * c, exp + count * e, nbytes + count * sum(sizes)
    return {"bytes": nbytes, "tc": tc, "tcomm": tcomm, "exposed": exp,
            "eff": tc / (tc + exp), "eff_noov": tc / (tc + tcomm)}


# ---------------------------------------------------------------- measurement files
def parse_bench(text):
    """The last `RESULT bench_step k=v ...` line as a dict; step time from step_ms, else median_ms
    (what `dptrain bench step` prints). Also the log's backward share when present."""
    found, log, bwd = None, None, None
    for line in text.splitlines():
        m = re.search(r"step: median ([\d.]+) ms.*?backward ([\d.]+) ms", line)
        if m:  # dptrain's log line that comes just before its RESULT line
            log = float(m.group(2)) / float(m.group(1))
        i = line.find("RESULT bench_step")
        if i >= 0:
            found = dict(kv.split("=", 1) for kv in line[i + len("RESULT bench_step"):].split() if "=" in kv)
            bwd, log = log, None
    if found is None:
        raise ValueError("no 'RESULT bench_step' line")
    key = "step_ms" if "step_ms" in found else "median_ms" if "median_ms" in found else None
    if key is None:
        raise ValueError("the RESULT bench_step line has neither step_ms= nor median_ms=")
    found["_ms"], found["_key"] = float(found[key]), key
    if bwd is not None:
        found["_f_bwd"] = bwd
    return found


def parse_allreduce(text, dtype, pick, bucket_wire_bytes):
    """busbw (GB/s) from an nccl-tests-like table: data lines `size count type time algbw busbw
    #wrong` (dptrain bench allreduce), or all_reduce_perf's 13 columns (in-place busbw). Rows of
    the wire type (float for fp32, bf16) are preferred when the file has them. Returns
    (busbw, row, nodes or None)."""
    rows, nodes = [], None
    for line in text.splitlines():
        m = re.search(r"(\d+) rank\(s\) on (\d+) node\(s\)", line)
        if m:
            nodes = int(m.group(2))
        f = line.split()
        if not f or line.lstrip().startswith("#"):
            continue
        try:
            if len(f) == 7:
                row = (int(f[0]), f[2], float(f[3]), float(f[4]), float(f[5]), int(f[6]))
            elif len(f) == 13:  # all_reduce_perf: size count type redop root | out-of-place | in-place
                row = (int(f[0]), f[2], float(f[9]), float(f[10]), float(f[11]), int(f[12]))
            else:
                continue
        except ValueError:
            continue
        rows.append(row + (nodes,))
    if not rows:
        raise ValueError("no data lines (size count type time algbw busbw #wrong)")
    want = {"fp32": "float", "bf16": "bf16"}[dtype]
    rows = [r for r in rows if r[1] == want] or rows
    if any(r[5] for r in rows):
        raise ValueError("the table reports wrong elements (#wrong > 0): not a valid measurement")
    if pick == "largest":
        row = max(rows, key=lambda r: r[0])  # the last one of the largest size
    else:
        row = min(rows, key=lambda r: abs(r[0] - bucket_wire_bytes))
    return row[4], row, row[6]


# ---------------------------------------------------------------- command line
def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    flag = lambda name: "--" + name.replace("_", "-")
    types = {"gpus": str, "comm_dtype": str, "gpus_per_node": int, "resnet50_params": int,
             "biggan_g_params": int, "biggan_d_params": int, "biggan_d_steps": int,
             "resnet50_batch": int, "biggan_batch": int}
    for name, (value, kind, source) in DEFAULTS.items():
        extra = {"choices": ["fp32", "bf16"]} if name == "comm_dtype" else {}
        shown = "%.4g" % value if isinstance(value, float) else value
        ap.add_argument(flag(name), type=types.get(name, float), default=None,
                        help="%s [default %s, %s]" % (source, shown, kind), **extra)
    m = ap.add_argument_group("measurements (dptrain bench step / bench allreduce)")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--measured-step-ms", type=float, help="measured T_c (ms per step per GPU)")
    g.add_argument("--from-bench", metavar="FILE", help="take T_c from a 'RESULT bench_step ... step_ms=X' line")
    m.add_argument("--measured-model", choices=["resnet50", "biggan"], default="resnet50",
                   help="model a measured step time belongs to (--from-bench: its model= key when that names one)")
    g = m.add_mutually_exclusive_group()
    g.add_argument("--measured-busbw", type=float, help="measured allreduce busbw, GB/s")
    g.add_argument("--from-allreduce", metavar="FILE", help="take busbw from an nccl-tests-like table")
    m.add_argument("--measured-busbw-tier", choices=["auto", "intra", "inter", "both"], default="auto",
                   help="tier a measured busbw replaces (auto: from the table's 'on M node(s)', else both)")
    m.add_argument("--allreduce-pick", choices=["largest", "bucket"], default="largest",
                   help="table row: the largest size, or the size nearest one bucket's wire bytes")
    ap.add_argument("--selftest", action="store_true", help="check the model's invariants and exit")
    return ap


def resolve(args):
    """Parameters p and the assumption list [(name, value, kind, source)]."""
    p, info, notes = {}, {}, []
    for name, (value, kind, source) in DEFAULTS.items():
        given = getattr(args, name)
        p[name] = value if given is None else given
        info[name] = (kind if given is None else "user-set", source)
    p["gpus"] = [int(x) for x in str(p["gpus"]).split(",") if x.strip()]
    if p["bucket_mb"] <= 0 or not 0 < p["f_bwd"] < 1 or min(p["gpus"]) < 1 or p["gpus_per_node"] < 1:
        sys.exit("scaling_model: need --bucket-mb > 0, 0 < --f-bwd < 1, GPU counts >= 1")

    step = None
    if args.measured_step_ms is not None:
        step = (args.measured_step_ms, args.measured_model, "--measured-step-ms (dptrain bench step)")
    elif args.from_bench:
        try:
            r = parse_bench(open(args.from_bench).read())
        except (OSError, ValueError) as e:
            sys.exit("scaling_model: --from-bench %s: %s" % (args.from_bench, e))
        model = r.get("model") if r.get("model") in ("resnet50", "biggan") else args.measured_model
        what = " ".join("%s=%s" % (k, v) for k, v in r.items() if not k.startswith("_"))
        step = (r["_ms"], model, "%s: RESULT bench_step %s (%s)" % (args.from_bench, what, r["_key"]))
        if "_f_bwd" in r:
            notes.append("%s also logs backward = %.3f of the step; pass --f-bwd %.3f to use it"
                         % (args.from_bench, r["_f_bwd"], r["_f_bwd"]))
        if r.get("batch", "").isdigit():  # the prediction is for the batch that was measured
            p[model + "_batch"], info[model + "_batch"] = int(r["batch"]), ("measured", "batch of " + args.from_bench)
    if step:
        key = step[1] + "_step_ms"
        p[key], info[key] = step[0], ("measured", step[2])

    bw, tier = None, args.measured_busbw_tier
    if args.measured_busbw is not None:
        bw = (args.measured_busbw, "--measured-busbw (dptrain bench allreduce)")
        tier = "both" if tier == "auto" else tier
    elif args.from_allreduce:
        wire = int(p["bucket_mb"] * MIB) // 4 * (2 if p["comm_dtype"] == "bf16" else 4)
        try:
            v, row, nodes = parse_allreduce(open(args.from_allreduce).read(), p["comm_dtype"],
                                            args.allreduce_pick, wire)
        except (OSError, ValueError) as e:
            sys.exit("scaling_model: --from-allreduce %s: %s" % (args.from_allreduce, e))
        if tier == "auto":
            tier = "both" if nodes is None else "inter" if nodes > 1 else "intra"
        bw = (v, "%s: busbw at %d B (%s, %s, %s node(s))" % (args.from_allreduce, row[0], row[1],
                                                            args.allreduce_pick, nodes if nodes else "?"))
        if row[1] != {"fp32": "float", "bf16": "bf16"}[p["comm_dtype"]]:
            notes.append("the allreduce table has no %s rows; used %s" % (p["comm_dtype"], row[1]))
    if bw:
        for t in (["busbw_intra", "busbw_inter"] if tier == "both" else ["busbw_" + tier]):
            p[t], info[t] = bw[0], ("measured", bw[1])
    rows = [(k, p[k], info[k][0], info[k][1]) for k in DEFAULTS]
    return p, rows, notes


# ---------------------------------------------------------------- output
HEADER = """\
dptrain data-parallel weak-scaling model: PREDICTIONS from the formulas and inputs below, not measurements.
  t(S,n)    = alpha(n) + S * 2(n-1)/n / busbw(n)     nccl-tests: busbw = algbw * 2(n-1)/n, algbw = S / time
  alpha(n)  = 2(n-N) * lat_intra + 2(N-1) * lat_inter N = ceil(n / gpus_per_node) nodes; NCCL's ring latency model
  busbw(n)  = busbw_intra if n <= gpus_per_node else busbw_inter
  buckets   : ceil(4P / bucket) buckets counted in float32 bytes (as dptrain), each carrying elements * b bytes
  T_comm    = sum over buckets of t(S_i, n)
  exposed   = max_j (r_j + sum_{i>=j} t_i) - T_bwd,   r_j = T_bwd * (bytes of buckets 1..j) / (P*b),
              T_bwd = f_bwd * T_c; >= t_last (the last bucket is always exposed) and >= T_comm - W,
              W = T_bwd - r_1 (overlap window after the first bucket is ready)
  efficiency = T_c / (T_c + exposed);  without overlap: T_c / (T_c + T_comm)
  BigGAN    : d_steps D sub-steps (D gradients) + 1 G sub-step (G gradients), each its own queue; T_c split by
              D: r + 2(1+c) (backward 2c), G: r + 1 + c/2 + rc (backward rc), c = f_bwd/(1-f_bwd)
  not modelled: cross-replica BatchNorm allreduces (BigGAN), loader, stragglers, kernel contention, NCCL tree/NVLS"""


def fmt(v):
    if isinstance(v, float):
        return "%.4g" % v
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def report(p, rows, notes):
    print(HEADER)
    print("\nInputs (cited = published or project figure, assumed = stated guess, measured = your file/flag):")
    for name, value, kind, source in rows:
        print("  %-20s %-12s %-9s %s" % (name, fmt(value), kind, source))
    for n in notes:
        print("  note: " + n)
    titles = {"resnet50": "ResNet-50 (%s parameters, per-GPU batch %d, T_c %.2f ms)"
              % (format(p["resnet50_params"], ","), p["resnet50_batch"], p["resnet50_step_ms"]),
              "biggan": "BigGAN-128 (G %s + D %s parameters, %d D steps + 1 G step, per-GPU batch %d, T_c %.2f ms)"
              % (format(p["biggan_g_params"], ","), format(p["biggan_d_params"], ","), p["biggan_d_steps"],
                 p["biggan_batch"], p["biggan_step_ms"])}
    for model in ("resnet50", "biggan"):
        k = ", ".join("%s %d bucket(s) x%d" % (name, len(bucket_bytes(params, p)), cnt)
                      for name, params, _, _, cnt in substeps(model, p))
        print("\n%s; %s gradients, %s" % (titles[model], p["comm_dtype"], k))
        print("  %5s %5s %11s %11s %11s %12s %15s" % ("GPUs", "nodes", "MB/step", "T_comm ms", "exposed ms",
                                                    "eff overlap", "eff no overlap"))
        for n in p["gpus"]:
            r = predict(model, n, p)
            print("  %5d %5d %11.1f %11.2f %11.2f %11.1f%% %14.1f%%" % (
                n, nodes_of(n, p["gpus_per_node"]), r["bytes"] / 1e6, r["tcomm"] * 1e3, r["exposed"] * 1e3,
                100 * r["eff"], 100 * r["eff_noov"]))
    print("\nPublished reference points (other hardware and software; for comparison only):")
    for ref in REFERENCES:
        print("  - " + ref)


# ---------------------------------------------------------------- selftest
def selftest():
    base = {k: v[0] for k, v in DEFAULTS.items()}
    base["gpus"] = [1]
    for model in ("resnet50", "biggan"):
        r = predict(model, 1, base)
        assert r["eff"] == 1.0 and r["eff_noov"] == 1.0 and r["tcomm"] == 0.0, ("n=1", model, r)
        for tier in (range(1, 9), range(9, 1025)):  # efficiency never rises with n inside a tier
            effs = [predict(model, n, base) for n in tier]
            for a, b in zip(effs, effs[1:]):
                assert b["eff"] <= a["eff"] + 1e-15 and b["eff_noov"] <= a["eff_noov"] + 1e-15, (model, tier)
        ideal = dict(base, busbw_intra=1e30, busbw_inter=1e30, lat_intra_us=0.0, lat_inter_us=0.0)
        for n in (2, 8, 64, 256, 4096):
            r = predict(model, n, ideal)
            assert r["eff"] > 1 - 1e-9 and r["eff_noov"] > 1 - 1e-9, ("infinite busbw", model, n, r)
    for params in (25557032, 87982370, 1000, 7):  # bf16 halves the bandwidth term, keeps the buckets
        for n in (2, 8, 16, 256):
            t = {}
            for dt in ("fp32", "bf16"):
                q = dict(base, comm_dtype=dt)
                sizes = bucket_bytes(params, q)
                t[dt] = (len(sizes), sum(allreduce_s(s, n, q, latency=False) for s in sizes))
            assert t["fp32"][0] == t["bf16"][0], (params, t)
            assert abs(t["bf16"][1] - 0.5 * t["fp32"][1]) <= 1e-12 * t["fp32"][1], (params, n, t)
    q = dict(base)  # the exposed time's two named terms bound it from below
    for n in (2, 16, 256):
        sizes = bucket_bytes(25557032, q)
        t = [allreduce_s(s, n, q) for s in sizes]
        for t_bwd in (1e-4, 0.01, 0.06, 1.0):
            tcomm, e = exposed_s(sizes, n, t_bwd, q)
            w = t_bwd * (1 - sizes[0] / sum(sizes))
            assert e >= t[-1] - 1e-15 and e >= tcomm - w - 1e-15 and e <= tcomm + 1e-15, (n, t_bwd)
    assert alpha_check(base)
    r = parse_bench("x\nRESULT bench_step model=resnet50 batch=256 step_ms=85.5 img_s=2994\n")
    assert r["_ms"] == 85.5 and r["model"] == "resnet50", r
    r = parse_bench("step: median 500.00 ms, 30.7 img/s (forward+loss 150.00 ms, backward 350.00 ms, update 1 ms)\n"
                    "RESULT bench_step model=resnet50 batch=16 size=112 backend=cpu median_ms=520.677 img_s=30.73\n"
                    "step: median 521.43 ms, 30.7 img/s (forward+loss 147.05 ms, backward 366.19 ms, update 2 ms)\n")
    assert r["_ms"] == 520.677 and r["_key"] == "median_ms" and r["_f_bwd"] == 0.7, r
    table = ("# dptrain bench allreduce: 2 rank(s) on 1 node(s), MPI\n#  size count type time algbw busbw #wrong\n"
             "  1048576 262144 float 188.94 5.550 5.550 0\n  67108864 16777216 float 66680.76 1.006 1.006 0\n"
             "$ next\n  67108864 33554432 bf16 40000.0 1.677 1.677 0\n")
    assert parse_allreduce(table, "fp32", "largest", 0)[0] == 1.006
    assert parse_allreduce(table, "bf16", "largest", 0)[0] == 1.677
    assert parse_allreduce(table, "fp32", "bucket", 10 ** 6)[0] == 5.550
    assert parse_allreduce(table, "fp32", "largest", 0)[2] == 1
    print("selftest: ok")


def alpha_check(p):
    """alpha is 2(n-1) intra hops on one node and NCCL's split across nodes."""
    one = dict(p, gpus_per_node=8, lat_intra_us=5.0, lat_inter_us=10.0)
    return (ring_alpha(1, one) == 0.0 and abs(ring_alpha(8, one) - 14 * 5e-6) < 1e-15
            and abs(ring_alpha(16, one) - (28 * 5e-6 + 2 * 10e-6)) < 1e-15)


def main():
    args = build_parser().parse_args()
    if args.selftest:
        try:
            selftest()
        except AssertionError as e:
            print("selftest: FAILED %r" % (e,))
            sys.exit(1)
        return
    report(*resolve(args))


if __name__ == "__main__":
    main()
