"""Drop known-spurious lines that Ray's native code writes to the process's stderr.

Ray Data starts every actor pool with its transform passed by object reference, and
Ray core then logs, once per actor, an ERROR line that the actor's "constructor
arguments are in the object store" (ray-project/ray#53727): nothing the user can act
on, and nothing wrong with the run. Native code writes it straight to file
descriptor 2, so Python's logging cannot filter it; this routes fd 2 through a pipe
and a small thread that drops exactly those lines. Everything else, partial lines
(a live progress line) included, is passed on at once. Used by the ``curate`` CLI
only, never on import.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

SPURIOUS: tuple[bytes, ...] = (
    b"has constructor arguments in the object store and max_restarts > 0",
)


class StderrFilter:
    def __init__(self, patterns: tuple[bytes, ...] = SPURIOUS) -> None:
        self.patterns = patterns
        self._orig: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._orig is not None:
            return
        sys.stderr.flush()
        read_fd, write_fd = os.pipe()
        self._orig = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True,
                                        name="stderr-filter")
        self._thread.start()
        atexit.register(self.stop)

    def _pump(self, read_fd: int) -> None:
        assert self._orig is not None
        pending = b""
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines
                           if not any(p in line for p in self.patterns))
            if pending and not pending.startswith(b"["):  # not a native log line start
                out, pending = out + pending, b""
            if out:
                os.write(self._orig, out)
        if pending:
            os.write(self._orig, pending)
        os.close(read_fd)

    def stop(self) -> None:
        """Restore fd 2; the pipe then has no writer, so the thread drains and ends."""
        if self._orig is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._orig, 2)
        if self._thread is not None:
            self._thread.join(timeout=1)
        os.close(self._orig)
        self._orig = None
