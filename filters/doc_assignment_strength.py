"""Drop documents whose image-sentence assignments are mostly weak.

mmc4-core (Zhu et al. 2023, footnote on the core subset): at least 75% of a
document's assignments must have CLIP similarity > 0.25. Cuts on the stored
``matched_sim`` of the kept images; an image without a score counts as weak, and a
document with no kept image has no strong assignment.
"""

from __future__ import annotations

from pydantic import Field

from curation.document import Document
from curation.stage import StageConfig
from filters.base import DocFilter

WEAK_ASSIGNMENTS = "weak_assignments"


class AssignmentStrengthConfig(StageConfig):
    min_similarity: float = Field(0.25, ge=-1.0, le=1.0)  # strictly greater counts
    min_share: float = Field(0.75, ge=0.0, le=1.0)


def strong_share(doc: Document, min_similarity: float) -> float:
    images = doc.kept_images
    if not images:
        return 0.0
    strong = sum(im.matched_sim is not None and im.matched_sim > min_similarity
                 for im in images)
    return strong / len(images)


class AssignmentStrengthFilter(DocFilter):
    name = "doc_assignment_strength"
    Config = AssignmentStrengthConfig
    config: AssignmentStrengthConfig

    def check_doc(self, doc: Document) -> str | None:
        share = strong_share(doc, self.config.min_similarity)
        return None if share >= self.config.min_share else WEAK_ASSIGNMENTS
