"""`ddtool weights export-onnx NAME`: a checkpoint's ONNX export, checked against torch, recorded in its card.

The export is data, not code: the same weights as NAME.safetensors in the
graph form onnxruntime runs (one fixed input size, the card's; a free batch
dimension). It is written beside the card as NAME.onnx (atomically), then
scored on random faces by torch and by onnxruntime: a P(fake) differing by
more than TOLERANCE removes the file and fails the export. The card gets the
`onnx` block that models.onnx_scorer checks before every scan (sha256,
input/output names and shapes, the sha256 of the weights it was made from),
and `model_spec`, the registered spec's facts scan needs without the
model's code. A CLIP probe already runs on its encoder file: its card gets
only `model_spec`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ddtool import __version__
from ddtool.errors import CheckpointError
from ddtool.io import atomic_path, sha256_file, write_json_atomic
from ddtool.models.cards import read_card, spec_block
from ddtool.models.checkpoint import load_checkpoint
from ddtool.models.onnx_scorer import BATCH_DIM, INPUT_NAME, ONNX_BLOCK, OUTPUT_NAME
from ddtool.models.registry import get_spec

OPSET = 17
CHECK_FACES = 16  # random faces scored by both engines after the export
TOLERANCE = 1e-4  # largest P(fake) difference accepted between torch and onnxruntime


@dataclass
class Export:
    card_path: Path
    onnx_path: Path | None  # None: a CLIP probe (nothing to export, its spec was recorded)
    max_difference: float | None  # largest |P(fake) torch - P(fake) onnxruntime| over the check faces


def export_onnx(path: str | Path, opset: int = OPSET, check_faces: int = CHECK_FACES, tolerance: float = TOLERANCE) -> Export:
    """Export the checkpoint at `path` (card or weights) to NAME.onnx and record it in the card; see the module docstring."""
    from ddtool.data.preprocess import crops_to_array, resolve_preprocess
    from ddtool.models.clip_probe_scorer import is_clip_probe

    card = read_card(path)
    card_path = Path(card["_card_path"])
    spec = get_spec(card["model"])
    if spec.input_kind != "image":
        raise CheckpointError(f"{card_path}: model {card['model']!r} takes {spec.input_kind} input; only image models score scan's faces "
                              "and get an ONNX export")
    on_disk = json.loads(card_path.read_text(encoding="utf-8"))
    on_disk["model_spec"] = spec_block(spec)
    if is_clip_probe(card):
        write_json_atomic(card_path, on_disk)
        return Export(card_path, None, None)
    model, card = load_checkpoint(card_path)  # checks the weights' sha256 against the card
    model.eval()
    preprocess = resolve_preprocess(spec, card)
    height, width = preprocess.size
    onnx_path = card_path.with_name(card_path.stem + ".onnx")
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(check_faces)]
    images = crops_to_array(faces, preprocess)
    with atomic_path(onnx_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings (shapes are fixed here)
            torch.onnx.export(model, torch.zeros(1, 3, height, width), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}}, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
        difference = _max_difference(model, tmp, images)
        if not difference <= tolerance:
            raise CheckpointError(f"{card_path}: the ONNX export's P(fake) differs from torch's by {difference:.2g} (> {tolerance:g}) on "
                                  f"{check_faces} random faces; the model has an operator the exporter does not reproduce, score it with torch")
    on_disk[ONNX_BLOCK] = {
        "weights_file": onnx_path.name,
        "format": "onnx",
        "sha256": sha256_file(onnx_path),
        "exported_from": card.get("sha256"),
        "input": {"name": INPUT_NAME, "shape": [BATCH_DIM, 3, height, width]},
        "output": {"name": OUTPUT_NAME, "shape": [BATCH_DIM, 2]},
        "opset": opset,
        "checked": {"faces": check_faces, "max_p_fake_difference": float(f"{difference:.3g}"), "tolerance": tolerance,
                    "against": "the torch model on the same random faces"},
        "exported_with": {"ddtool": __version__, "torch": torch.__version__.split("+")[0]},
    }
    write_json_atomic(card_path, on_disk)
    return Export(card_path, onnx_path, difference)


def _max_difference(model: torch.nn.Module, onnx_file: Path, images: np.ndarray) -> float:
    from ddtool.models.logits import fake_probability
    from ddtool.onnx_session import open_session

    session = open_session(onnx_file, ["CPUExecutionProvider"], threads=1)
    with torch.no_grad():
        expected = fake_probability(model(torch.from_numpy(images))).numpy()
    found = fake_probability(session.run([OUTPUT_NAME], {INPUT_NAME: images})[0])
    return float(np.abs(found - expected).max())
