"""`curate run --dry-run`: check a pipeline and its inputs, print the plan, write
nothing and start nothing (no Ray).

Checks: the pipeline validates; every input exists and has a known format; the first
records of each file parse (bad ones are counted by reason, as the run would
quarantine them); the output folder would be resumed, refused or started fresh.
Plan: the passes over the units, where the global barriers fall, which passes stage
their documents, the Ray operations each becomes (tasks or actor pools, CPUs and
GPUs each), and an estimate of the work units.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import fsspec

from curation.ingest.files import detect_format, expand_inputs
from curation.ingest.quarantine import QuarantineRecord
from curation.ingest.reader import read_input
from curation.location import Location
from curation.pipeline_config import PipelineConfig
from curation.runner.plan import Segment, plan_segments
from shards.layout import PIPELINE, TOTALS


@dataclass
class DryRun:
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def say(self, line: str = "") -> None:
        self.lines.append(line)


def _sample_file(path: str, config: PipelineConfig, options: dict | None, n: int,
                 report: DryRun) -> float:
    """Parse the first ``n`` records; returns the estimated documents in the file."""
    try:
        kind = detect_format(path)
        records = list(itertools.islice(read_input(path, config.ingest, options), n))
    except Exception as exc:  # noqa: BLE001 - reported, not raised: a dry run lists all
        report.errors.append(f"{path}: {type(exc).__name__}: {exc}")
        return 0.0
    docs = [r for r in records if not isinstance(r, QuarantineRecord)]
    bad = Counter(r.reason for r in records if isinstance(r, QuarantineRecord))
    size = _size(path, options)
    estimate = float(len(docs))
    if kind == "parquet":
        estimate = float(_parquet_rows(path, options) or len(docs))
    elif len(records) == n and size:
        sampled = _sample_bytes(path, options, n)
        if sampled:
            estimate = len(docs) * size / sampled
    quarantine = f", {sum(bad.values())} would be quarantined ({dict(bad)})" if bad else ""
    report.say(f"  {path}: {kind}, {size / 2**20:,.1f} MiB; first {len(records)} "
               f"record(s) parsed: {len(docs)} documents{quarantine}")
    if records and not docs:
        report.errors.append(f"{path}: none of the first {len(records)} records parse "
                             f"({dict(bad)}); is it the right format?")
    return estimate


def _parquet_rows(path: str, options: dict | None) -> int:
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb", **(options or {})) as f:
        return pq.ParquetFile(f).metadata.num_rows


def _size(path: str, options: dict | None) -> int:
    try:
        fs, p = fsspec.core.url_to_fs(path, **(options or {}))
        return int(fs.size(p) or 0)
    except (OSError, ValueError):
        return 0


def _sample_bytes(path: str, options: dict | None, n: int) -> int:
    """Bytes taken by the first ``n`` lines of an uncompressed JSONL file."""
    if path.endswith((".gz", ".zip")):
        return 0
    with fsspec.open(path, "rb", **(options or {})) as f:
        return sum(len(line) for line in itertools.islice(f, n))


def _describe(seg: Segment) -> list[str]:
    if not seg.runs:
        assert seg.collect_for is not None
        return [f"  pass {seg.index}: skipped: {seg.collect_for.name}'s facts come from "
                f"pass {seg.collected_by}, its fit leaves out what "
                + ", ".join([*(f"pass {j}'s decision" for j in seg.exclude),
                             *(f"pass {j}'s image removal" for j in seg.exclude_emptied)])
                + " drops"]
    out = []
    names = [seg.collect_for.name] if seg.collect_for else []
    names += [stage.name for _, stage in seg.also_collect]
    barrier = f" -> facts for {' and '.join(names)} (global barrier: fit)" \
        if seg.collect_for else " -> shards"
    source = "input" if seg.source is None else f"staged pass {seg.source}"
    staged = "; documents staged for later passes" if seg.materialize and seg.collect_for \
        else ""
    out.append(f"  pass {seg.index}: from {source}{barrier}{staged}")
    for g in seg.groups:
        size = g.concurrency or ("up to one per GPU" if g.num_gpus else "up to one per CPU")
        kind = (f"actor pool ({g.num_cpus:g} CPU, {g.num_gpus:g} GPU per actor, {size})"
                if g.actor_pool else f"tasks ({g.num_cpus:g} CPU each)")
        out.append(f"    {g.label}: {kind}")
    return out


def dry_run(config: PipelineConfig, inputs: list[str], output: str,
            storage_options: dict | None = None, sample: int = 20) -> DryRun:
    report = DryRun()
    report.say(f"pipeline {config.name!r} ({config.source}): valid; "
               f"fingerprint {config.fingerprint()}")
    try:
        files = expand_inputs(inputs, storage_options)
    except (FileNotFoundError, ValueError) as exc:
        report.errors.append(str(exc))
        return report
    report.say(f"inputs: {len(files)} file(s)")
    docs_est = 0.0
    for i, path in enumerate(files):
        shown = len(report.lines)
        docs_est += _sample_file(path, config, storage_options, sample, report)
        if i >= 10:  # parsed and checked, but not listed
            del report.lines[shown:]
    if len(files) > 10:
        report.say(f"  ... and {len(files) - 10} more file(s), each sampled")
    units = max(1, round(docs_est / config.ingest.docs_per_unit)) if docs_est else 0
    report.say(f"work units: about {units} ({config.ingest.docs_per_unit} documents each, "
               f"about {docs_est:,.0f} documents)")
    report.say("plan:")
    for seg in plan_segments([s.stage for s in config.stages],
                             stage_output=bool(config.branches)):
        for line in _describe(seg):
            report.say(line)
    for branch in config.branches:
        report.say(f"branch {branch.name} -> {output.rstrip('/')}/{branch.name}:")
        for seg in plan_segments([s.stage for s in branch.stages]):
            for line in _describe(seg):
                report.say(line)
    out = Location.of(output, storage_options)
    if out.exists(PIPELINE):
        old = out.read_json(PIPELINE)
        same = old.get("fingerprint") == config.fingerprint() and old.get("inputs") == files
        state = ("complete: nothing to do" if out.exists(TOTALS) else "would resume") \
            if same else "holds another run: refused without --overwrite"
        report.say(f"output {out.uri}: {state}")
    else:
        report.say(f"output {out.uri}: new")
    report.say("dry run: nothing was written")
    return report
