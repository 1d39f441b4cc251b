"""ddtool.media: read videos and images, sample frames, find and crop faces.

`video` probes inputs and decodes only the sampled frames; `faces` detects,
crops and tracks faces in them; `landmarks` gives 68-point shapes for the
forgery synthesis; `images` makes crops RGB and writes PNGs; `suffixes` says
which files are media.
"""

from ddtool.media.faces import Box, FaceCrop, FaceDetector, FaceExtractor, create_detector, crop_face
from ddtool.media.video import (
    PRESETS,
    Frame,
    FrameReader,
    VideoInfo,
    preset_sampling,
    probe,
    read_frames,
    sample_indices,
)

__all__ = [
    "PRESETS",
    "Box",
    "FaceCrop",
    "FaceDetector",
    "FaceExtractor",
    "Frame",
    "FrameReader",
    "VideoInfo",
    "create_detector",
    "crop_face",
    "preset_sampling",
    "probe",
    "read_frames",
    "sample_indices",
]
