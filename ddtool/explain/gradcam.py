"""Grad-CAM (Selvaraju et al. 2017) on any registered image detector.

Hooks on the spec's `gradcam_layer` record its activations A (N, C, h, w)
and the gradient of the target w.r.t. them; the map is
ReLU(sum_c mean_{h,w}(dT/dA_c) * A_c), upsampled to the input size and
normalised to [0, 1] per image. The target is logit_fake - logit_real, the
same evidence AFAM uses; it equals the usual "fake class score" up to the
real logit, so a map shows what pushes the model towards *fake*.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError, NoFaceError
from ddtool.media.faces import DEFAULT_SCAN_DETECTOR
from ddtool.data.preprocess import resize_face


def resolve_layer(model: nn.Module, dotted: str | None) -> nn.Module:
    """The module at a dotted path ("layer4", "features.3.conv"), or the last 4-D producer."""
    if dotted is None:
        return last_feature_layer(model)
    try:
        return model.get_submodule(dotted)
    except AttributeError:
        raise ConfigError(f"Grad-CAM layer {dotted!r} does not exist in {type(model).__name__}") from None


def last_feature_layer(model: nn.Module, input_hw: tuple[int, int] = (64, 64)) -> nn.Module:
    """The last leaf module whose output is a (N, C, h, w) map, found by one probe pass.

    Used when a model registers no gradcam_layer: that layer is the last
    spatial evidence before pooling, where Grad-CAM is meant to look.
    """
    found: list[nn.Module] = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            found.append(module)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_hw, device=device))
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise ConfigError(f"{type(model).__name__} has no layer with a spatial output; Grad-CAM needs one")
    return found[-1]


def gradcam(model: nn.Module, x: torch.Tensor, layer: nn.Module) -> np.ndarray:
    """Grad-CAM maps (N, H, W) float32 in [0, 1] for normalised inputs x (N, 3, H, W)."""
    was_training = model.training
    model.eval()
    store: dict[str, torch.Tensor] = {}

    def keep_gradient(grad: torch.Tensor) -> None:
        store["grad"] = grad.detach()

    def on_forward(_module, _inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise ConfigError(f"Grad-CAM layer {type(_module).__name__} must output (N, C, h, w), got {type(output).__name__}")
        # A clone: a following in-place ReLU must not change the recorded activations.
        store["act"] = output.detach().clone()
        output.register_hook(keep_gradient)

    handle = layer.register_forward_hook(on_forward)
    try:
        with torch.enable_grad():
            # Inputs requiring grad keep the graph alive even if the weights are frozen.
            x = x.detach().clone().requires_grad_(True)
            logits = model(x)
            target = (logits[:, 1] - logits[:, 0]).sum()
            model.zero_grad(set_to_none=True)
            target.backward()
    finally:
        handle.remove()
        model.train(was_training)
    if "grad" not in store:
        raise ConfigError("Grad-CAM layer received no gradient; it is not on the path to the logits")
    weights = store["grad"].mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * store["act"]).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return normalise_per_image(cam).cpu().numpy().astype(np.float32)


def normalise_per_image(maps: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1] per image; a flat map becomes all zeros (no evidence anywhere)."""
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    flat = torch.where(span > 1e-12, (flat - low) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return flat.reshape(maps.shape)


# Why a Grad-CAM map can be empty: it keeps only what raises the fake score (ReLU of the weighted activations).
FLAT_MAP_NOTE = (
    "flat map: no region of this face raised the detector's fake score (Grad-CAM keeps only regions that push the "
    "score towards fake; a face the detector finds clearly real, or an output saturated so that its gradient vanishes, "
    "gives none), so nothing is highlighted"
)


def is_flat(heatmap: np.ndarray) -> bool:
    """A map `normalise_per_image` left all zeros: nothing to highlight (see FLAT_MAP_NOTE)."""
    return float(np.max(heatmap)) <= 0.0


CAPTIONED_MIN_WIDTH = 480  # narrower pictures are enlarged (whole pixels, nothing invented) so the caption fits beside them


def with_caption(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """`image` (RGB) with a white band below it holding `lines` (ASCII, wrapped to the image's width), so a
    PNG passed on alone still says which model, which weights and which score it shows."""
    factor = -(-CAPTIONED_MIN_WIDTH // image.shape[1])
    if factor > 1:
        image = cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    (char_width, line_height), _ = cv2.getTextSize("M", font, scale, 1)
    per_line = max(12, (image.shape[1] - 8) // char_width)
    wrapped = [chunk for line in lines for chunk in textwrap.wrap(line.encode("ascii", "replace").decode("ascii"), per_line)]
    step = line_height + 7
    band = np.full((len(wrapped) * step + 6, image.shape[1], 3), 255, np.uint8)
    for i, text in enumerate(wrapped):
        cv2.putText(band, text, (4, (i + 1) * step - 2), font, scale, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([image, band], axis=0)


def caption_lines(detector, frame_index: int, track_id: int, score: float, flat: bool) -> list[str]:
    """Model, weights and score of one Grad-CAM image (and why its map is empty, when it is)."""
    weights = detector.weights_path and Path(detector.weights_path).name
    lines = [
        f"Grad-CAM of {detector.key} (model {detector.name})",
        f"weights {weights}, sha256 {(detector.weights_sha256 or '?')[:12]}" if weights else "weights: none, UNTRAINED random weights",
        f"frame {frame_index}, face {track_id}: P(fake) {score:.3f}",
    ]
    return lines + (["flat map: no region raised the fake score, nothing to highlight"] if flat else [])


def overlay_heatmap(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """JET-coloured heatmap blended over an RGB uint8 image (resized to the image)."""
    h, w = rgb.shape[:2]
    heat = cv2.resize(np.clip(heatmap, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    coloured = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(heat * 255)), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(rgb, 1.0 - alpha, coloured, alpha, 0.0)


def gradcam_maps(detector, faces: list[np.ndarray]) -> np.ndarray:
    """Grad-CAM maps (N, h, w) in [0, 1] for face crops as the detector sees them; overlay them at any size."""
    network = detector.network()
    layer = resolve_layer(network, detector.spec.gradcam_layer)
    return gradcam(network, detector.prepare(faces), layer)


def explain_faces(detector, faces: list[np.ndarray]) -> list[np.ndarray]:
    """Grad-CAM overlays (RGB uint8 at the model's input size) for face crops."""
    if not faces:
        return []
    maps = gradcam_maps(detector, faces)
    pre = detector.preprocess
    return [overlay_heatmap(resize_face(face, pre.size, pre.interpolation), heat) for face, heat in zip(faces, maps)]



def explain_media(
    path: str | Path,
    detector,
    out_dir: str | Path,
    top_k: int = 4,
    frames: int = 32,
    face_detector: str = DEFAULT_SCAN_DETECTOR,
    detector_model: str | Path | None = None,
    margin: float | None = None,
) -> list[dict]:
    """Grad-CAM overlays for an image's face or a video's top-k most suspicious faces.

    Each face is saved as gradcam_<rank>_f<frame>.png (the overlay beside the
    crop); returns one record per saved file with frame, track and score.
    """
    from dataclasses import replace

    from ddtool.media.crops import view_cropper
    from ddtool.media.images import write_png
    from ddtool.media.faces import FaceExtractor, scan_face_detector
    from ddtool.media.video import probe, sample_indices

    if top_k < 1:
        raise ConfigError(f"--top-k {top_k}: must be at least 1")
    info = probe(path)
    indices = [0] if info.is_image else sample_indices(info.frame_count, frames=frames)
    # Crops cut like the model's training crops: its card's crop style and margin (data.preprocess).
    pre = detector.preprocess if margin is None else replace(detector.preprocess, margin=margin)
    extractor = FaceExtractor(scan_face_detector(face_detector, detector_model), size=max(pre.size), margin=pre.margin,
                              views={"model": view_cropper(pre.view)})
    crops = extractor.extract(path, indices)
    if not crops:
        raise NoFaceError(f"{path}: no face found in {len(indices)} sampled frame(s); Grad-CAM needs a face (try --detector mtcnn)")
    faces = [c.views["model"] for c in crops]
    scores = detector.fake_probability(faces)
    ranked = sorted(range(len(crops)), key=lambda i: -float(scores[i]))[:top_k]
    chosen = [crops[i] for i in ranked]
    maps = gradcam_maps(detector, [faces[i] for i in ranked])
    out_dir = Path(out_dir)
    saved = []
    for rank, (crop, heat, index) in enumerate(zip(chosen, maps, ranked), start=1):
        overlay = overlay_heatmap(resize_face(faces[index], pre.size, pre.interpolation), heat)
        face = cv2.resize(crop.views["model"], overlay.shape[1::-1], interpolation=cv2.INTER_AREA)
        target = out_dir / f"gradcam_{rank:02d}_f{crop.frame_index:06d}.png"
        caption = caption_lines(detector, crop.frame_index, crop.track_id, float(scores[index]), is_flat(heat))
        write_png(target, with_caption(np.concatenate([face, overlay], axis=1), caption))
        saved.append({"file": str(target), "frame_index": crop.frame_index, "track_id": crop.track_id, "score": float(scores[index]),
                      "caption": caption, "flat_map": is_flat(heat)})
    return saved
