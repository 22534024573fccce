"""Run one pass over the units on Ray Data: where its documents come from, the Ray
operations its ops become, what it leaves behind, and what the driver keeps of it
(one small report per unit, summed by key).

Every pass is streaming: units flow through the pass's operations as soon as they
are read; the only barriers are the global stages' fits between passes.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.errors import InfrastructureError, RunStopped
from curation.location import Location
from curation.pipeline_config import IngestConfig, RunOptions
from curation.runner.chain import ChainSettings, UnitReport
from curation.runner.ingest import file_marker
from curation.runner.pack_job import PackFailed, ShardPacker, UnitOrder
from curation.runner.plan import OpGroup, Segment
from curation.runner.progress import RunProgress
from curation.runner.units import (
    End,
    IngestChain,
    StageEnd,
    UnitChain,
    WriteEnd,
    bound_chain,
)
from curation.services import declared_services
from shards.layout import STATS

log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """A pass could not finish: names the stage, the unit and the error."""


@dataclass
class ErrorBudget:
    """Stops the run when one op's data errors pass ``max_error_rate``."""

    options: RunOptions
    processed: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def add(self, report: UnitReport) -> None:
        self.processed.update(report.processed)
        self.errors.update(report.errors)
        self.samples.extend(report.first_errors[:max(0, 5 - len(self.samples))])
        for op in report.errors:
            n = self.errors[op]
            rate = n / max(1, self.processed[op])
            if n >= self.options.min_errors_to_stop and rate > self.options.max_error_rate:
                raise RunStopped(
                    f"stage {op!r} failed on {n} of {self.processed[op]} documents "
                    f"({rate:.1%} > max_error_rate {self.options.max_error_rate:.1%}); "
                    "first errors:\n  " + "\n  ".join(self.samples))


@dataclass
class RunState:
    """What the driver holds for a run: per-run metadata only."""

    options: RunOptions
    progress: RunProgress
    timings: dict[str, float] = field(default_factory=dict)
    budget: ErrorBudget | None = None

    def __post_init__(self) -> None:
        self.budget = self.budget or ErrorBudget(self.options)

    def unit_done(self, row: dict[str, Any]) -> UnitReport:
        report = UnitReport(**json.loads(row["report"]))
        for key, seconds in report.timing.items():
            self.timings[key] = self.timings.get(key, 0.0) + seconds
        self.progress.unit_done(report)
        assert self.budget is not None
        self.budget.add(report)
        return report


@dataclass
class LineInput:
    """Where a line's first pass reads: input files (ingested on the fly) or staged
    units (a trunk's output, for a branch). ``ingest`` holds the input-file markers."""

    ingest: Location
    files: list[str] | None = None
    staged: Location | None = None
    ingest_config: IngestConfig | None = None


def actor_pool_bounds(num_gpus: float, num_cpus: float, concurrency: int | None,
                      cluster: dict[str, float]) -> tuple[int, int]:
    """(min, max) actors. A pinned ``concurrency`` is a fixed pool. GPU actors: up to
    every GPU of the cluster (``GPU / num_gpus``: fractional GPUs pack several actors
    per GPU), capped so the actors leave a CPU for the pipeline's tasks. CPU actors:
    one (each already uses its ``num_cpus`` threads; pin ``concurrency`` for more)."""
    if concurrency:
        return concurrency, concurrency
    if num_gpus <= 0:
        return 1, 1
    gpus = cluster.get("GPU", 0.0)
    by_gpu = int(gpus / num_gpus + 1e-9)
    if by_gpu < 1:
        raise ValueError(f"a stage asks for {num_gpus:g} GPU(s) per actor but the Ray "
                         f"cluster has {gpus:g}; set num_gpus: 0 to run it on CPUs")
    by_cpu = int((cluster.get("CPU", 0.0) - 1) / num_cpus + 1e-9) if num_cpus > 0 \
        else by_gpu
    if by_cpu < by_gpu:
        log.warning("%d actors fit the cluster's GPUs but only %d its CPUs (num_cpus: %g "
                    "each, one CPU left for tasks): lower num_cpus to use every GPU",
                    by_gpu, max(1, by_cpu), num_cpus)
    return 1, max(1, min(by_gpu, by_cpu))


