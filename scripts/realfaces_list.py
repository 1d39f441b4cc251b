"""Write ../shared/realfaces as a `csv` layout list for `ddtool extract`, split by person.

    python scripts/realfaces_list.py --out realfaces.csv [--root ../shared/realfaces]

Split (ddtool.data.identity_split): 1 person in 10 is `test` (held out of
training; the calibration and false-positive reference), 8% of the others
`val`, the rest `train`. The person key is source folder + person id, so two
sources that both say "1" are different people.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ddtool.data.identity_split import identity_split  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "realfaces")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    listing = args.root / "faces.csv"
    if not listing.is_file():
        print(f"error: {listing} not found; pass --root the realfaces folder", file=sys.stderr)
        return 2
    counts: Counter[str] = Counter()
    with listing.open(encoding="utf-8") as src, args.out.open("w", newline="", encoding="utf-8") as dst:
        writer = csv.writer(dst)
        writer.writerow(["path", "label", "method", "split", "group"])
        for row in csv.DictReader(src):
            folder = row["path"].split("/", 1)[0]
            person = f"{folder}/{row['person_id_or_group']}"
            split = identity_split(person)
            counts[split] += 1
            writer.writerow([str((args.root / row["path"]).resolve()), 0, "real", split, person])
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
