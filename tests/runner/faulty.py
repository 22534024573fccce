"""Stages that fail on purpose, for the runner's failure-semantics tests. Shipped to
Ray workers by value (cloudpickle), so workers need not import this module."""

from __future__ import annotations

from pydantic import Field

from curation.document import Document
from curation.stage import Stage, StageConfig


class FaultyConfig(StageConfig):
    doc_ids: list[str] = Field(default_factory=list)  # fail when one of these is seen
    error: str = "ValueError"  # ValueError (data) | MemoryError | CudaError | OSError


def make_error(kind: str) -> BaseException:
    if kind == "CudaError":
        return RuntimeError("CUDA error: an illegal memory access was encountered")
    if kind == "OSError":
        return ConnectionResetError(104, "Connection reset by peer (storage)")
    return {"ValueError": ValueError, "MemoryError": MemoryError}[kind](
        "injected fault")


class FaultyStage(Stage):
    """Raises ``error`` on any batch holding one of ``doc_ids``."""

    name = "faulty"
    Config = FaultyConfig
    config: FaultyConfig

    def process_kept(self, docs: list[Document]) -> None:
        for doc in docs:
            if doc.doc_id in self.config.doc_ids:
                raise make_error(self.config.error)
