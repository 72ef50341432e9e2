#!/usr/bin/env python3
"""Checks a TensorBoard event file (or a directory of them) with TensorBoard's own reader.

  check_tensorboard.py PATH --expect TAG=N [...] [--equal TAG:STEP=VALUE ...]

Prints every scalar tag with its count and first/last (step, value); exits 1 naming the tag when
an expected tag is missing, has another count, or a value differs by more than 1e-6 relative.
Exits 77 (ctest's skip code) when tensorboard is not installed."""
import argparse
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("SKIP: tensorboard not installed")
    sys.exit(77)


def parse_expect(s):
    tag, sep, n = s.rpartition("=")
    if not sep or not tag:
        raise argparse.ArgumentTypeError(f"--expect wants TAG=N, got {s!r}")
    return tag, int(n)


def parse_equal(s):
    left, sep, value = s.rpartition("=")
    tag, sep2, step = left.rpartition(":")
    if not sep or not sep2 or not tag:
        raise argparse.ArgumentTypeError(f"--equal wants TAG:STEP=VALUE, got {s!r}")
    return tag, int(step), float(value)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="event file or directory")
    ap.add_argument("--expect", type=parse_expect, action="append", default=[], metavar="TAG=N")
    ap.add_argument("--equal", type=parse_equal, action="append", default=[], metavar="TAG:STEP=VALUE")
    args = ap.parse_args()

    acc = EventAccumulator(args.path, size_guidance={"scalars": 0})  # 0 keeps every event
    acc.Reload()
    scalars = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    for tag, ev in sorted(scalars.items()):
        print(f"{tag}: {len(ev)} events, first ({ev[0].step}, {ev[0].value:.9g}), "
              f"last ({ev[-1].step}, {ev[-1].value:.9g})")

    errors = []
    for tag, n in args.expect:
        if tag not in scalars:
            errors.append(f"tag {tag} missing")
        elif len(scalars[tag]) != n:
            errors.append(f"tag {tag} has {len(scalars[tag])} events, expected {n}")
    for tag, step, value in args.equal:
        got = [e.value for e in scalars.get(tag, []) if e.step == step]
        if not got:
            errors.append(f"tag {tag} has no event at step {step}")
        elif any(abs(g - value) > 1e-6 * max(abs(value), 1e-30) for g in got):
            errors.append(f"tag {tag} at step {step} is {got}, expected {value}")
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    if not scalars and not args.expect:
        print(f"FAIL: no scalars in {args.path}", file=sys.stderr)
        return 1
    print("FAILED" if errors else "OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
