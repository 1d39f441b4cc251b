"""Average the weights of several checkpoints of one run (stochastic weight averaging, post hoc).

    python scripts/average_checkpoints.py RUN/epoch_016.json RUN/epoch_018.json ... --out RUN/avg_16_20

SBI training from self-blends wanders from epoch to epoch on real deepfakes
(docs/benchmark-results/sbi-lite0/); averaging the weights of neighbouring
epochs (Izmailov et al., "Averaging Weights Leads to Wider Optima", UAI 2018)
smooths that. Floating-point tensors are averaged, BatchNorm running
statistics included (the epochs are close, so their statistics are too);
integer buffers (num_batches_tracked) are taken from the last checkpoint.
The card is the last checkpoint's, with `averaged_from` listing the inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def average(cards: list[Path], out: Path) -> Path:
    import torch

    from ddtool.models.checkpoint import load_checkpoint, read_card, save_checkpoint

    models = [load_checkpoint(card)[0] for card in cards]
    names = {read_card(card)["model"] for card in cards}
    if len(names) != 1:
        raise SystemExit(f"error: the checkpoints hold different models ({', '.join(sorted(names))}); average one run's epochs")
    states = [m.state_dict() for m in models]
    averaged = {}
    for key, value in states[-1].items():
        if torch.is_floating_point(value):
            averaged[key] = torch.stack([s[key].float() for s in states]).mean(0).to(value.dtype)
        else:
            averaged[key] = value
    target = models[-1]
    target.load_state_dict(averaged)
    last = read_card(cards[-1])
    fields = {k: v for k, v in last.items() if not k.startswith("_") and k not in ("card_version", "model", "model_kwargs", "weights_file", "format", "sha256", "ddtool_version", "created")}
    fields["averaged_from"] = [str(c.resolve()) for c in cards]
    return save_checkpoint(target, out, last["model"], last.get("model_kwargs") or {}, **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cards", type=Path, nargs="+", help="checkpoint cards (NAME.json) of one run")
    parser.add_argument("--out", type=Path, required=True, help="stem of the averaged checkpoint (NAME -> NAME.safetensors + NAME.json)")
    args = parser.parse_args(argv)
    if len(args.cards) < 2:
        print("error: give at least two checkpoints to average", file=sys.stderr)
        return 2
    missing = [str(c) for c in args.cards if not c.is_file()]
    if missing:
        print(f"error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(average(args.cards, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
