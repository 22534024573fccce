"""MMC4's image -> sentence assignment from a CLIP similarity matrix.

MMC4 (Zhu et al. 2023, section 2 and the allenai/mmc4 README): a linear assignment
(``scipy.optimize.linear_sum_assignment``) on the negated images x sentences matrix,
so each sentence receives at most one image and the total similarity is maximal;
when there are more images than sentences, the images left over go to their most
similar sentence. On the README's example this gives [2, 1], not the per-image
argmax [1, 1].
"""

from __future__ import annotations

import numpy as np

from curation.document import Document


def mmc4_assign(sim: np.ndarray) -> tuple[list[int], list[float]]:
    """(matched_text_index, matched_sim) per image row of ``sim`` (images x texts)."""
    sim = np.asarray(sim, dtype=np.float64)
    n_images = sim.shape[0]
    if n_images == 0:
        return [], []
    if sim.ndim != 2 or sim.shape[1] == 0:
        raise ValueError(f"need at least one text to assign {n_images} image(s) to")
    index = sim.argmax(axis=1)  # surplus images: their best sentence
    if n_images == 1:  # one image: the assignment is its best sentence
        return index.tolist(), sim[0, index].tolist()
    # imported here: scipy.optimize costs a worker process ~0.3 s to import
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-sim)
    index[rows] = cols
    return index.tolist(), sim[np.arange(n_images), index].tolist()


def is_empty(text: str) -> bool:
    """Empty or whitespace-only: nothing for an image to be matched to."""
    return not text or not text.strip()


def assign_document(doc: Document) -> int:
    """(Re-)run the assignment over the document's kept images from their stored
    ``similarities`` (no CLIP); empty texts take no image. Returns how many images
    were assigned."""
    n_texts = len(doc.texts)
    cols = [j for j, t in enumerate(doc.texts) if not is_empty(t)]
    scored = [im for im in doc.kept_images
              if im.similarities is not None and len(im.similarities) == n_texts]
    if not scored or not cols:
        return 0
    sim = np.array([im.similarities for im in scored], dtype=np.float64)[:, cols]
    index, sims = mmc4_assign(sim)
    for im, j, s in zip(scored, index, sims):
        im.matched_text_index, im.matched_sim = cols[j], float(s)
    return len(scored)
