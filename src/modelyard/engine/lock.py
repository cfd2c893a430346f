"""One run at a time per project: an advisory ``flock`` on ``<workdir>/lock``.

The kernel releases the lock when the holding process dies, so a killed run never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from modelyard.errors import LockedError


class ProjectLocked(LockedError):
    """Raised when another process holds the lock; ``holder`` says who, if known."""

    def __init__(self, path: Path, holder: dict[str, object] | None) -> None:
        self.path = path
        self.holder = holder or {}
        who = (
            f"process {self.holder.get('pid')} (`{self.holder.get('command')}`, since {self.holder.get('since')})"
            if self.holder
            else "another process"
        )
        super().__init__(
            f"another run is using this project: {who} holds the lock",
            where=str(path),
            fix="Wait for it to finish (or stop it); the lock is released as soon as it exits.",
        )


class ProjectLock:
    """``with ProjectLock(path, command="modelyard run"):`` ... raises :class:`ProjectLocked`."""

    def __init__(self, path: Path, *, command: str = "") -> None:
        self.path = Path(path)
        self.command = command
        self._fd: int | None = None

    def __enter__(self) -> ProjectLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder: dict[str, object] | None
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "null")
            except ValueError:
                holder = None
            os.close(fd)
            raise ProjectLocked(self.path, holder) from None
        info = {
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": self.command or " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
