"""Private files: the instance folder is 0700 and what Traject writes there 0600.

The instance folder holds the SQLite database, the file mail backend's messages, the demo password
and the development secret: personal data and keys, which a default umask (022) would leave
readable for every account on the machine. Modes are set when a file is created (never a window in
which it is readable) and tightened on start-up where an older instance left them open.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE, FILE_MODE = 0o700, 0o600


def private_dir(path: str | os.PathLike) -> Path:
    """Create the folder (and its parents) if needed; the folder itself ends up 0700."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Create an empty file 0600 if there is none (so that whoever fills it inherits the mode); tighten an old one."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    tighten(path, FILE_MODE)
    return path


def write_private(path: str | os.PathLike, data: str | bytes) -> None:
    """Write the file with mode 0600 from its first byte."""
    body = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT
        os.write(fd, body)
    finally:
        os.close(fd)


def tighten(path: Path, mode: int) -> None:
    """Take group and other permissions away from an existing file or folder of ours."""
    try:
        current = path.stat().st_mode & 0o777
        if current & 0o077:
            path.chmod(current & ~0o077 | (mode & 0o700))
            log.warning("%s was readable by others (mode %o); now %o", path, current, path.stat().st_mode & 0o777)
    except PermissionError as exc:  # not ours to change (a shared folder): say so, do not stop
        log.warning("cannot make %s private: %s", path, exc)
