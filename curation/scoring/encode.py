"""Batched CLIP embeddings, L2-normalized in fp32 (cosine = dot product).

Texts longer than the model's context are truncated by its tokenizer (open_clip's
BPE tokenizer keeps the first ``context_length - 1`` tokens and ends with EOT).
Empty texts are never encoded: an empty sentence has no meaning to match, so the
caller gives it ``EMPTY_TEXT_SIM`` (the lowest cosine) and the assignment skips it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from curation.scoring.assign import is_empty
from curation.scoring.model import ClipModel

EMPTY_TEXT_SIM = -1.0


def encode_pixels(clip: ClipModel, pixels: torch.Tensor) -> np.ndarray:
    """(n, 3, H, W) preprocessed images -> (n, d) unit vectors (float32)."""
    with clip.inference():
        feats = clip.model.encode_image(pixels.to(clip.device, non_blocking=True))
    return F.normalize(feats.float(), dim=-1).cpu().numpy()


def encode_texts(clip: ClipModel, texts: list[str], batch_size: int) -> np.ndarray:
    """Non-empty texts -> (n, d) unit vectors (float32), truncated to the context."""
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = clip.tokenizer(texts[start:start + batch_size])
        with clip.inference():
            feats = clip.model.encode_text(tokens.to(clip.device, non_blocking=True))
        out.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def text_table(clip: ClipModel, texts: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Embed each distinct non-empty text once (boilerplate repeats across a unit)."""
    unique = sorted({t for t in texts if not is_empty(t)})
    vecs = encode_texts(clip, unique, batch_size)
    return dict(zip(unique, vecs))


def similarity_rows(image_vecs: np.ndarray, texts: list[str],
                    table: dict[str, np.ndarray]) -> np.ndarray:
    """(images, texts) cosine matrix; empty texts get ``EMPTY_TEXT_SIM``."""
    sims = np.full((len(image_vecs), len(texts)), EMPTY_TEXT_SIM, dtype=np.float32)
    cols = [j for j, t in enumerate(texts) if not is_empty(t)]
    if cols and len(image_vecs):
        text_vecs = np.stack([table[texts[j]] for j in cols])
        sims[:, cols] = image_vecs @ text_vecs.T
    return sims
