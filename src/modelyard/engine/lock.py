"""One run at a time per project: an advisory ``flock`` on ``<store>/lock``.

A whole run (``modelyard run``) and ``modelyard clean`` take it exclusively: they clear the
store's temporary files, publish the outputs, or delete artifacts. A single step
(``modelyard run --step``) takes it shared: it only adds an artifact under its content key
(atomically, see :mod:`modelyard.engine.store`), so single steps of independent branches run
side by side, while a whole run or a clean waits for them (and they for it).

The kernel releases the lock when the holding process dies, so a killed run never leaves a
stale lock behind. A store in an object store has a lease instead (:mod:`modelyard.engine.remote`).
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

    def __init__(
        self, path: Path | str, holder: dict[str, object] | None, *, fix: str | None = None
    ) -> None:
        self.path = path
        self.holder = holder or {}
        who = (
            f"process {self.holder.get('pid')} (`{self.holder.get('command')}`, since {self.holder.get('since')})"
            if self.holder
            else "another process (perhaps single steps, `modelyard run --step`)"
        )
        super().__init__(
            f"another run is using this project: {who} holds the lock",
            where=str(path),
            fix=fix
            or "Wait for it to finish (or stop it); the lock is released as soon as it exits.",
        )


class ProjectLock:
    """``with ProjectLock(path, command="modelyard run"):`` ... raises :class:`ProjectLocked`.

    ``shared``: several shared holders at once (single steps), none while an exclusive one
    holds it. Only an exclusive holder writes who it is into the file.
    """

    def __init__(self, path: Path, *, command: str = "", shared: bool = False) -> None:
        self.path = Path(path)
        self.command = command
        self.shared = shared
        self._fd: int | None = None

    def __enter__(self) -> ProjectLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder: dict[str, object] | None
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "null")
            except ValueError:
                holder = None
            os.close(fd)
            raise ProjectLocked(self.path, holder) from None
        self._fd = fd
        if self.shared:  # no exclusive holder now: what the file says is a killed one's
            os.ftruncate(fd, 0)
            return self
        info = {
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": self.command or " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            if not self.shared:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
