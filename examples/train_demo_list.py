"""Write the face list `make train-demo` extracts: the example media plus the Grace Hopper photo matplotlib ships.

Usage: python examples/train_demo_list.py OUT.csv

Splits (ddtool's CSV layout: path,label,method,split):
  train  astronaut.jpg, grace_hopper.jpg   two real photos; --synth forges them on the fly
  val    astronaut_real.mp4 (real), astronaut_fake.mp4 (face swap)   pick the epoch, then the report
Both photos are public domain (NASA; US Navy); see examples/README.md.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

EXAMPLES = Path(__file__).resolve().parent


def rows() -> list[dict[str, str]]:
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not hopper.is_file():
        sys.exit(f"error: {hopper} is missing: this matplotlib does not ship its sample photo; reinstall matplotlib")
    return [
        {"path": str(EXAMPLES / "astronaut.jpg"), "label": "real", "method": "real", "split": "train"},
        {"path": str(hopper), "label": "real", "method": "real", "split": "train"},
        {"path": str(EXAMPLES / "astronaut_real.mp4"), "label": "real", "method": "real", "split": "val"},
        {"path": str(EXAMPLES / "astronaut_fake.mp4"), "label": "fake", "method": "face_swap", "split": "val"},
    ]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/train_demo_list.py OUT.csv")
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "method", "split"])
        writer.writeheader()
        writer.writerows(rows())
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
