"""Progress and status lines on stderr, so stdout stays clean for results (and ``--output json``)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``[kfp-cicd] …`` lines with the elapsed time; silent when ``quiet``."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        if self._quiet:
            return
        stream = self._stream or sys.stderr
        print(f"[kfp-cicd {time.monotonic() - self._start:6.1f}s] {message}", file=stream, flush=True)
