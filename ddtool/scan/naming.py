"""Evidence folder names: one per input, never shared, readable, and short enough for any filesystem.

The name is the input's path relative to the scanned folder with its parts
joined by `__` (`sub/clip.mp4` -> `sub__clip.mp4`), unicode kept (NFC), and
characters no portable file name may hold replaced by `_`. When that name is
not the input's own file name unchanged (a sub-folder, a replaced character,
a name over MAX_NAME_BYTES cut in the middle) a short hash of the relative
path is added (`sub__clip.mp4-3f2a9c1e07b4`). Why this is unique by
construction: an unhashed name is a file name of the scanned folder itself
(two files of one folder never share a name), and a hashed name ends in
`-<hex>`, which no media file name does (they end in a media suffix), so the
two kinds never meet; two hashed names would need equal hashes of different
paths.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Longest readable part in UTF-8 bytes: far under the 255 bytes most filesystems allow, leaving room
# for the hash and keeping a whole evidence path short enough to open on Windows too.
MAX_NAME_BYTES = 120
HASH_CHARS = 12
SEPARATOR = "__"
# Characters no portable file name holds (Windows, SMB shares, zip): replaced by "_".
_UNSAFE = set('/\\:*?"<>|')


@dataclass(frozen=True)
class EvidenceName:
    name: str  # the folder's name inside --out
    relative_path: str  # the input's path relative to the scanned folder (what the name and hash come from)
    hashed: bool  # True when a hash of relative_path was added (the readable part alone could be shared)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "relative_path": self.relative_path, "hashed": self.hashed,
                "rule": "relative path, parts joined by '__'; a hash of the relative path added unless it is the file's own name unchanged"}


def relative_to_root(path: str | Path, root: str | Path | None) -> Path:
    """The input's path relative to the scanned folder (just its name for a single file)."""
    path = Path(path)
    if root is not None:
        try:
            return path.relative_to(root)
        except ValueError:
            pass
    return Path(path.name)


def path_hash(relative: Path) -> str:
    """Short sha256 of the relative path (undecodable bytes of a name kept as they were on disk)."""
    return hashlib.sha256(relative.as_posix().encode("utf-8", "surrogateescape")).hexdigest()[:HASH_CHARS]


def _safe_part(part: str) -> str:
    part = unicodedata.normalize("NFC", part)
    chars = []
    for char in part:
        unsafe = char in _UNSAFE or unicodedata.category(char) in ("Cc", "Cs") or not _encodable(char)
        chars.append("_" if unsafe else char)
    return "".join(chars)


def _encodable(char: str) -> bool:
    try:
        os.fsencode(char)
        char.encode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def _cap(name: str, suffix: str) -> str:
    """`name` cut to MAX_NAME_BYTES of UTF-8, keeping its start and its media suffix (`long...name.mp4`)."""
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    budget = MAX_NAME_BYTES - len(("..." + suffix).encode("utf-8"))
    head = name.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return f"{head}...{suffix}"


def evidence_name(path: str | Path, root: str | Path | None = None) -> EvidenceName:
    """The evidence folder name of one input (see the module docstring)."""
    relative = relative_to_root(path, root)
    parts = [_safe_part(p) for p in relative.parts] or ["input"]
    readable = SEPARATOR.join(parts)
    safe_suffix = _safe_part(relative.suffix)
    capped = _cap(readable, safe_suffix)
    own_name = len(relative.parts) == 1 and capped == relative.name and relative.name not in ("", ".", "..")
    relative_text = relative.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if own_name:
        return EvidenceName(capped, relative_text, False)
    return EvidenceName(f"{capped}-{path_hash(relative)}", relative_text, True)


def ascii_fallback(path: str | Path, root: str | Path | None = None) -> EvidenceName:
    """For a filesystem that refuses the unicode name: the same name in ASCII, always hashed."""
    relative = relative_to_root(path, root)
    readable = evidence_name(path, root)
    stem = readable.name[: -(HASH_CHARS + 1)] if readable.hashed else readable.name
    ascii_stem = "".join(c if c.isascii() and c.isprintable() else "_" for c in stem)
    return EvidenceName(f"{ascii_stem}-{path_hash(relative)}", readable.relative_path, True)
