"""Forgeries made on the fly from real crops, for training (`ddtool train --synth METHODS`).

Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) train a detector from
real faces alone: every real crop is shown once as itself and once forged,
with a fresh random forgery every epoch, so a few dozen real faces give an
unbounded number of distinct fakes whose only difference from their real
twin is the manipulation. ddtool generalises that to any method of
`ddtool.data.synth` that needs no extra model: each fake draws one of the
chosen methods and a strength in [0.3, 1.0].

Determinism: the forgery of real k in epoch e is drawn from a generator
seeded with (seed, e, k), never from the order of work, so a resumed run sees
exactly what an uninterrupted one would and DataLoader workers agree.

Landmarks: each real crop needs its 68 dlib points. They are computed once on
the crop (the face box is where the cache's crop margin puts it) and kept in
CACHE/landmarks68.csv for the next run; a crop where they cannot be found is
left out and counted.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ddtool.data.dataset import FaceCropDataset, crop_margin, load_crop
from ddtool.errors import ConfigError, DDToolError
from ddtool.io import atomic_path

# Methods that need nothing but real crops (gan_face needs generator weights).
SYNTH_METHODS = ("self_blend", "face_swap", "resample", "smooth", "double_jpeg")
STRENGTH_RANGE = (0.3, 1.0)
LANDMARKS_FILE = "landmarks68.csv"


def check_methods(methods: Sequence[str]) -> list[str]:
    methods = list(methods)
    bad = [m for m in methods if m not in SYNTH_METHODS]
    if bad or not methods:
        raise ConfigError(f"--synth takes a comma list from {', '.join(SYNTH_METHODS)}; got {', '.join(map(str, bad or methods)) or 'nothing'}")
    return methods


def synth_source_reals(cache: str | Path, seed: int, limit: int | None = None) -> pd.DataFrame:
    """The real crops of a --synth-data cache that may be forged: every split but test, at most `limit` (seeded draw)."""
    from ddtool.data.dataset import read_manifest

    rows = read_manifest(cache)
    rows = rows[(rows["label"] == 0) & (rows["split"].fillna("").astype(str) != "test")].reset_index(drop=True)
    if limit is not None and len(rows) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=int(limit), replace=False))
        rows = rows.iloc[keep].reset_index(drop=True)
    return rows


def face_box_in_crop(side: int, margin: float) -> tuple[int, int, int, int]:
    """The detector box inside a square crop cut with `margin` (a fraction of the box on each side)."""
    lo = side * margin / (1.0 + 2.0 * margin)
    hi = side - lo
    return int(round(lo)), int(round(lo)), int(round(hi)), int(round(hi))


def crop_landmarks(cache: str | Path, crop_paths: Sequence[str]) -> dict[str, np.ndarray | None]:
    """68 landmarks per crop (None where they could not be found), from CACHE/landmarks68.csv or computed and added to it."""
    from ddtool.media.landmarks import landmarks_68

    cache = Path(cache)
    store = cache / LANDMARKS_FILE
    known: dict[str, np.ndarray | None] = {}
    if store.is_file():
        try:
            for row in csv.DictReader(store.open(encoding="utf-8")):
                points = json.loads(row["landmarks"])
                known[row["crop_path"]] = np.asarray(points, np.float32).reshape(68, 2) if points else None
        except (OSError, ValueError, KeyError, TypeError):
            known = {}  # unreadable: recompute rather than trust it
    margin = crop_margin(cache) or 0.0
    missing = [p for p in dict.fromkeys(crop_paths) if p not in known]
    for path in missing:
        image = load_crop(cache / path)
        side = min(image.shape[:2])
        try:
            points = landmarks_68(image, face_box_in_crop(side, margin))
        except DDToolError:
            raise
        except Exception:  # dlib gives no typed error for a hopeless crop
            points = None
        if points is not None and not np.isfinite(points).all():
            points = None
        known[path] = points
    if missing:
        try:
            with atomic_path(store) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["crop_path", "landmarks"])
                for path, points in known.items():
                    writer.writerow([path, json.dumps([] if points is None else np.round(points, 2).tolist())])
        except OSError:
            pass  # a read-only cache: keep them in memory for this run
    return {p: known[p] for p in crop_paths}


class SynthesisDataset(FaceCropDataset):
    """Pairs (real crop, a fresh forgery of it): item 2j is real j mod n, item 2j+1 a forgery of it.

    `repeats` R shows every real R times per epoch, each time with another
    forgery (a small cache then gives enough steps per validation pass).
    `fixed_epoch` pins the forgeries (validation: the same fakes every epoch).
    """

    def __init__(
        self,
        cache: str | Path,
        reals: pd.DataFrame,
        size: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        methods: Sequence[str],
        seed: int,
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
        fixed_epoch: int | None = None,
        repeats: int = 1,
    ):
        self.methods = check_methods(methods)
        if int(repeats) < 1:
            raise ConfigError(f"synth_repeats must be at least 1, got {repeats}")
        reals = reals[reals["label"] == 0].reset_index(drop=True)
        if reals.empty:
            raise ConfigError("--synth needs real crops (label 0) in the training split; this cache has none")
        marks = crop_landmarks(cache, reals["crop_path"].tolist())
        usable = reals[[marks[p] is not None for p in reals["crop_path"]]].reset_index(drop=True)
        self.skipped = len(reals) - len(usable)
        if usable.empty:
            raise ConfigError("--synth: no real crop had findable face landmarks; check the cache's crops")
        if "face_swap" in self.methods and usable["video_id"].nunique() < 2:
            raise ConfigError("--synth face_swap needs real crops of at least two videos (a donor must be someone else)")
        order = np.tile(np.arange(len(usable)), int(repeats))
        pairs = usable.loc[np.repeat(order, 2)].reset_index(drop=True)
        pairs["label"] = np.tile([0, 1], len(order))
        super().__init__(cache, pairs, size, mean, std, augment=augment)
        self.reals = usable
        self.landmarks = [marks[p] for p in usable["crop_path"]]
        # Donors for face_swap: another video's face (another group when the cache has groups).
        key = "group" if "group" in usable.columns else "video_id"
        self.donor_key = usable[key].astype(str).to_numpy()
        self.repeats = int(repeats)
        self.seed, self.epoch, self.fixed_epoch = int(seed), 0, fixed_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def draw_epoch(self) -> int:
        """The epoch the random draws are seeded with: the current one, or the pinned one."""
        return self.epoch if self.fixed_epoch is None else self.fixed_epoch

    def forge(self, j: int) -> tuple[np.ndarray, str]:
        """The forgery of pair j (real j mod n) for the current epoch, and its method."""
        from ddtool.data.synth import make_forgery

        rng = np.random.default_rng([self.seed, self.draw_epoch, j])
        k = j % len(self.reals)
        method = self.methods[int(rng.integers(len(self.methods)))]
        strength = float(rng.uniform(*STRENGTH_RANGE))
        image = load_crop(self.paths[2 * k])  # pairs of the first repeat are in real order
        extra = {}
        if method == "face_swap":
            others = np.flatnonzero(self.donor_key != self.donor_key[k])
            donor = int(rng.choice(others)) if len(others) else k
            donor_image = load_crop(self.paths[2 * donor])
            if donor_image.shape != image.shape:
                import cv2

                sy, sx = image.shape[0] / donor_image.shape[0], image.shape[1] / donor_image.shape[1]
                donor_image = cv2.resize(donor_image, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
                donor_marks = self.landmarks[donor] * np.array([sx, sy], np.float32)
            else:
                donor_marks = self.landmarks[donor]
            extra = {"donor": donor_image, "donor_landmarks": donor_marks}
        try:
            forged = make_forgery(method, image, self.landmarks[k], rng, strength, **extra).image
        except ConfigError:
            # face_swap's affine fit can fail on a degenerate donor: fall back to SBI, which cannot
            forged, method = make_forgery("self_blend", image, self.landmarks[k], rng, strength).image, "self_blend"
        return forged, method

    def __getitem__(self, index: int):
        k, fake = divmod(index, 2)
        # Real k and its forgery get the same augmentation draw (SBI transforms both
        # halves of a pair alike), so within a pair only the forgery differs.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, self.draw_epoch, k, 1]).generate_state(1)[0]))
            if not fake:
                return super().__getitem__(index)
            from ddtool.data.synth import method_domain

            image, method = self.forge(k)
            return self.to_tensor(image), 1, method_domain(method), index

    def describe(self) -> dict:
        return {
            "methods": self.methods, "strength": list(STRENGTH_RANGE), "real_crops": len(self.reals),
            "skipped_without_landmarks": self.skipped, "repeats": self.repeats,
            "forgeries_per_epoch": self.repeats * len(self.reals),
        }
