"""Params, MACs and throughput of registered models.

    .venv/bin/python benchmarks/models.py [--models a,b] [--batches 1,32] [--size 256] [--device cpu] [--runs 3]

Prints one markdown row per (model, batch). Speed depends on the machine and
its load: note both beside any figure you quote.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from ddtool.errors import DDToolError
from ddtool.models import get_spec, list_models
from ddtool.models.summary import profile, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: every registered model)")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--size", type=int, default=None, help="image side override for image models")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.models.split(",") if n] or list_models()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"# device={args.device} threads={torch.get_num_threads()} cpus={os.cpu_count()} torch={torch.__version__}")
    print("| model | input | params | MACs | batch | items/s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        spec = get_spec(name)
        if spec.input_kind == "features":
            s = summarize(name, with_macs=False)
            print(f"| {name} | features | {s.params or '-'} | - | - | - |", flush=True)
            continue
        size = args.size if spec.input_kind == "image" else None
        for batch in batches:
            try:
                r = profile(name, batch=batch, device=args.device, size=size, amp=args.amp, runs=args.runs, warmup=1)
            except DDToolError as exc:
                print(f"| {name} | - | - | - | {batch} | error: {exc} |", flush=True)
                continue
            shape = "x".join(map(str, r.input_shape))
            print(f"| {name} | {shape} | {r.params:,} | {r.macs / 1e9:.3f}G | {batch} | {r.images_per_s:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
