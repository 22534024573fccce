"""Data errors versus infrastructure errors.

One document's bad content (a malformed field, an image that does not decode) is
data: that document is dropped with a reason and the run goes on. Out of memory, a
storage or network failure of our own, a broken GPU, a lost worker are not data:
turning them into drops would silently empty every later unit on that worker. They
raise, Ray retries the task, and if the fault persists the run stops naming the
stage, the unit and the error.
"""

from __future__ import annotations

import json

# Exceptions that mean "this record's content is bad". Everything else is treated as
# an infrastructure fault. PIL's UnidentifiedImageError and zlib/struct errors are
# data too, though some derive from OSError.
_DATA_TYPES: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, IndexError, ArithmeticError, UnicodeError,
    AssertionError, json.JSONDecodeError, AttributeError, LookupError,
)
_DATA_NAMES = {"UnidentifiedImageError", "DecompressionBombError", "error",
               "BadZipFile", "ParserError", "ValidationError"}
# Substrings that mark infrastructure faults even in a data-typed exception
# (torch raises RuntimeError/ValueError subclasses for CUDA and memory failures).
_INFRA_MARKERS = ("CUDA", "cuda", "out of memory", "NCCL", "cuDNN", "CUBLAS",
                  "device-side assert", "No space left", "Too many open files")


class InfrastructureError(RuntimeError):
    """A stage failed for a reason that is not the data; carries where it happened."""

    def __init__(self, stage: str, unit: str, error: BaseException | str) -> None:
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"stage {stage!r} failed on unit {unit}: {detail}")
        self.stage, self.unit, self.detail = stage, unit, detail

    def __reduce__(self) -> tuple:  # travels between Ray processes intact
        return (type(self), (self.stage, self.unit, self.detail))


class RunStopped(RuntimeError):
    """The run stopped on purpose (too many data errors in one stage)."""


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` blames the record being processed, not the machine."""
    if isinstance(exc, (MemoryError, InfrastructureError)):
        return False
    text = str(exc)
    if any(marker in text for marker in _INFRA_MARKERS):
        return False
    if type(exc).__name__ in _DATA_NAMES:
        return True
    if isinstance(exc, OSError):  # storage, sockets, file handles: infrastructure
        return False
    return isinstance(exc, _DATA_TYPES)
