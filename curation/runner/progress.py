"""One live progress view for a run; per-unit detail goes to a log file.

On a terminal the current pass is one line redrawn in place (units, documents and
images done, rate, ETA, kept and dropped so far); into a pipe or a file it prints one
short summary line every ``interval_s`` (30 s) and one when a pass ends, so a run
over 100M documents prints a few hundred lines, not one per unit. Every unit's
detail (documents, kept, data errors, timings) goes to ``OUTPUT/_logs/run-*.log``,
named in the first line printed.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO

from curation.location import Location
from curation.runner.chain import UnitReport
from shards.layout import LOGS


def _fmt_rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "-"


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f" ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class PassCounters:
    label: str
    total_units: int | None
    started: float = field(default_factory=time.monotonic)
    units: int = 0
    documents: int = 0
    images: int = 0
    kept: int = 0

    def add(self, report: UnitReport) -> None:
        self.units += 1
        self.documents += report.documents
        self.images += report.images
        self.kept += report.kept

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        total = f"/{self.total_units}" if self.total_units is not None else ""
        eta = None
        if self.total_units and self.units:
            eta = elapsed / self.units * (self.total_units - self.units)
        return (f"{self.label}: {self.units}{total} units, {self.documents:,} docs "
                f"({_fmt_rate(self.documents, elapsed)}), {self.images:,} images, "
                f"kept {self.kept:,} dropped {self.documents - self.kept:,}"
                f"{_fmt_eta(eta)}")


class RunProgress:
    """Progress of one run: a live line (TTY) or periodic lines, plus the log file."""

    def __init__(self, output: Location, stream: IO[str] | None = None,
                 interval_s: float = 30.0, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.interval_s = interval_s
        self.output = output
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.log_name = f"run-{stamp}-{os.getpid()}.log"
        if output.remote:  # uploaded when the run ends
            self._log_path = os.path.join(tempfile.mkdtemp(prefix="curate-log-"),
                                          self.log_name)
        else:
            self._log_path = os.path.join(output.path(LOGS), self.log_name)
            os.makedirs(os.path.dirname(self._log_path), exist_ok=True)
        self._log: IO[str] = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115
        self._pass: PassCounters | None = None
        self._last_print = 0.0
        self._line_open = False

    @property
    def log_location(self) -> str:
        return self.output.join(LOGS, self.log_name)

    def say(self, message: str) -> None:
        """A line for the person watching (also logged)."""
        self._clear()
        self.emit(message)
        self.log(message)

    def emit(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def log(self, message: str) -> None:
        self._log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        self._log.flush()

    def start_pass(self, label: str, total_units: int | None) -> None:
        self._pass = PassCounters(label, total_units)
        self._last_print = time.monotonic()
        self.log(f"{label}: started, "
                 f"{total_units if total_units is not None else '?'} units")
        if self.live:
            self._draw()

    def unit_done(self, report: UnitReport) -> None:
        assert self._pass is not None
        self._pass.add(report)
        timing = " ".join(f"{k}={v:.2f}s" for k, v in sorted(report.timing.items()))
        errors = f" errors={report.errors}" if report.errors else ""
        self.log(f"unit {report.unit}: {report.documents} docs, {report.kept} kept, "
                 f"{report.images} images{errors} {timing}")
        now = time.monotonic()
        if self.live:
            if now - self._last_print >= 0.2:
                self._draw()
                self._last_print = now
        elif now - self._last_print >= self.interval_s:
            self.emit(self._pass.line())
            self._last_print = now

    def end_pass(self) -> None:
        if self._pass is not None:
            self._clear()
            line = self._pass.line()
            self.emit(line)
            self.log(line)
            self._pass = None

    def _draw(self) -> None:
        assert self._pass is not None
        self.stream.write("\r\x1b[2K" + self._pass.line())
        self.stream.flush()
        self._line_open = True

    def _clear(self) -> None:
        if self._line_open:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._line_open = False

    def close(self) -> None:
        self._clear()
        self._log.close()
        if self.output.remote:
            with open(self._log_path, "rb") as f:
                self.output.child(LOGS).write_bytes(self.log_name, f.read())


class QuietProgress(RunProgress):
    """Progress for library use and tests: lines go to a string buffer."""

    def __init__(self, output: Location) -> None:
        super().__init__(output, stream=io.StringIO(), live=False)
