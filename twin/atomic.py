"""The one atomic file writer: write to a temp file beside the target, make it readable (0644), rename.

Every file CityTwin writes for others to read (results netCDF, batch run/error JSON, HTML reports) goes
through :func:`write_atomic_with`, so a crash never leaves a half-written file and no file is left 0600
(``mkstemp`` creates private files).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["write_atomic_with", "write_text_atomic", "write_json_atomic", "FILE_MODE"]

FILE_MODE = 0o644


def write_atomic_with(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temp file in ``path``'s folder, then chmod 0644 and rename onto
    ``path``. On any error the temp file is removed and the error re-raised; the target is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    return write_atomic_with(path, write)


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values as ``str``)."""
    return write_text_atomic(json.dumps(obj, indent=1, default=str), path)
