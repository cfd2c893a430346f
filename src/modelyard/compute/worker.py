"""A worker process of the local pool: ``python -m modelyard.compute.worker [MODULE ...]``.

It imports the given modules (so the first task does not pay for them), then reads tasks
(an 8-byte id, then the pickled ``(function, arguments)``) from stdin and writes pickled
``(id, ok, result or exception)`` to stdout until it reads an empty message or the pool closes the pipe. The protocol owns the
original stdin and stdout; anything a task prints goes to stderr, which the pool logs.
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from modelyard.compute import THREAD_VARIABLES
from modelyard.compute.task import call, quiet_warnings

_KEEP_SHARED = 3
"""Shared values kept in memory (most recently used first)."""


class _SharedCache:
    def __init__(self) -> None:
        self._values: collections.OrderedDict[str, Any] = collections.OrderedDict()

    def get(self, token: str, path: str) -> Any:
        if token in self._values:
            self._values.move_to_end(token)
            return self._values[token]
        with Path(path).open("rb") as f:
            value = pickle.load(f)
        self._values[token] = value
        while len(self._values) > _KEEP_SHARED:
            self._values.popitem(last=False)
        return value


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it pickles, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        plain = RuntimeError(f"{type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", []):
            plain.add_note(note)
        return plain
    return exc


def serve(tasks: Connection, results: Connection) -> None:
    """Run tasks until an empty message or the end of the input."""
    shared = _SharedCache()
    while True:
        try:
            message = tasks.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        task_id = int.from_bytes(message[:8], "big")
        try:
            fn, wire = pickle.loads(message[8:])
            args = [shared.get(w[1], w[2]) if w[0] == "shared" else w[1] for w in wire]
            reply = (task_id, True, call(fn, args))
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # the task's own error, or one unpickling it
            data = pickle.dumps((task_id, False, _portable(exc)), protocol=pickle.HIGHEST_PROTOCOL)
        results.send_bytes(data)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool stops its workers itself
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    tasks = Connection(os.dup(0), writable=False)
    results = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a task's prints go to the log, never into the protocol
    quiet_warnings()
    for module in argv:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the task that needs it reports the error
            print(f"warm-up import of {module} failed: {exc}", file=sys.stderr)
    serve(tasks, results)


if __name__ == "__main__":
    main(sys.argv[1:])
