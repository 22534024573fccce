"""CLIP forward passes on the model thread, and cosine tables for documents.

Embeddings are L2-normalized in fp32 (cosine = dot product). Texts longer than the
model's context are truncated by its tokenizer (open_clip's BPE tokenizer keeps the
first ``context_length - 1`` tokens and ends with EOT). Empty texts are never
encoded: an empty sentence has no meaning to match, so the caller gives it
``EMPTY_TEXT_SIM`` (the lowest cosine) and the assignment skips it.

Text batches are cut to their longest sequence: open_clip's CLIP text tower is causal
and pools at the EOT token, so the padding after the longest EOT never reaches any
output; a 15-token caption then costs a fifth of the full 77-token context. This is
checked once per model against ``encode_text`` (``trim_is_exact``) and used only when
the results agree.
"""

from __future__ import annotations

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from curation.scoring.assign import is_empty
from curation.scoring.model import ClipModel
from curation.scoring.prepare import normalize_on_device

EMPTY_TEXT_SIM = -1.0


def image_features(clip: ClipModel, pixels: torch.Tensor,
                   stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Model input on the device -> (n, d) unit vectors, fp32, still on the device.
    uint8 (n, H, W, 3) input is normalized here with ``stats`` (mean, std on the
    device; see ``prepare.channel_stats``), in fp32, then cast to the weights' dtype;
    float input is already normalized."""
    if pixels.dtype == torch.uint8:
        x = normalize_on_device(pixels, *stats, clip.dtype)
    else:
        x = pixels.to(clip.dtype)
    return F.normalize(clip.model.encode_image(x).float(), dim=-1)


def token_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Positions used per row: up to and including EOT (the largest token id)."""
    return tokens.argmax(dim=-1) + 1


def _trimmable(model: torch.nn.Module) -> bool:
    return (type(model) is open_clip.CLIP and getattr(model, "text_pool_type", "") == "argmax"
            and getattr(model, "attn_mask", None) is not None)


def _encode_text_trimmed(model: open_clip.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """``CLIP.encode_text`` on the first ``n`` positions (causal mask, EOT pooling)."""
    n = tokens.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast)
    x = x + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = model.text_projection
    if isinstance(proj, torch.nn.Linear):
        return proj(x)
    return x @ proj if proj is not None else x


def trim_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Cut a CPU batch of token ids after its longest EOT (done before the batch
    reaches the model thread: reading lengths on the GPU would stall it)."""
    return tokens[:, :int(token_lengths(tokens).max())] if len(tokens) else tokens


def text_features(clip: ClipModel, tokens: torch.Tensor, trimmed: bool) -> torch.Tensor:
    """(n, L) token ids on the device -> (n, d) unit vectors, fp32, on the device.
    ``trimmed``: ``tokens`` were cut by ``trim_tokens`` (needs ``trim_is_exact``)."""
    if trimmed:
        feats = _encode_text_trimmed(clip.model, tokens)  # type: ignore[arg-type]
    else:
        feats = clip.model.encode_text(tokens)
    return F.normalize(feats.float(), dim=-1)


def trim_is_exact(clip: ClipModel, min_cosine: float = 0.999) -> bool:
    """Whether trimmed text encoding matches ``encode_text`` on this model: checked
    once per actor on a few sentences (cosine of the two embeddings; bf16 rounding
    differs slightly between sequence lengths, a wrong computation does not agree)."""
    if not _trimmable(clip.model):
        return False
    sample = ["a photo of a cat", "", "two dogs playing in the snow near a red barn",
              "x " * 100]
    tokens = clip.tokenizer(sample)
    with clip.inference():
        full = text_features(clip, tokens.to(clip.device), trimmed=False)
        cut = text_features(clip, trim_tokens(tokens).to(clip.device), trimmed=True)
    return bool((full * cut).sum(-1).min() >= min_cosine)


def similarity_rows(image_vecs: np.ndarray, texts: list[str],
                    table: dict[str, np.ndarray]) -> np.ndarray:
    """(images, texts) cosine matrix; empty texts get ``EMPTY_TEXT_SIM``."""
    sims = np.full((len(image_vecs), len(texts)), EMPTY_TEXT_SIM, dtype=np.float32)
    cols = [j for j, t in enumerate(texts) if not is_empty(t)]
    if cols and len(image_vecs):
        text_vecs = np.stack([table[texts[j]] for j in cols])
        sims[:, cols] = image_vecs @ text_vecs.T
    return sims
