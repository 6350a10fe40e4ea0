"""Progress of long steps: a one-line bar on stderr (only when stderr is a terminal or WEBJIT_PROGRESS=1), and
for a caller that shows progress its own way (a web page: see inbrowser.py), `listening(callback)`."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable

_listeners: list[Callable[[str, int, int], None]] = []


@contextmanager
def listening(callback: Callable[[str, int, int], None]):
    """Within the block, every progress step also calls callback(label, done, total)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


class Progress:
    def __init__(self, label: str, total: int, width: int = 30):
        self.label, self.total, self.width = label, max(total, 1), width
        self.start = time.perf_counter()
        self.on = sys.stderr.isatty() or os.environ.get("WEBJIT_PROGRESS") == "1"

    def __call__(self, done: int, total: int | None = None, note: str = "") -> None:
        total = total or self.total
        for listener in _listeners:
            listener(self.label, done, total)
        if not self.on:
            return
        filled = int(self.width * done / max(total, 1))
        bar = "█" * filled + "░" * (self.width - filled)
        secs = time.perf_counter() - self.start
        sys.stderr.write(f"\r{self.label:<10} {bar} {done}/{total} {secs:5.1f}s {note[:30]:<30}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
