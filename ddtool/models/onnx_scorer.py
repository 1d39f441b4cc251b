"""A checkpoint's ONNX export, scored on onnxruntime: no torch, the card as the source of truth.

`ddtool weights export-onnx NAME` (models.onnx_export) writes NAME.onnx beside
NAME.safetensors and describes it in the card's `onnx` block:

    "onnx": {"weights_file": "NAME.onnx", "format": "onnx", "sha256": ...,
             "exported_from": <the card's sha256: the weights it was made from>,
             "input": {"name": "input", "shape": ["batch", 3, H, W]},
             "output": {"name": "logits", "shape": ["batch", 2]},
             "opset": 17, "checked": {...}, "exported_with": {...}}

`onnx_status(card)` says whether the export can stand for the weights (present,
made from these weights); `open_onnx(card, ...)` checks the file's sha256 and the
graph's input/output names and shapes against the block (never guessing from
the graph) and returns an `OnnxScorer`. `model_spec` is the registered
ModelSpec's facts at export time, so scan neither imports the model's code
nor torch to know the input size, normalisation or paper of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ddtool.errors import CheckpointError
from ddtool.io import sha256_file
from ddtool.models.logits import fake_probability

ONNX_BLOCK = "onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"


def export_command(card: dict[str, Any]) -> str:
    """The command that (re)makes a card's export: by shipped name when it lives in the weights folder, else by path."""
    path = Path(card.get("_card_path") or card.get("weights_file") or "NAME")
    return f"ddtool weights export-onnx {path.stem if path.parent.name == 'weights' else path}"


def onnx_status(card: dict[str, Any]) -> tuple[Path | None, str | None]:
    """(the export's path, None) when the card's ONNX export stands for its weights, else (None, why not: one clause)."""
    block = card.get(ONNX_BLOCK)
    command = export_command(card)
    if not block:
        return None, f"its card has no ONNX export ({command} makes one)"
    if not isinstance(block, dict) or not isinstance(block.get("weights_file"), str) or Path(block["weights_file"]).name != block["weights_file"]:
        raise CheckpointError(f"{card.get('_card_path')}: the onnx block must name a weights_file beside the card; re-export it ({command})")
    if block.get("exported_from") != card.get("sha256"):
        return None, f"its ONNX export was made from other weights than the card's sha256 ({command} remakes it)"
    path = Path(card["_card_path"]).with_name(block["weights_file"])
    if not path.is_file():
        return None, f"its ONNX export {path.name} is missing ({command} remakes it)"
    return path, None


class OnnxScorer:
    """P(fake) of normalised (N, 3, H, W) float32 faces from an exported detector's (N, 2) logits, on onnxruntime."""

    engine = "onnxruntime"

    def __init__(self, path: str | Path, block: dict[str, Any], providers: list[Any], threads: int | None = None):
        from ddtool.onnx_session import open_session, session_device

        self.path = Path(path)
        expected_sha = block.get("sha256")
        if not expected_sha or sha256_file(self.path) != expected_sha:
            raise CheckpointError(f"{self.path}: sha256 does not match its card's onnx block (file changed or corrupt); "
                                  "re-export it with `ddtool weights export-onnx`")
        self.session = open_session(self.path, providers, threads)
        self.input = _checked_io(self.path, "input", self.session.get_inputs(), block.get("input"))
        _checked_io(self.path, "output", self.session.get_outputs(), block.get("output"))
        self.input_hw = tuple(int(v) for v in self.input["shape"][2:])
        self.device = session_device(self.session)

    def logits(self, images: np.ndarray) -> np.ndarray:
        if images.shape[1:] != (3, *self.input_hw):
            raise CheckpointError(f"{self.path} takes (N, 3, {self.input_hw[0]}, {self.input_hw[1]}) faces, got {tuple(images.shape)}")
        return self.session.run([OUTPUT_NAME], {self.input["name"]: np.ascontiguousarray(images, np.float32)})[0]

    def fake_probability(self, images: np.ndarray) -> np.ndarray:
        return fake_probability(self.logits(images))


def _checked_io(path: Path, kind: str, found: list, expected: Any) -> dict[str, Any]:
    """The graph's one input (or output) must be the one the card names, with the card's shape (batch dim free)."""
    if not isinstance(expected, dict) or not isinstance(expected.get("name"), str) or not isinstance(expected.get("shape"), list):
        raise CheckpointError(f"{path}: its card's onnx block does not describe the graph's {kind} (name and shape); re-export it")
    shapes = [(node.name, [d if isinstance(d, int) else BATCH_DIM for d in node.shape]) for node in found]
    want = [(expected["name"], [d if isinstance(d, int) else BATCH_DIM for d in expected["shape"]])]
    if shapes != want:
        raise CheckpointError(f"{path}: the graph's {kind} is {shapes}, its card says {want}: not the exported model (re-export it)")
    return expected


def open_onnx(card: dict[str, Any], providers: list[Any], threads: int | None = None) -> OnnxScorer:
    """The card's ONNX export as a scorer (the card as read by models.cards.read_card); see `onnx_status` first."""
    path, why_not = onnx_status(card)
    if path is None:
        raise CheckpointError(f"{card.get('_card_path')}: {why_not}")
    return OnnxScorer(path, card[ONNX_BLOCK], providers, threads)
