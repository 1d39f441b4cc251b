"""Deterministic identity splits for real-face photo collections.

Training from real faces (SBI) and calibrating detectors on real faces must
never share a person: a threshold set on faces the detector trained on would
flag too few real faces in the field. Both sides decide by a hash of the
person id, so the split is the same on every machine and in every run.
"""

from __future__ import annotations

import hashlib

HELDOUT_MODULUS = 10  # 1 person in 10 is held out for calibration / false-positive checks
VAL_PERCENT = 8  # of the rest, this share of people validates training


def _bucket(person: str, salt: str, modulus: int) -> int:
    digest = hashlib.sha1(f"{salt}{person}".encode("utf-8")).hexdigest()
    return int(digest, 16) % modulus


def is_heldout_identity(person: str) -> bool:
    """True for the people kept out of every shipped detector's training (calibration set)."""
    return _bucket(person, "", HELDOUT_MODULUS) == 0


def identity_split(person: str) -> str:
    """'test' (held out for calibration), 'val' or 'train' for one person id."""
    if is_heldout_identity(person):
        return "test"
    return "val" if _bucket(person, "val:", 100) < VAL_PERCENT else "train"
