"""Split a stage list into passes over the units, with global barriers between them.

    [dedup(G), url_words, download, image_frequency(G), clip_score, clip_topk(G), f]

    pass 0: (input)                                   -> collect dedup facts
    pass 1: apply dedup, url_words, download          -> stage docs, collect freq facts
    pass 2: apply freq, clip_score                    -> stage docs, collect top-k facts
    pass 3: apply top-k, f                            -> shards

A pass whose own stages are all cheap and deterministic (filters, decisions) is not
staged: the next pass replays it from the last staged pass instead of writing every
document again. Download and model stages are never replayed. Consecutive task stages
run fused in one Ray operation; each actor-pool stage gets its own operation.

A global stage right after one that only drops whole documents (dedup) has its facts
collected early, in the earlier stage's pass: its fit leaves out the documents the
earlier decisions drop, and the pass that would have collected them is skipped.

    [dedup(G), image_frequency(G), clip_score, f]

    pass 0: (input)                         -> collect dedup and image_frequency facts
    (pass 1 skipped: fit image_frequency on its facts less dedup's drops)
    pass 2: apply dedup, apply freq, clip_score, f  -> shards
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from curation.stage import GlobalStage, Stage


@dataclass
class Op:
    """One step of a pass: run a stage, or apply a global stage's decision."""

    kind: Literal["stage", "apply"]
    stage: Stage
    decision: int | None = None  # apply: index of the pass that collected the facts

    @property
    def actor_pool(self) -> bool:
        return self.kind == "stage" and self.stage.resources.actor_pool

    @property
    def replayable(self) -> bool:
        return self.kind == "apply" or (self.stage.replayable and not self.actor_pool)

    @property
    def label(self) -> str:
        return f"apply:{self.stage.name}" if self.kind == "apply" else self.stage.name


@dataclass
class OpGroup:
    """Ops run back to back in one Ray operation (tasks, or one actor pool)."""

    ops: list[Op]
    actor_pool: bool
    num_cpus: float
    num_gpus: float
    concurrency: int | None

    @property
    def label(self) -> str:
        return "+".join(op.label for op in self.ops)


@dataclass
class Segment:
    """One pass over the units."""

    index: int
    ops: list[Op]  # replayed ops first, then this pass's own
    own_from: int  # ops[own_from:] are this pass's own
    source: int | None  # pass whose staged documents feed this one; None: the input
    collect_for: GlobalStage | None  # the global stage whose facts this pass collects
    materialize: bool = False  # stage this pass's documents for later passes
    groups: list[OpGroup] = field(default_factory=list)
    # facts of later global stages collected at the end of this pass: (pass, stage)
    also_collect: list[tuple[int, GlobalStage]] = field(default_factory=list)
    collected_by: int | None = None  # this pass's facts came early from that pass
    exclude: list[int] = field(default_factory=list)  # decisions its fit leaves out
    # image-removing decisions applied after its facts were collected: its fit leaves
    # out the documents they leave without a live image (facts then carry each
    # document's live-image count)
    exclude_emptied: list[int] = field(default_factory=list)
    live_counts_for: set[int] = field(default_factory=set)  # passes of also_collect that need them

    @property
    def runs(self) -> bool:
        """Whether the pass runs at all (not when its facts were collected early)."""
        return self.collected_by is None

    @property
    def is_last(self) -> bool:
        return self.collect_for is None

    @property
    def label(self) -> str:
        return "+".join(op.label for op in self.ops) or "ingest"


def group_ops(ops: list[Op]) -> list[OpGroup]:
    groups: list[OpGroup] = []
    for op in ops:
        res = op.stage.resources if op.kind == "stage" else None
        if op.actor_pool and res is not None:
            groups.append(OpGroup([op], True, res.num_cpus, res.num_gpus, res.concurrency))
        elif groups and not groups[-1].actor_pool:
            groups[-1].ops.append(op)
            if res is not None:
                groups[-1].num_cpus = max(groups[-1].num_cpus, res.num_cpus)
        else:
            groups.append(OpGroup([op], False, res.num_cpus if res else 1.0, 0.0, None))
    return groups


def plan_segments(stages: list[Stage], stage_output: bool = False) -> list[Segment]:
    """Passes for ``stages``; ``stage_output`` stages the last pass's documents (a
    trunk feeding branches) instead of the pass ending in shards."""
    parts: list[tuple[list[Op], GlobalStage | None]] = []
    own: list[Op] = []
    for stage in stages:
        if isinstance(stage, GlobalStage):
            parts.append((own, stage))
            own = [Op("apply", stage, decision=len(parts) - 1)]
        else:
            own.append(Op("stage", stage))
    parts.append((own, None))
    segments: list[Segment] = []
    last_staged: int | None = None
    for k, (own_ops, collect_for) in enumerate(parts):
        start = 0 if last_staged is None else last_staged + 1
        replay = [op for j in range(start, k) for op in parts[j][0]]
        is_last = collect_for is None
        staged = stage_output if is_last else any(not op.replayable for op in own_ops)
        seg = Segment(k, replay + own_ops, len(replay), last_staged, collect_for, staged)
        seg.groups = group_ops(seg.ops)
        kind = None if is_last else _early_kind(own_ops)
        if kind is not None:
            prev = segments[-1]
            emptied = [*prev.exclude_emptied, *([prev.index] if kind == "images" else [])]
            if emptied and not collect_for.facts_ignore_images:  # type: ignore[union-attr]
                kind = None
        if kind is not None:
            host = segments[prev.collected_by] if prev.collected_by is not None else prev
            seg.collected_by = host.index
            seg.exclude = [*prev.exclude, *([prev.index] if kind == "documents" else [])]
            seg.exclude_emptied = emptied
            host.also_collect.append((k, collect_for))  # type: ignore[arg-type]
            if emptied:
                host.live_counts_for.add(k)
        segments.append(seg)
        if staged:
            last_staged = k
    return segments


def _early_kind(own_ops: list[Op]) -> str | None:
    """A pass whose own ops only apply one decision that drops whole documents (and
    changes nothing in the others) sees what the pass before it saw, less those
    documents: its facts can be collected there ("documents"). One that only removes
    named images sees the same, less some images and the documents left without one:
    facts that ignore images can be collected there too ("images")."""
    if len(own_ops) != 1 or own_ops[0].kind != "apply":
        return None
    stage = own_ops[0].stage
    if stage.drops_documents_only:  # type: ignore[attr-defined]
        return "documents"
    if stage.removes_images_only:  # type: ignore[attr-defined]
        return "images"
    return None


def needs_input_staging(segments: list[Segment]) -> bool:
    """Whether a later pass re-reads the input: then ingested units are staged."""
    return any(seg.source is None for seg in segments[1:])
