"""Split a pipeline's stage list into per-unit chains and global barriers.

    [download, dedup(G), clip, topk(G), filter]  ->
    chain[download] | global dedup | chain[clip] | global topk | chain[filter] + writer

Consecutive stages with the same placement (plain Ray tasks, or one actor pool) are
fused into one Ray operation so documents are decoded and encoded once per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.stage import GlobalStage, Stage


@dataclass
class StageGroup:
    """Stages run back to back in one Ray operation."""

    stages: list[Stage]
    actor_pool: bool
    num_cpus: float
    num_gpus: float
    concurrency: int | None

    @property
    def label(self) -> str:
        return "+".join(s.name for s in self.stages)


@dataclass
class Segment:
    """A per-unit chain, optionally starting with the ``apply`` of a global stage and
    optionally ending by ``collect``-ing facts for the next global stage."""

    index: int
    apply_global: GlobalStage | None
    groups: list[StageGroup] = field(default_factory=list)
    collect_for: GlobalStage | None = None

    @property
    def is_last(self) -> bool:
        return self.collect_for is None


def group_stages(stages: list[Stage]) -> list[StageGroup]:
    groups: list[StageGroup] = []
    for stage in stages:
        res = stage.resources
        if groups and not res.actor_pool and not groups[-1].actor_pool:
            groups[-1].stages.append(stage)
            groups[-1].num_cpus = max(groups[-1].num_cpus, res.num_cpus)
            continue
        groups.append(StageGroup([stage], res.actor_pool, res.num_cpus, res.num_gpus,
                                 res.concurrency))
    return groups


def plan_segments(stages: list[Stage]) -> list[Segment]:
    segments: list[Segment] = []
    current: list[Stage] = []
    pending_global: GlobalStage | None = None
    for stage in stages:
        if isinstance(stage, GlobalStage):
            seg = Segment(len(segments), pending_global, group_stages(current), stage)
            segments.append(seg)
            pending_global, current = stage, []
        else:
            current.append(stage)
    segments.append(Segment(len(segments), pending_global, group_stages(current), None))
    return segments
