"""Writing folders whole: a result is built in a temporary folder beside its destination and renamed into place."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder `src` to `dst`, replacing an existing `dst` only once `src` is complete; if the move fails, the
    old `dst` is put back."""
    old = None
    if dst.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
        dst.rename(old / dst.name)
    try:
        src.rename(dst)
    except OSError:
        if old is not None:
            (old / dst.name).rename(dst)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
