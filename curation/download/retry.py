"""Prepare a finished output's documents for ``--retry-failed``.

Only images whose reason is retryable (``reasons.is_retryable``) go back to
``pending``; everything else keeps its status, so a 404 is never fetched twice. A
document the download stage dropped as ``no_images`` comes back only when at least
one of its images can be retried; other drops stay dropped with their reason.
"""

from __future__ import annotations

from curation.document import IMAGE_PENDING, Document
from curation.download.reasons import is_retryable
from curation.download.stage import NO_IMAGES


def reset_retryable(docs: list[Document], stage: str = "download") -> int:
    """Reset retryable failures in place; returns how many images were reset."""
    reset = 0
    for doc in docs:
        if not doc.kept and (doc.dropped_by, doc.drop_reason) != (stage, NO_IMAGES):
            continue
        retry = [im for im in doc.images
                 if im.dropped_by == stage and is_retryable(im.status)]
        if not retry:
            continue
        for im in retry:
            im.status, im.dropped_by, im.member = IMAGE_PENDING, None, None
            im.metadata.pop("download_error", None)
        if not doc.kept:
            doc.drop_reason = doc.dropped_by = None
        reset += len(retry)
    return reset
