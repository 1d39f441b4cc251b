"""One preprocessing path: what a detector's input must look like, and crops -> tensor.

    resolve_preprocess(spec, card) -> Preprocess   (like timm's resolve_data_config)
    crops_to_array(faces, preprocess) -> (N, 3, H, W) float32 numpy array (the onnxruntime scorers', no torch)
    crops_to_tensor(faces, preprocess) -> the same as a torch tensor

Training (data.dataset), evaluation (evaluate.predict), scan and explain all
build their tensors here, so the same face gives the same tensor everywhere.
The card's `input` block wins over the model spec: a run trained at another
size, with a margin or a crop style records it there.

`spec` is anything with `input_size`, `mean` and `std` (a models.ModelSpec):
data sits below models in the import order, so it is not imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from ddtool.media.images import as_rgb  # noqa: F401  (re-exported: scan and explain cut crops through this module)
from ddtool.errors import CheckpointError, ConfigError
from ddtool.media.crops import CROP_STYLES

# "auto": INTER_AREA when shrinking (no aliasing that would look like forgery
# noise), INTER_LINEAR when enlarging; the others are what a model was trained with.
INTERPOLATIONS = {"auto": None, "nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
MAX_MARGIN = 2.0


@dataclass(frozen=True)
class Preprocess:
    """Everything between a frame's face and a model's input tensor."""

    size: tuple[int, int]  # (height, width) of the model input
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: str = "auto"
    crop: str = "box"
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.crop not in CROP_STYLES:
            raise ConfigError(f"crop style {self.crop!r} unknown; choose one of {', '.join(CROP_STYLES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation {self.interpolation!r} unknown; choose one of {', '.join(INTERPOLATIONS)}")
        if not 0.0 <= self.margin <= MAX_MARGIN:
            raise ConfigError(f"margin {self.margin} must be between 0 and {MAX_MARGIN} (fraction of the face box)")

    @property
    def view(self) -> tuple[str, float, int, str]:
        """What a face crop must be cut as: two detectors with the same view share one crop."""
        return (self.crop, round(self.margin, 4), max(self.size), self.interpolation)

    def card_fields(self) -> dict[str, Any]:
        """The card's `input` block for this preprocessing."""
        return {"size": list(self.size) if self.size[0] != self.size[1] else self.size[0], "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "crop": self.crop, "margin": self.margin}


def as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """An input size (int, (h, w) or (c, h, w)) as (height, width)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    size = [int(s) for s in size]
    return (size[-2], size[-1]) if len(size) >= 2 else (size[0], size[0])


def resolve_preprocess(spec: Any, card: dict[str, Any] | None = None) -> Preprocess:
    """The preprocessing a model was trained with: the card's `input` block, else its run config, else the spec."""
    card = card or {}
    block = card.get("input") if isinstance(card.get("input"), dict) else {}
    config = card.get("config") if isinstance(card.get("config"), dict) else {}
    size = block.get("size") or config.get("size") or (card.get("model_kwargs") or {}).get("input_size") or spec.input_size
    margin = block.get("margin")
    if margin is None:
        margin = 0.0  # a card that says nothing: the papers' crop, the face box itself
    elif isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin <= MAX_MARGIN:
        # Never repaired silently: the model would see faces cut differently from its training crops.
        raise CheckpointError(f"{card.get('_card_path') or 'model card'}: input.margin {margin!r} is not a number from 0 to {MAX_MARGIN}; "
                              "set it to the crop margin of the training cache (0 for the face box itself)")
    return Preprocess(
        size=as_hw(size),
        mean=tuple(float(v) for v in (block.get("mean") or spec.mean)),
        std=tuple(float(v) for v in (block.get("std") or spec.std)),
        interpolation=str(block.get("interpolation") or "auto"),
        crop=str(block.get("crop") or "box"),
        margin=float(margin),
    )


def resize_face(face: np.ndarray, size: tuple[int, int], interpolation: str = "auto") -> np.ndarray:
    """RGB crop at (height, width) `size` with the model's interpolation."""
    h, w = size
    face = as_rgb(face)
    if face.shape[:2] == (h, w):
        return face
    flag = INTERPOLATIONS[interpolation]
    if flag is None:
        flag = cv2.INTER_AREA if face.shape[0] > h or face.shape[1] > w else cv2.INTER_LINEAR
    return cv2.resize(face, (w, h), interpolation=flag)


def normalise(face: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """(H, W, 3) uint8 at the input size -> (3, H, W) float32, (x / 255 - mean) / std."""
    out = face.astype(np.float32) / 255.0
    out -= np.asarray(preprocess.mean, np.float32)
    out /= np.asarray(preprocess.std, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def crop_to_array(face: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """One RGB uint8 crop -> (3, H, W) float32 model input."""
    return normalise(resize_face(face, preprocess.size, preprocess.interpolation), preprocess)


def crops_to_array(faces: Sequence[np.ndarray], preprocess: Preprocess) -> np.ndarray:
    """RGB uint8 crops -> (N, 3, H, W) float32 model input (the one function every consumer uses, through
    crops_to_tensor where the model is a torch one)."""
    h, w = preprocess.size
    if len(faces) == 0:
        return np.zeros((0, 3, h, w), np.float32)
    return np.stack([crop_to_array(face, preprocess) for face in faces])


def crop_to_tensor(face: np.ndarray, preprocess: Preprocess):
    """One RGB uint8 crop -> (3, H, W) torch tensor."""
    import torch  # here: scan's onnxruntime path preprocesses without torch

    return torch.from_numpy(crop_to_array(face, preprocess))


def crops_to_tensor(faces: Sequence[np.ndarray], preprocess: Preprocess):
    """RGB uint8 crops -> (N, 3, H, W) torch tensor: crops_to_array's values."""
    import torch

    return torch.from_numpy(crops_to_array(faces, preprocess))
