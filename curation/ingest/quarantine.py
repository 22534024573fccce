"""A bad input record, kept with its reason and location instead of stopping the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class QuarantineRecord:
    file: str
    reason: str  # short code, e.g. "malformed_json", "missing_field:text_list"
    detail: str
    line: int | None = None  # 1-based line for JSONL
    row: int | None = None  # 0-based row for Parquet
    excerpt: str = ""  # first bytes of the record, for a human to look at

    def to_dict(self) -> dict:
        return asdict(self)

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.row is not None:
            return f"{self.file}#row={self.row}"
        return self.file


def excerpt_of(raw: bytes | str, limit: int = 200) -> str:
    if isinstance(raw, bytes):
        raw = raw[:limit].decode("utf-8", errors="replace")
    return raw[:limit]
