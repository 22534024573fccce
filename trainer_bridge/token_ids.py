"""Batch collation as VILA's ``DataCollatorForSupervisedDataset`` does it.

A sample with ``rows`` (pairs: several sequences per index) contributes one batch row
per sequence. Ids are padded with the pad id and labels with -100, then both are cut
to ``model_max_length``; ``attention_mask`` is ``input_ids != pad`` (VILA's rule); each
row keeps as many of its images as image tokens survived the cut (a trailing image
token keeps its image). ``num_images`` says how many images each row owns in the
concatenated ``images`` stack. ``__worker__`` stays one entry per *sample* (what
``ResumableLoader`` counts); other keys become per-row lists.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from trainer_bridge.formats import VILA1_IMAGE_TOKEN_ID

IGNORE_INDEX = -100
PER_SAMPLE_KEYS = ("__worker__",)

__all__ = ["IGNORE_INDEX", "VILA1_IMAGE_TOKEN_ID", "Collator", "rows_of"]


def rows_of(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch's sequences: each pair of a ``rows`` sample becomes its own row."""
    rows = []
    for sample in batch:
        if "rows" in sample:
            rows.extend(sample["rows"])
        else:
            rows.append(sample)
    return rows


class Collator:
    """Pads, truncates to ``model_max_length`` and stacks images (picklable)."""

    def __init__(self, pad_token_id: int = 0, model_max_length: int | None = None,
                 image_token_id: int = VILA1_IMAGE_TOKEN_ID) -> None:
        self.pad_token_id, self.max_length = pad_token_id, model_max_length
        self.image_token_id = image_token_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        rows = rows_of(batch)
        out: dict[str, Any] = {}
        if "input_ids" in rows[0]:
            ids = pad_sequence([torch.as_tensor(r["input_ids"], dtype=torch.long) for r in rows],
                               batch_first=True, padding_value=self.pad_token_id)
            labels = pad_sequence([torch.as_tensor(r["labels"], dtype=torch.long) for r in rows],
                                  batch_first=True, padding_value=IGNORE_INDEX)
            if self.max_length is not None:
                ids, labels = ids[:, :self.max_length], labels[:, :self.max_length]
            out.update(input_ids=ids, labels=labels, attention_mask=ids.ne(self.pad_token_id))
        if "images" in rows[0]:
            if "input_ids" in out:
                counts = (out["input_ids"] == self.image_token_id).sum(1).tolist()
            else:
                counts = [len(r["images"]) for r in rows]
            kept = [r["images"][:n] for r, n in zip(rows, counts) if n]
            out["images"] = torch.cat(kept) if kept else None
            out["num_images"] = torch.tensor(counts, dtype=torch.long)
        for key in rows[0]:
            if key not in ("input_ids", "labels", "images") and key not in PER_SAMPLE_KEYS:
                out[key] = [r.get(key) for r in rows]
        for key in PER_SAMPLE_KEYS:
            if key in batch[0]:
                out[key] = [b[key] for b in batch]
        return out