def _actor_pool(group: OpGroup) -> Any:
    """Autoscaling pool, started at its largest size (GPUs held by it are of no use to
    the other operators); several concurrent calls per actor where the stage allows."""
    calls = max(op.stage.resources.max_concurrent_calls for op in group.ops)
    low, high = actor_pool_bounds(group.num_gpus, group.num_cpus, group.concurrency,
                                  ray.cluster_resources())
    # units are not queued behind a busy actor while another one idles
    return ray.data.ActorPoolStrategy(min_size=low, max_size=high, initial_size=high,
                                      max_concurrent_calls_per_actor=calls,
                                      max_tasks_in_flight_per_actor=calls,
                                      enable_true_multi_threading=calls > 1)


def _map_group(ds: Any, group: OpGroup, settings: ChainSettings,
               source: Location | None, end: End | None) -> Any:
    if group.actor_pool:
        return ds.map(bound_chain(group.ops, settings, source, end),
                      compute=_actor_pool(group), num_cpus=group.num_cpus,
                      num_gpus=group.num_gpus)
    return ds.map(UnitChain(group.ops, settings, source=source, end=end),
                  num_cpus=group.num_cpus)


def map_groups(ds: Any, groups: list[OpGroup], settings: ChainSettings,
               source: Location | None, end: End) -> Any:
    """Chain the groups; the first reads from ``source`` (when rows carry no
    documents yet), the last task group ends the pass (else a small end task)."""
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        ds = _map_group(ds, group, settings, source if i == 0 else None,
                        end if last and not group.actor_pool else None)
    if not groups or groups[-1].actor_pool:
        ds = ds.map(UnitChain([], settings, source=source if not groups else None,
                              end=end), num_cpus=0.5)
    return ds


def pass_end(seg: Segment, output: Location, work: Location,
             stage_to: Location | None) -> tuple[End, Location, str]:
    """What the pass leaves, and where its per-unit markers are listed."""
    if seg.is_last and stage_to is None:
        return WriteEnd(output, work.child("pieces")), output.child(STATS), ".json"
    if seg.is_last:
        return StageEnd(stage_to, None, None), stage_to, ".cdb"  # type: ignore[arg-type]
    facts = work.child(f"facts-{seg.index:02d}")
    docs = work.child(f"seg-{seg.index:02d}") if seg.materialize else None
    early = [(work.child(f"facts-{k:02d}"), stage, k in seg.live_counts_for)
             for k, stage in seg.also_collect]
    return StageEnd(docs, facts, seg.collect_for, early), facts, ".parquet"


@contextmanager
def one_unit_per_block() -> Iterator[None]:
    """A pass's rows are whole units (megabytes each): one row per block, so units
    read from one file spread over tasks and actors instead of travelling together.
    Datasets keep the context they were made in: make them inside."""
    from ray.data.context import DataContext

    ctx = DataContext.get_current()
    before = ctx.target_max_block_size
    ctx.target_max_block_size = 1
    try:
        yield
    finally:
        ctx.target_max_block_size = before


def run_pass(seg: Segment, line: LineInput, output: Location, work: Location,
             state: RunState, stage_input: bool, stage_to: Location | None,
             packer: ShardPacker | None = None) -> None:
    """One pass; the long-lived services its stages declare (host-partitioned download
    actors) live exactly as long as the pass. The final pass hands each finished unit
    to ``packer``, which writes shards while the pass runs."""
    from curation.runner.services import start_services

    services = start_services([op.stage for op in seg.ops if op.kind == "stage"])
    try:
        with one_unit_per_block():
            _run_pass(seg, line, output, work, state, stage_input, stage_to,
                      services.clients, packer)
    finally:
        services.stop()


