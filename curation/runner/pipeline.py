"""Run a pipeline on Ray Data: passes over the units with global barriers between
them, shards packed to the writer's size, totals, and ``_work/`` removed at the end.

A pipeline with branches runs its trunk once into staged units, then each branch as
its own line into ``OUTPUT/BRANCH/`` (own markers, own stats: resumable on its own).

Resume rule: every step writes its output atomically and a marker last (unit facts,
staged units, ``stats/UNIT.json``, a decision's ``_summary.json``, a shard's manifest
part, ``stats.json``); a re-run lists the markers of each step once and redoes only
what has none, under the same deterministic names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray  # noqa: TID251 - the runner is where Ray lives

from curation.decisions import LIVE_IMAGES
from curation.ingest.files import expand_inputs
from curation.location import Location
from curation.pipeline_config import BranchConfig, PipelineConfig
from curation.runner.finalize import finalize_output
from curation.runner.fit import fit_global
from curation.runner.guard import guard_output
from curation.runner.pack_job import ShardPacker
from curation.runner.passes import LineInput, RunState, run_pass
from curation.runner.plan import Segment, needs_input_staging, plan_segments
from curation.runner.progress import QuietProgress, RunProgress
from curation.runner.session import cluster_summary, start_ray
from curation.stage import Stage
from shards.layout import STATS, TOTALS, WORK
from shards.pack import ShardLimits


def run_pipeline(config: PipelineConfig, inputs: list[str], output: str,
                 address: str | None = None, overwrite: bool = False,
                 storage_options: dict | None = None,
                 progress: RunProgress | Callable[[str], None] | None = None,
                 num_cpus: int | None = None, retry_failed: bool = False,
                 keep_work: bool = False, filter_stderr: bool = False) -> dict[str, Any]:
    """Run (or resume) ``config`` over ``inputs`` into ``output``; returns the run
    totals (of the first branch's output for a branched pipeline)."""
    t0 = time.perf_counter()
    out = Location.of(output, storage_options)
    files = expand_inputs(inputs, storage_options)
    record = {"name": config.name, "stages": [s.name for s in config.stages],
              "branches": [b.name for b in config.branches], "config": config.raw,
              "source": config.source}
    parents = input_lineage(inputs, files, storage_options)
    if parents:
        record["lineage"] = {**parents[0], "parents": [p["parent"] for p in parents]}
    resumed = guard_output(out, config.fingerprint(), files, overwrite, record)
    view = as_progress(progress, out)
    view.say(f"curate: {config.name}: {len(files)} input file(s) -> {out.uri}; "
             f"log: {view.log_location}")
    start_ray(address, num_cpus=num_cpus, say=view.say, filter_stderr=filter_stderr)
    view.say(f"curate: Ray: {cluster_summary()}" + ("; resuming" if resumed else ""))
    state = RunState(config.options, view)
    work = out.child(WORK)
    line = LineInput(work.child("ingest"), files=files, ingest_config=config.ingest)
    try:
        if retry_failed:
            from curation.runner.retry import run_retry

            totals = run_retry(config, line, out, work, state)
        elif _complete(config, out):
            view.say(f"curate: {out.uri} is complete; nothing to do")
            totals = out.child(config.branches[0].name).read_json(TOTALS) \
                if config.branches else out.read_json(TOTALS)
        elif not config.branches:
            totals = run_line(config.stages, line, out, work, state, config.writer)
        else:
            totals = _run_branches(config, line, out, work, state)
        if not keep_work:
            _remove_work(config, out)
        print_done(view, totals, time.perf_counter() - t0)
    finally:
        view.close()
    return totals


def input_lineage(inputs: list[str], files: list[str],
                  storage_options: dict | None) -> list[dict[str, Any]]:
    """The curate outputs this run reads (an output folder, or its shards)."""
    from curation.ingest.curated import is_output, lineage, output_of, output_shards

    roots: list[str] = [uri for uri in inputs if is_output(uri, storage_options)]
    read: dict[str, set[str]] = {}
    for path in files:
        if path.endswith(".tar"):
            root = output_of(path, storage_options)
            if root is not None:
                roots.append(root)
                read.setdefault(Location.of(root, storage_options).uri, set()).add(
                    path.rsplit("/", 1)[-1])
    seen: set[str] = set()
    out = []
    for root in roots:
        found = lineage(root, storage_options)
        if found["parent"] in seen:
            continue
        seen.add(found["parent"])
        every = {s.rsplit("/", 1)[-1] for s in output_shards(root, storage_options)}
        found["read_whole"] = read.get(found["parent"], set()) >= every
        out.append(found)
    return out


def as_progress(progress: RunProgress | Callable[[str], None] | None,
                out: Location) -> RunProgress:
    """A progress view; a plain callable (library use) receives the lines said."""
    if isinstance(progress, RunProgress):
        return progress
    if progress is None:
        return RunProgress(out)
    view = QuietProgress(out)
    view.emit = progress  # type: ignore[method-assign]
    return view


def _complete(config: PipelineConfig, out: Location) -> bool:
    if config.branches:
        return all(out.child(b.name).exists(TOTALS) for b in config.branches)
    return out.exists(TOTALS)


def _run_branches(config: PipelineConfig, line: LineInput, out: Location,
                  work: Location, state: RunState) -> dict[str, Any]:
    trunk = work.child("trunk")
    if not trunk.exists("_done.json"):
        run_line(config.stages, line, out, work, state, None, stage_to=trunk)
        trunk.write_json("_done.json", {"units": len(trunk.list(".cdb"))})
    first: dict[str, Any] | None = None
    for branch in config.branches:
        totals = _run_branch(config, branch, line, out, trunk, state)
        first = first or totals
    assert first is not None
    return first


def _run_branch(config: PipelineConfig, branch: BranchConfig, line: LineInput,
                out: Location, trunk: Location, state: RunState) -> dict[str, Any]:
    dest = out.child(branch.name)
    guard_output(dest, config.branch_fingerprint(branch), line.files or [], False, {
        "name": f"{config.name}/{branch.name}", "branch": branch.name,
        "stages": [s.name for s in config.stages] + [s.name for s in branch.stages],
        "trunk_stages": [s.name for s in config.stages], "config": config.raw,
        "source": config.source})
    if dest.exists(TOTALS):
        state.progress.say(f"branch {branch.name}: already complete")
        return dest.read_json(TOTALS)
    state.progress.say(f"branch {branch.name} -> {dest.uri}")
    branch_line = LineInput(line.ingest, staged=trunk)
    return run_line([s.stage for s in branch.stages], branch_line, dest,
                    dest.child(WORK), state, branch.writer)


def run_line(stages: list, line: LineInput, output: Location, work: Location,
             state: RunState, writer: Any, stage_to: Location | None = None
             ) -> dict[str, Any]:
    """One straight chain of stages: passes, fits, then shards and totals (or, with
    ``stage_to``, the last pass's documents staged for branches)."""
    stage_objs: list[Stage] = [s.stage if hasattr(s, "stage") else s for s in stages]
    segments = plan_segments(stage_objs, stage_output=stage_to is not None)
    stage_input = line.files is not None and needs_input_staging(segments)
    packer = None
    if stage_to is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        packer = ShardPacker(output, work, ShardLimits(writer.max_samples, writer.max_bytes),
                             max_in_flight=max(4, 2 * cpus))
    for seg in segments:
        if seg.runs:
            run_pass(seg, line, output, work, state, stage_input, stage_to,
                     packer if seg.is_last else None)
        if seg.collect_for is not None:
            if not seg.runs:
                check_early_facts(seg, work)
            t0 = time.perf_counter()
            summary = fit_global(seg.collect_for, work.child(f"facts-{seg.index:02d}"),
                                 work.child(f"decision-{seg.index:02d}"),
                                 state.options.local_fit_max_facts,
                                 [work.child(f"decision-{j:02d}") for j in seg.exclude],
                                 state.options.local_fit_max_bytes,
                                 [work.child(f"decision-{j:02d}")
                                  for j in _emptying(seg, segments, state.options)])
            state.timings[f"{seg.collect_for.name}.fit"] = time.perf_counter() - t0
            early = f", collected in pass {seg.collected_by}" if not seg.runs else ""
            state.progress.say(f"{seg.collect_for.name}: fitted on {summary['facts']:,} "
                               f"facts ({summary.get('fit', 'task')}{early})")
    if packer is None:
        return {}
    t0 = time.perf_counter()
    n_shards = packer.finish([n.removesuffix(".json") for n in output.list(".json", STATS)])
    state.timings["pack"] = time.perf_counter() - t0
    state.progress.say(f"shards: {n_shards:,} written ({packer.streamed:,} while the "
                       "final pass ran)")
    return finalize_output(output, line.ingest, {
        "stage_seconds": {k: round(v, 3) for k, v in sorted(state.timings.items())}})


def _emptying(seg: Segment, segments: list[Segment], options: Any) -> list[int]:
    """The image-removing decisions applied after ``seg``'s facts were collected that
    drop the documents they empty (not with ``keep_text_only``)."""
    return [j for j in seg.exclude_emptied
            if not (options.keep_text_only or getattr(
                segments[j].collect_for.config, "keep_text_only", False))]  # type: ignore[union-attr]


def check_early_facts(seg: Segment, work: Location) -> None:
    """Facts collected early lie next to their pass's markers, unit for unit; a unit
    without them (an output begun by a version that collected them in a pass of their
    own) would make the fit decide on part of the corpus: refuse it, loudly."""
    host = {n.removesuffix(".parquet")
            for n in work.child(f"facts-{seg.collected_by:02d}").list(".parquet")}
    mine = {n.removesuffix(".parquet")
            for n in work.child(f"facts-{seg.index:02d}").list(".parquet")}
    missing = host - mine
    assert seg.collect_for is not None
    if missing:
        raise ValueError(
            f"{work.uri}: {seg.collect_for.name}'s facts are missing for {len(missing)} "
            f"of {len(host)} units (e.g. {min(missing)}): this output was begun by a "
            "version of curate that planned its passes differently; run again with "
            "--overwrite")
    if seg.exclude_emptied and mine:
        first = work.child(f"facts-{seg.index:02d}").read_parquet(f"{min(mine)}.parquet")
        if LIVE_IMAGES not in first.column_names:
            raise ValueError(
                f"{work.uri}: {seg.collect_for.name}'s facts have no live-image counts "
                f"(e.g. {min(mine)}): this output was begun by a version of curate that "
                "planned its passes differently; run again with --overwrite")


def _remove_work(config: PipelineConfig, out: Location) -> None:
    for branch in config.branches:
        out.child(branch.name).remove_tree(WORK)
    out.remove_tree(WORK)


def print_done(view: RunProgress, totals: dict[str, Any], seconds: float) -> None:
    dropped = sum(totals.get("documents_dropped", {}).values())
    view.say(f"curate: done in {seconds:.1f}s: {totals.get('documents_written', 0)} "
             f"documents, {totals.get('images_written', 0)} images in "
             f"{totals.get('shards', 0)} shard(s); {dropped} documents dropped, "
             f"{sum(totals.get('quarantined', {}).values())} records quarantined")
