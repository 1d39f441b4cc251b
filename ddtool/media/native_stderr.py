"""Capture what C libraries write straight to file descriptor 2 during one call.

libjpeg (inside OpenCV) reports a truncated or corrupt JPEG by printing
"Premature end of JPEG file" / "Corrupt JPEG data: ..." to fd 2 and still
returning an image. Python's sys.stderr never sees it, so it lands on the
user's terminal detached from the file it is about. Decoding inside
`captured_native_stderr()` keeps the text so the caller can put it into that
file's error instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()  # fd 2 is process-wide: one capture at a time


class Captured:
    """The text written to fd 2 inside the block (filled in when the block ends)."""

    text: str = ""

    @property
    def lines(self) -> list[str]:
        # a terminal UI thread (rich's progress) may write in the same window: keep decoder lines only
        return [line.strip() for line in self.text.splitlines() if line.strip() and "\x1b" not in line]


@contextmanager
def captured_native_stderr() -> Iterator[Captured]:
    captured = Captured()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded interpreters): nothing to capture
        yield captured
        return
    with _lock, tempfile.TemporaryFile(mode="w+b") as sink:
        python_stderr = sys.stderr
        try:
            python_stderr.flush()
            on_fd2 = python_stderr.fileno() == 2
        except (AttributeError, ValueError, OSError):
            on_fd2 = False
        # Python-level writes in the window (rich's progress thread) keep going to
        # the real stderr through a copy of it; only C code writing to fd 2 is caught.
        bypass = os.fdopen(os.dup(saved), "w", encoding=getattr(python_stderr, "encoding", None) or "utf-8", errors="replace") if on_fd2 else None
        os.dup2(sink.fileno(), 2)
        if bypass is not None:
            sys.stderr = bypass
        try:
            yield captured
        finally:
            if bypass is not None:
                sys.stderr = python_stderr
                bypass.close()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")
