"""Run a pipeline on Ray Data: ingest -> per-unit stage chains (with global barriers)
-> shards, resumable at unit granularity.

Resume rule: every step writes its output atomically and a marker last (ingest
``.done.json``, staged ``.facts.parquet``, global decision JSON, unit ``stats/UNIT.json``);
a re-run skips what has a marker and redoes the rest under the same deterministic names,
so nothing is duplicated.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import ray

from curation.ingest.files import expand_inputs
from curation.pipeline_config import PipelineConfig
from curation.runner.finalize import finalize_output
from curation.runner.guard import guard_output
from curation.runner.plan import Segment, StageGroup, plan_segments
from curation.runner.services import start_services
from curation.runner.session import cluster_summary, start_ray
from curation.runner.units import (
    StageChain,
    ingest_file,
    load_unit,
    stage_unit,
    write_final_unit,
)
from curation.storage import exists, read_json, read_parquet_rows, write_json
from shards.layout import join
from shards.writer import ShardLimits

Progress = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_pipeline(config: PipelineConfig, inputs: list[str], output: str,
                 address: str | None = None, overwrite: bool = False,
                 storage_options: dict | None = None, progress: Progress = _print,
                 num_cpus: int | None = None, retry_failed: bool = False) -> dict[str, Any]:
    """Run (or resume) ``config`` over ``inputs`` into ``output``; returns run totals.
    ``retry_failed`` re-fetches only retryable image failures of a finished run."""
    t0 = time.perf_counter()
    files = expand_inputs(inputs, storage_options)
    guard_output(output, config, files, overwrite, storage_options)
    start_ray(address, num_cpus=num_cpus)
    progress(f"curate: {config.name}: {len(files)} input file(s) -> {output} "
             f"on Ray ({cluster_summary()})")
    units = _ingest(files, config, output, storage_options, progress)
    source = join(output, "_work", "ingest")
    timings: dict[str, float] = {}
    for segment in plan_segments([s.stage for s in config.stages]):
        if segment.is_last and retry_failed:
            units, source = _prepare_retry(segment, units, source, output,
                                           storage_options, progress)
        if segment.is_last:
            _run_final(segment, units, source, config, output, storage_options, progress,
                       timings)
        else:
            source = _run_segment(segment, units, source, output, storage_options,
                                  progress, timings)
    totals = finalize_output(output, storage_options, timings=timings)
    progress(f"curate: done in {time.perf_counter() - t0:.1f}s: "
             f"{totals['documents_written']} documents, {totals['images_written']} images "
             f"in {totals['shards']} shard(s); {sum(totals['documents_dropped'].values())} "
             f"documents dropped, {sum(totals['quarantined'].values())} records quarantined")
    return totals


def _prepare_retry(segment: Segment, units: list[str], source: str, output: str,
                   storage_options: dict | None, progress: Progress) -> tuple[list[str], str]:
    from curation.download.reasons import is_retryable
    from curation.runner.retry import prepare_retry

    names = [s.name for g in segment.groups for s in g.stages]
    if "download" not in names:
        raise ValueError("--retry-failed needs the download stage in the pipeline's last "
                         "segment (no global stage after it)")
    unfinished = [u for u in units
                  if not exists(join(output, "stats", f"{u}.json"), storage_options)]
    if unfinished:
        raise ValueError(f"{output}: {len(unfinished)} unit(s) are not finished; run the "
                         "same command without --retry-failed first")
    todo = prepare_retry(output, units, source, "download", is_retryable, storage_options)
    progress(f"retry: {len(todo)} of {len(units)} unit(s) have retryable image failures")
    return todo, join(output, "_work", "retry")


def _ingest(files: list[str], config: PipelineConfig, output: str,
            storage_options: dict | None, progress: Progress) -> list[str]:
    done_uri = functools.partial(join, output, "_work", "ingest")
    todo = [{"index": i, "path": p} for i, p in enumerate(files)
            if not exists(done_uri(f"{i:05d}.done.json"), storage_options)]
    if todo:
        progress(f"ingest: {len(todo)} file(s) to read ({len(files) - len(todo)} done)")
        fn = functools.partial(ingest_file, output=output, cfg=config.ingest,
                               storage_options=storage_options)
        ds = ray.data.from_items(todo, override_num_blocks=len(todo)).map(fn)
        for n, row in enumerate(_rows(ds), 1):
            progress(f"ingest [{n}/{len(todo)}] {row['path']}: {row['documents']} "
                     f"documents, {row['quarantined']} quarantined")
    units: list[str] = []
    for i in range(len(files)):
        units.extend(read_json(done_uri(f"{i:05d}.done.json"), storage_options)["units"])
    return units


def _rows(ds: Any) -> Iterable[dict]:
    yield from ds.iter_rows()


def _chain(ds: Any, segment: Segment, decision_uri: str | None,
           storage_options: dict | None, services: dict | None = None) -> Any:
    """Map each stage group of a segment onto Ray Data: tasks, or an actor pool."""
    groups: list[StageGroup] = list(segment.groups)
    if segment.apply_global is not None and (not groups or groups[0].actor_pool):
        groups.insert(0, StageGroup([], False, 1.0, 0.0, None))
    for i, group in enumerate(groups):
        apply = segment.apply_global if i == 0 else None
        kwargs = dict(apply_global=apply, decision_uri=decision_uri if apply else None,
                      storage_options=storage_options, services=services)
        if group.actor_pool:
            ds = ds.map(StageChain, fn_constructor_args=(group.stages,),
                        fn_constructor_kwargs={**kwargs, "eager_setup": True},
                        concurrency=group.concurrency or 1, num_cpus=group.num_cpus,
                        num_gpus=group.num_gpus)
        else:
            ds = ds.map(StageChain(group.stages, **kwargs), num_cpus=group.num_cpus)
    return ds


def _decision_uri(output: str, segment_index: int) -> str:
    return join(output, "_work", f"decision-{segment_index:02d}.json")


def _source_ds(units: list[str], source: str, storage_options: dict | None,
               num_cpus: float = 1.0) -> Any:
    load = functools.partial(load_unit, src=source, storage_options=storage_options)
    items = [{"unit": u} for u in units]
    return ray.data.from_items(items, override_num_blocks=max(1, len(items))).map(
        load, num_cpus=num_cpus)


def _edge_cpus(segment: Segment) -> tuple[float, float]:
    """CPUs for loading a unit and for ending it (staging or writing): those of the
    first and last task group, so Ray Data fuses load, stages and end into one task
    (a download task that reserves little CPU must not wait for a whole free CPU to
    write its unit)."""
    groups = segment.groups
    first = groups[0].num_cpus if groups and not groups[0].actor_pool else 1.0
    last = groups[-1].num_cpus if groups and not groups[-1].actor_pool else 1.0
    if segment.apply_global is not None and groups and groups[0].actor_pool:
        first = 1.0
    return first, last


def _run_segment(segment: Segment, units: list[str], source: str, output: str,
                 storage_options: dict | None, progress: Progress,
                 timings: dict[str, float]) -> str:
    """Run a non-final segment to staging, then fit its global stage once."""
    dest = join(output, "_work", f"segment-{segment.index:02d}")
    gstage = segment.collect_for
    assert gstage is not None
    decision_uri = _decision_uri(output, segment.index + 1)
    if exists(decision_uri, storage_options):
        progress(f"{gstage.name}: decision already made (resuming)")
        return dest
    todo = [u for u in units
            if not exists(join(dest, f"{u}.facts.parquet"), storage_options)]
    prev_decision = _decision_uri(output, segment.index) if segment.apply_global else None
    if todo:
        services = start_services(_segment_stages(segment))
        try:
            load_cpus, end_cpus = _edge_cpus(segment)
            ds = _chain(_source_ds(todo, source, storage_options, load_cpus), segment,
                        prev_decision, storage_options, services.clients)
            ds = ds.map(functools.partial(stage_unit, dest=dest, collect_for=gstage,
                                          storage_options=storage_options),
                        num_cpus=end_cpus)
            for n, row in enumerate(_rows(ds), 1):
                summary = json.loads(row["summary"])
                _add_timing(timings, summary["timing"])
                progress(f"segment {segment.index} [{n}/{len(todo)}] unit {row['unit']}: "
                         f"{summary['documents']} documents staged")
        finally:
            services.stop()
    facts: list[dict] = []
    for u in units:
        facts.extend(read_parquet_rows(join(dest, f"{u}.facts.parquet"), storage_options))
    t0 = time.perf_counter()
    decision = _fit(gstage, facts)
    timings[f"{gstage.name}.fit"] = time.perf_counter() - t0
    write_json(decision_uri, decision, storage_options)
    progress(f"{gstage.name}: fitted on {len(facts)} document facts")
    return dest


def _fit(stage: Any, facts: list[dict]) -> dict:
    """Fit a global stage; stages with a distributed Ray engine are handed it."""
    from curation.runner.global_fits import distributed_engine

    engine = distributed_engine(stage.name)
    return stage.fit(facts, engine=engine) if engine is not None else stage.fit(facts)


def _run_final(segment: Segment, units: list[str], source: str, config: PipelineConfig,
               output: str, storage_options: dict | None, progress: Progress,
               timings: dict[str, float]) -> None:
    todo = [u for u in units
            if not exists(join(output, "stats", f"{u}.json"), storage_options)]
    if len(todo) < len(units):
        progress(f"write: {len(units) - len(todo)} unit(s) already complete, skipped")
    if not todo:
        return
    decision = _decision_uri(output, segment.index) if segment.apply_global else None
    services = start_services(_segment_stages(segment))
    try:
        load_cpus, end_cpus = _edge_cpus(segment)
        ds = _chain(_source_ds(todo, source, storage_options, load_cpus), segment,
                    decision, storage_options, services.clients)
        limits = ShardLimits(config.writer.max_samples, config.writer.max_bytes)
        ds = ds.map(functools.partial(write_final_unit, output=output, limits=limits,
                                      storage_options=storage_options),
                    num_cpus=end_cpus)
        written = 0
        for n, row in enumerate(_rows(ds), 1):
            summary = json.loads(row["summary"])
            _add_timing(timings, summary["timing"])
            written += summary["documents_written"]
            progress(f"write [{n}/{len(todo)}] unit {row['unit']}: "
                     f"{summary['documents_written']}/{summary['documents_in']} "
                     f"documents, {summary['images_written']} images, "
                     f"{len(summary['shards'])} shard(s) (total {written} documents)")
    finally:
        services.stop()


def _segment_stages(segment: Segment) -> list:
    return [stage for group in segment.groups for stage in group.stages]


def _add_timing(acc: dict[str, float], timing: dict[str, float]) -> None:
    for key, seconds in timing.items():
        acc[key] = acc.get(key, 0.0) + float(seconds)
