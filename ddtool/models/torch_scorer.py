"""A torch network as a scorer: normalised (N, 3, H, W) float32 numpy faces in, P(fake) out.

The same contract as the onnxruntime scorers (models.onnx_scorer,
models.clip_probe_scorer), so scan's panel needs no branch for the engine:
torch scores a model that has no usable ONNX export (a user's checkpoint, an
untrained model, a GPU onnxruntime cannot drive), and always serves Grad-CAM.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ddtool.models.logits import fake_probability

# Faces a scorer scores eagerly before it is traced and frozen for speed (tracing pays for itself after ~110).
FREEZE_AFTER_FACES = 128


class TorchScorer:
    engine = "torch"

    def __init__(self, model: nn.Module, device: str = "cpu", freeze: bool = True):
        # Channels-last (NHWC) runs the convolutions of these image models
        # 1.3x (EfficientNet-Lite0) to 2.4x (Meso4) faster on CPU (docs/scan.md "Speed"); same scores.
        self.model = model.to(memory_format=torch.channels_last).eval()
        self.device = str(device)
        self.freeze = freeze
        self.scored = 0
        self._frozen: Any = None

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """Normalised (N, 3, H, W) float32 array -> channels-last tensor on the device."""
        return torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def fake_probability(self, images: np.ndarray) -> np.ndarray:
        x = self.prepare(images)
        logits = self._scoring_net(x)(x)
        self.scored += len(x)
        return fake_probability(logits).cpu().numpy().astype(np.float32)

    def _scoring_net(self, x: torch.Tensor):
        """The network for scoring only: on CPU, once FREEZE_AFTER_FACES faces were scored, a
        frozen TorchScript trace (batch norm folded into the convolutions, no Python per layer;
        EfficientNet-Lite0 8.4 instead of 12.3 ms per face, docs/scan.md "Speed"), kept only
        where it gives the eager model's logits on that batch. Tracing costs about 0.5 s, more
        than one 32-frame scan saves, so a single short scan stays eager. Grad-CAM and training
        use `model` itself."""
        if self.device != "cpu" or not self.freeze or self.scored < FREEZE_AFTER_FACES:
            return self.model
        if self._frozen is None:
            self._frozen = self.model
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # trace warnings: shapes fixed per input size, which is fixed here
                    frozen = torch.jit.freeze(torch.jit.trace(self.model.eval(), x, check_trace=False))
                    same = torch.allclose(frozen(x), self.model(x), rtol=1e-4, atol=1e-4)
                if same:
                    self._frozen = frozen
            except Exception:  # noqa: BLE001 - a model that cannot be traced is scored eagerly, as before
                self._frozen = self.model
        return self._frozen
