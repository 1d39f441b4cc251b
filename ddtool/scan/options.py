"""What a scan is asked to do: the options of `ddtool scan`, checked before anything slow.

The first thing a scan reads and the one object handed down its steps:
options -> panel (scan.panel: which detectors, on which engine and device,
with how many threads) -> face extractor (detector, crop views) -> scores ->
verdict -> evidence. Library users build it as the CLI does:
`ScanOptions(frames=32, panel=["sbi_efficientnet_lite0"])`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ddtool.device import DEFAULT_DEVICE, stage_threads
from ddtool.errors import ConfigError
from ddtool.evaluate.rules import check_rule
from ddtool.media.faces import DEFAULT_SCAN_DETECTOR


@dataclass
class ScanOptions:
    model: str | None = None
    weights: str | Path | None = None
    panel: list[str] | None = None  # shipped weights names; None: --weights/--untrained, else weights/panel.txt
    untrained: bool = False
    frames: int = 32
    detector: str = DEFAULT_SCAN_DETECTOR
    detector_model: str | Path | None = None  # replaces the face detector's shipped/default model file
    all_faces: bool = False
    threshold: float = 0.5
    device: str = DEFAULT_DEVICE
    batch: int = 32
    aggregate: str = "mean"
    margin: float | None = None  # None: the margin the model's training crops had (its card), else 0
    threads: int | None = None  # CPU threads per stage (detection, scoring); None: ddtool.device.stage_threads
    # Keep, for the report's evidence faces, the face at its own resolution + a frame thumbnail (cut during the one decode).
    evidence_images: bool = False

    def validate(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"--frames {self.frames}: sample at least 1 frame")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"--threshold {self.threshold}: must be a probability in [0, 1]")
        if self.batch < 1:
            raise ConfigError(f"--batch {self.batch}: must be at least 1")
        check_rule(self.aggregate)
        stage_threads(self.threads)
        if self.margin is not None and not 0.0 <= self.margin <= 2.0:
            raise ConfigError(f"--margin {self.margin}: a fraction of the face box between 0 and 2")
