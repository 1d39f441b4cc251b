"""Training-time augmentation of RGB uint8 face crops (the papers' flip + rotation).

Random draws come from torch's generator, not numpy's: DataLoader seeds torch
differently in every worker (numpy's global state would repeat across
workers), and the training state file saves and restores torch's generator,
so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ddtool.errors import ConfigError

Augmentation = Callable[[np.ndarray], np.ndarray]


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def horizontal_flip(image: np.ndarray, p: float = 0.5) -> np.ndarray:
    if float(torch.rand(())) < p:
        return np.ascontiguousarray(image[:, ::-1])
    return image


def rotate(image: np.ndarray, max_degrees: float = 10.0) -> np.ndarray:
    """Rotate about the centre by a uniform angle in [-max_degrees, max_degrees].

    Border pixels are reflected rather than filled black so the model does not
    learn "black corners" as a cue that correlates with nothing real.
    """
    angle = _uniform(-max_degrees, max_degrees)
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


AUGMENTATIONS: dict[str, Augmentation] = {
    "hflip": horizontal_flip,
    # partial, not lambda: DataLoader workers started with spawn must pickle it.
    "rotate10": partial(rotate, max_degrees=10.0),
}


class Compose:
    """Apply the named augmentations in order."""

    def __init__(self, names: Sequence[str]):
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"unknown augmentation(s) {', '.join(unknown)}; available: {', '.join(AUGMENTATIONS)}")
        self.names = list(names)
        self._steps = [AUGMENTATIONS[n] for n in names]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        for step in self._steps:
            image = step(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({self.names})"
