"""A clip_score stage that also notes which actor (pid, GPU ids Ray gave it, torch
device) scored each document, and starts scoring only once ``actors`` actors exist
(a file barrier), so a test can see how the runner placed the actor pool."""

from __future__ import annotations

import os
import time
from pathlib import Path

from curation.document import Document
from curation.scoring.stage import ClipScoreConfig, ClipScoreStage


class ClipProbeConfig(ClipScoreConfig):
    barrier_dir: str
    actors: int = 2
    barrier_timeout_s: float = 120.0
    hold_s: float = 0.5  # each unit keeps its actor busy, so units spread over actors


class ClipProbeStage(ClipScoreStage):
    name = "clip_probe"
    Config = ClipProbeConfig
    config: ClipProbeConfig

    def setup(self) -> None:
        super().setup()
        Path(self.config.barrier_dir, str(os.getpid())).write_text(
            os.environ.get("CUDA_VISIBLE_DEVICES", ""))

    def process_kept(self, docs: list[Document]) -> None:
        deadline = time.monotonic() + self.config.barrier_timeout_s
        barrier = Path(self.config.barrier_dir)
        while len(list(barrier.iterdir())) < self.config.actors \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        super().process_kept(docs)
        time.sleep(self.config.hold_s)
        assert self.clip is not None
        for doc in docs:
            doc.metadata["probe"] = {"pid": os.getpid(),
                                     "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                     "device": str(self.clip.device)}
