"""A progress line for a loop in one process (`curate export`, `curate dedup`'s
writer) and a heartbeat for a step with nothing to count: on a terminal one line
redrawn in place, into a pipe one line every ``interval_s`` and one at the end.
`curate run` has its own view over many workers (curation/runner/progress.py) with
the same look."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO


class Ticker:
    def __init__(self, label: str, total: int | None = None, unit: str = "items",
                 stream: IO[str] | None = None, interval_s: float = 30.0) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval_s = interval_s
        self.done = 0
        self.extra = ""
        self.started = self._last = time.monotonic()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total:,}" if self.total else ""
        eta = ""
        if self.total and self.done and rate > 0:
            left = int((self.total - self.done) / rate)
            eta = f" ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        extra = f", {self.extra}" if self.extra else ""
        return f"{self.label}: {self.done:,}{total} {self.unit} ({rate:,.0f}/s){extra}{eta}"

    def update(self, n: int = 1, extra: str | None = None) -> None:
        self.done += n
        if extra is not None:
            self.extra = extra
        now = time.monotonic()
        if self.live and now - self._last >= 0.2:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()
            self._last = now
        elif not self.live and now - self._last >= self.interval_s:
            print(self.line(), file=self.stream, flush=True)
            self._last = now

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
        print(self.line(), file=self.stream, flush=True)


class Heartbeat:
    """For a step with nothing to count from the driver (a distributed fit): its label
    and elapsed time, redrawn on a terminal, into a pipe every ``interval_s``."""

    def __init__(self, label: str, stream: IO[str] | None = None,
                 interval_s: float = 30.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval_s = interval_s if not self.live else 1.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def line(self) -> str:
        s = int(time.monotonic() - self.started)
        return f"{self.label}: {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d} elapsed"

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.live:
                self.stream.write("\r\x1b[2K" + self.line())
                self.stream.flush()
            else:
                print(self.line(), file=self.stream, flush=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
