"""A one-line progress bar on stderr (only when stderr is a terminal or WEBJIT_PROGRESS=1)."""
from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, label: str, total: int, width: int = 30):
        self.label, self.total, self.width = label, max(total, 1), width
        self.start = time.perf_counter()
        self.on = sys.stderr.isatty() or os.environ.get("WEBJIT_PROGRESS") == "1"

    def __call__(self, done: int, total: int | None = None, note: str = "") -> None:
        if not self.on:
            return
        total = total or self.total
        filled = int(self.width * done / max(total, 1))
        bar = "█" * filled + "░" * (self.width - filled)
        secs = time.perf_counter() - self.start
        sys.stderr.write(f"\r{self.label:<10} {bar} {done}/{total} {secs:5.1f}s {note[:30]:<30}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