def _run_pass(seg: Segment, line: LineInput, output: Location, work: Location,
              state: RunState, stage_input: bool, stage_to: Location | None,
              services: dict[str, Any], packer: ShardPacker | None) -> None:
    end, markers, suffix = pass_end(seg, output, work, stage_to)
    done = {n.removesuffix(suffix) for n in markers.list(suffix)}
    settings = ChainSettings(state.options.keep_text_only,
                             {op.decision: work.child(f"decision-{op.decision:02d}")
                              for op in seg.ops if op.kind == "apply"}, services or None)
    if seg.source is not None:
        source: Location | None = work.child(f"seg-{seg.source:02d}")
    elif line.staged is not None:
        source = line.staged
    elif seg.index > 0:
        source = line.ingest
    else:
        source = None
    label = f"pass {seg.index} ({seg.label})"
    if source is None:
        ds, total, file_units = _ingest_dataset(seg, line, output, settings, stage_input,
                                                done, end)
        order = UnitOrder(files=len(line.files or []), file_units=file_units,
                          markers=line.ingest)
    else:
        units = [n.removesuffix(".cdb") for n in source.list(".cdb")]
        order = UnitOrder(listed=units)
        todo = [u for u in units if u not in done]
        total = len(todo)
        if len(todo) < len(units):
            state.progress.say(f"{label}: {len(units) - len(todo)} of {len(units)} units "
                               "already done (resuming)")
        ds = None
        if todo:
            ds = ray.data.from_items([{"unit": u} for u in todo],
                                     override_num_blocks=len(todo))
            ds = map_groups(ds, seg.groups, settings, source, end)
    if packer is not None:
        packer.expect(order, done)
    if ds is None:
        return
    state.progress.start_pass(label, total)
    try:
        for row in ds.iter_rows():
            report = state.unit_done(row)
            if packer is not None:
                packer.unit_done(row["unit"], np.frombuffer(row["lengths"], np.int64),
                                 report.file_end)
    except (RunStopped, PackFailed):
        raise
    except Exception as exc:  # noqa: BLE001 - a Ray task failed for good
        raise RunFailed(_failure_message(exc, label)) from None
    finally:
        state.progress.end_pass()


def _ingest_dataset(seg: Segment, line: LineInput, output: Location,
                    settings: ChainSettings, stage_input: bool, done: set[str],
                    end: End) -> tuple[Any, int | None, dict[int, int]]:
    """Pass 0 over input files: read, cut into units and run the first task group
    in the same task; files whose units are all done are skipped. Also returns the
    unit counts of the files it read markers of (the shard packer's unit order)."""
    assert line.files is not None and line.ingest_config is not None
    marked = set(line.ingest.list(".done.json"))
    items = []
    skip: dict[int, frozenset[str]] = {}
    file_units: dict[int, int] = {}
    for index, path in enumerate(line.files):
        mine = frozenset(u for u in done if u.startswith(f"{index:05d}-"))
        if file_marker(index) in marked and mine:
            units = line.ingest.read_json(file_marker(index))["units"]
            file_units[index] = len(units)
            if set(units) <= mine:
                continue
        skip[index] = mine
        items.append({"index": index, "path": path})
    if not items:
        return None, 0, file_units
    groups = list(seg.groups)
    # the first task group runs inside the reading task, unless it calls services
    # (a download): then units fan out over many light tasks instead of waiting for
    # each other in one
    fuse = groups and not groups[0].actor_pool and not declared_services(
        [op.stage for op in groups[0].ops if op.kind == "stage"])
    first = groups.pop(0).ops if fuse else []
    chain = IngestChain(line.ingest_config, line.ingest, output, stage_input, skip,
                        first, settings, None if groups else end)
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        chain, batch_size=1, num_cpus=1)
    if groups:
        ds = map_groups(ds, groups, settings, None, end)
    return ds, None, file_units


_FAILED = re.compile(r"stage '[^']+' failed on unit \S+: .*")


def _failure_message(exc: BaseException, label: str) -> str:
    """Name the stage, the unit and the error of a task that failed for good."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, InfrastructureError) and hasattr(seen, "unit"):
            return f"{label}: stage {seen.stage!r} failed on unit {seen.unit}: " \
                   f"{seen.detail} (after retries)"
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = _FAILED.findall(str(exc))
    if found:
        return f"{label}: {found[-1]} (after retries)"
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{label}: {type(exc).__name__}: {lines[-1] if lines else exc}"
