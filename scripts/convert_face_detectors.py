"""Convert the public BlazeFace and MTCNN state dicts into weights/face_detectors/*.safetensors.

    python scripts/convert_face_detectors.py [--source ../shared/third_party] [--out weights/face_detectors]

The sources are plain PyTorch state dicts (see ../shared/third_party/README.md);
they are loaded with weights_only=True, checked against ddtool's own
architectures (ddtool.media.face_nets) by a strict load, and written as
safetensors (no pickle ships). BlazeFace's anchors are recomputed and checked
against the anchors.npy files that came with the weights. The sha256 of each
output goes into its card (the cards' other fields are written by hand).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ddtool.io import sha256_file
from ddtool.media.face_nets import BlazeFaceNet, ONet, PNet, RNet, blazeface_anchors

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "blazeface_front.safetensors": ("blazeface/blazeface.pth", lambda: BlazeFaceNet(back=False)),
    "blazeface_back.safetensors": ("blazeface/blazefaceback.pth", lambda: BlazeFaceNet(back=True)),
    "mtcnn_pnet.safetensors": ("mtcnn/pnet.pt", PNet),
    "mtcnn_rnet.safetensors": ("mtcnn/rnet.pt", RNet),
    "mtcnn_onet.safetensors": ("mtcnn/onet.pt", ONet),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "third_party")
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "face_detectors")
    args = parser.parse_args()
    for name in ("anchors.npy", "anchorsback.npy"):
        assert np.allclose(np.load(args.source / "blazeface" / name), blazeface_anchors()), name
    args.out.mkdir(parents=True, exist_ok=True)
    digests = {}
    for out_name, (source, make) in FILES.items():
        state = torch.load(args.source / source, map_location="cpu", weights_only=True)
        make().load_state_dict(state, strict=True)
        target = args.out / out_name
        save_file({k: v.contiguous() for k, v in state.items()}, str(target))
        digests[out_name] = sha256_file(target)
        print(f"{source} -> {target} ({target.stat().st_size} bytes)")
    print(json.dumps(digests, indent=2))


if __name__ == "__main__":
    main()
