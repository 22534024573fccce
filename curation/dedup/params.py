"""Validated dedup parameters, shared by the pipeline stage, the Ray job and the CLI.

Defaults (README "Deduplication"): 128 permutations in 16 bands of 8 rows put the
LSH S-curve's midpoint at (1/16)^(1/8) = 0.71, so a pair at Jaccard 0.8 becomes a
candidate with probability 0.95 (0.99 at 0.85); candidates are then cut at
``threshold`` = 0.8 on their exact shingle-set Jaccard (or, with verify_exact off, on
the signature estimate, whose std is ~0.035 at 0.8 with 128 slots).
Peers (shared/README.md): DataTrove 112 = 14x8 (~0.72), text-dedup/Data-Juicer
250-256 = 25x10 at 0.7, NeMo 260 = 20x13 (~0.8); datasketch's 0.9 is too strict for
web mirrors with boilerplate edits.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from curation.stage import StageConfig


class DedupConfig(StageConfig):
    threshold: float = Field(default=0.8, gt=0.0, le=1.0,
                             description="Jaccard at or above which two docs are duplicates")
    num_perm: int = Field(default=128, ge=8, le=1024)
    bands: int = Field(default=16, ge=1)
    rows: int = Field(default=8, ge=1)
    ngram: int = Field(default=5, ge=1, le=32, description="words per shingle")
    seed: int = Field(default=1, ge=0, description="permutation seed (datasketch's)")
    url: bool = True  # drop documents whose normalized URL was seen
    exact: bool = True  # drop documents whose normalized text was seen
    minhash: bool = True  # drop near-duplicates
    verify_exact: bool = Field(
        default=True, description="cut candidates on the exact Jaccard of their shingle "
        "hash sets (facts then carry the shingle hashes, ~4 bytes a word); false: cut "
        "on the signature estimate (less memory, P/R ~0.94 around the threshold)")
    pair_sources: list[str] = Field(
        default=["coyo", "laion"],
        description="sources whose records are image-caption pairs: keyed by the image "
        "URL only, never by caption text (one caption may fit many images)")
    max_all_pairs: int = Field(default=64, ge=1,
                               description="bucket size above which a star replaces all pairs")

    @model_validator(mode="after")
    def _bands_fit(self) -> DedupConfig:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands}*{self.rows} exceeds "
                             f"num_perm = {self.num_perm}")
        return self
