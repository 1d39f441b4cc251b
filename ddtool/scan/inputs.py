"""What a scan will read and write, checked before any slow work (no torch, no model).

A missing input or an output folder that is really a file must fail in a
fraction of a second, not after the model has loaded or the scan has run.
"""

from __future__ import annotations

from pathlib import Path

from ddtool.errors import ConfigError, InputError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


def list_inputs(path: str | Path) -> list[Path]:
    """The file itself, or every video/image under a folder (recursive, sorted)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        try:
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith("."))
        except OSError as exc:
            raise InputError(f"{path}: cannot list the folder ({exc.strerror}); check its permissions") from None
        if not found:
            raise InputError(
                f"{path}: no videos or images inside (looked for {', '.join(sorted(MEDIA_SUFFIXES))}); pass a media file or folder"
            )
        return found
    return [path]


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the evidence folder now; a path that is (or lies under) a file is a one-line error."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is an existing file, not a folder; pass a folder path (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {out_dir}: a part of the path is a file, not a folder; pass a folder path") from None
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the folder ({exc.strerror}); check the path and its permissions") from None
    return out_dir
