"""Old home of checkpoint reading and writing, kept so `ddtool.train.checkpoint` imports keep working.

Checkpoints are a models concern (inference loads them without training
code): the code lives in `ddtool.models.checkpoint`.
"""

from ddtool.models.checkpoint import (  # noqa: F401
    CARD_VERSION,
    CHECKPOINT_IS,
    MAX_CLIMB,
    WEIGHT_SUFFIXES,
    card_path_for,
    load_checkpoint,
    missing_checkpoint_message,
    portable_path,
    read_card,
    save_checkpoint,
    sha256_file,
    strip_machine_paths,
)
