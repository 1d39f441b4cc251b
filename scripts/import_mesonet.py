"""Import the MesoNet authors' four Keras weights into weights/ with complete cards.

    python scripts/import_mesonet.py [--src ../shared/third_party/mesonet] [--out weights]

Each becomes NAME.safetensors + NAME.json through `ddtool weights import`'s
code (ddtool.weights_import), with the card facts below: origin, licence,
the authors' description of their data and their reported accuracy. Our own
measurements (benchmark, operating point) are added afterwards by
`ddtool weights calibrate` and benchmarks/realdf.py --write-cards.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ddtool.weights import NOT_TRAINED_ON
from ddtool.weights_import import import_weights

REPOSITORY = "DariusAf/MesoNet"
COMMIT = "2144d56a30e48cdcac1976ff13a1c5cdc86376c6"
PAPER = "Afchar, Nozick, Yamagishi, Echizen: MesoNet: a Compact Facial Video Forgery Detection Network, WIFS 2018 (arXiv:1809.00888)"
LICENCE = "Apache-2.0 (the authors' weights, converted; LICENSE.mesonet and NOTICE.mesonet beside this card)"
DEEPFAKE_DATA = (
    "the MesoNet authors' Deepfake set: aligned face images from deepfake videos they collected online; their README counts "
    "5111 forged + 7250 real training images and 2889 forged + 4259 real validation images"
)
F2F_DATA = (
    "the MesoNet authors' Face2Face set, made from the FaceForensics dataset (Roessler et al. 2018, the Face2Face videos "
    "FaceForensics++ later included); their README gives no image counts for it"
)
REPORTED = "the authors' abstract: detection rates above 98% for deepfake and 95% for Face2Face (their own test videos)"
MODELS = {
    "meso4_df": ("Meso4_DF.h5", "meso4", DEEPFAKE_DATA),
    "mesoinception4_df": ("MesoInception_DF.h5", "mesoinception4", DEEPFAKE_DATA),
    "meso4_f2f": ("Meso4_F2F.h5", "meso4", F2F_DATA),
    "mesoinception4_f2f": ("MesoInception_F2F.h5", "mesoinception4", F2F_DATA),
}


def card_fields(name: str, source: str, model: str, data: str) -> dict:
    family = "Meso4" if model == "meso4" else "MesoInception4"
    if data is DEEPFAKE_DATA:
        statement = (f"This model was {NOT_TRAINED_ON}: the MesoNet authors trained it on their own Deepfake set made from "
                     "online videos; its scores on those datasets are unmeasured here.")
    else:
        statement = ("This model was trained on Face2Face faces of FaceForensics (2018), whose Face2Face videos FaceForensics++ "
                     "also contains: do not read its scores on FaceForensics++ as unseen-data results. Not trained or validated "
                     "on Celeb-DF or DFDC.")
    return {
        "origin": {"repository": REPOSITORY, "commit": COMMIT, "file": f"weights/{source}", "licence": "Apache-2.0",
                   "paper": PAPER, "converted_with": f"ddtool weights import {source} --format keras-mesonet --model {model} --out weights/{name}"},
        "licence": LICENCE,
        "architecture": f"{model}: the authors' {family} (Keras original: convs with bias, one BatchNorm per block, sigmoid head; "
                        "ddtool variant='keras'), 256x256 input",
        "training_data": {"summary": data, "source": f"{REPOSITORY} README",
                          **({"train": {"crops": 12361, "real": 7250, "fake": 5111}, "val": {"crops": 7148, "real": 4259, "fake": 2889}}
                             if data is DEEPFAKE_DATA else {})},
        "training_command": f"ddtool weights import {source} --format keras-mesonet --model {model} --out weights/{name}  "
                            "# trained by the authors with Keras 2.1.5, not by ddtool",
        "authors_reported": REPORTED,
        "statement": statement,
        "default": False,
        "input": {"kind": "image", "size": 256, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                  "interpolation": "nearest", "crop": "mesonet_aligned", "margin": 0.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("../shared/third_party/mesonet"))
    parser.add_argument("--out", type=Path, default=Path("weights"))
    args = parser.parse_args()
    for name, (source, model, data) in MODELS.items():
        card = import_weights(args.src / "weights" / source, args.out / name, model, fmt="keras-mesonet",
                              card_fields=card_fields(name, source, model, data))
        print(f"wrote {card}")
    shutil.copyfile(args.src / "LICENSE", args.out / "LICENSE.mesonet")
    shutil.copyfile(args.src / "NOTICE", args.out / "NOTICE.mesonet")


if __name__ == "__main__":
    main()
