"""`curate run ... --retry-failed`: re-fetch only the images whose failure was
retryable (timeouts, 5xx, 429, resets), rewrite only the units they belong to, and
repack only the shards that held those units' samples.

Works from the finished output alone (``_work/`` is gone after a run): a unit's kept
documents come back from the shards (kept images keep their bytes, retryable
failures go back to ``pending``), its dropped documents from ``dropped/UNIT.parquet``
(a document dropped as ``no_images`` by the download comes back with only its
retryable images pending; other drops stay dropped). The units then go through the
final pass's ops from the download stage on. Their new samples, together with the
untouched samples of the shards they shared, are packed into new shards numbered
after the last one; the old shards are removed last. A plan file makes an
interrupted retry resume where it stopped.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.batch_codec import encode_docs
from curation.document import IMAGE_PENDING, Document
from curation.location import Location
from curation.pipeline_config import PipelineConfig
from curation.runner.finalize import finalize_output
from curation.runner.passes import LineInput, RunState, map_groups
from curation.runner.plan import group_ops, plan_segments
from curation.runner.units import WriteEnd
from shards.layout import DROPPED, MANIFEST, SHARDS, STATS, TOTALS
from shards.pack import ShardLimits, UnitPieces, assemble_shard, cut_shards
from shards.reader import iter_samples

PLAN = "_plan.json"


def _retryable(status: str) -> bool:
    from curation.download.reasons import is_retryable

    return is_retryable(status)


@ray.remote(num_cpus=0.5)
def _affected(stats: Location, names: list[str]) -> list[str]:
    return [n.removesuffix(".json") for n in names
            if any(_retryable(s) for s in stats.read_json(n).get("image_status", {}))]


@ray.remote(num_cpus=1)
def _shards_of(manifest: Location, units: list[str]) -> dict[str, list[str]]:
    """unit -> the shards holding its samples (a scan of two manifest columns)."""
    wanted = pa.array(units)
    found: dict[str, set[str]] = {}
    for name in manifest.list(".parquet"):
        table = manifest.read_parquet(name, columns=["unit", "shard"])
        hit = table.filter(pc.is_in(table["unit"], value_set=wanted))
        for unit, shard in zip(hit["unit"].to_pylist(), hit["shard"].to_pylist()):
            found.setdefault(unit, set()).add(shard)
    return {u: sorted(s) for u, s in found.items()}


def _reset(doc: Document) -> None:
    for im in doc.images:
        if _retryable(im.status):
            im.status, im.dropped_by, im.member = IMAGE_PENDING, None, None


def rebuild_unit(out: Location, unit: str, shards: list[str], download: str
                 ) -> list[Document]:
    """The unit's documents as they were when the final pass wrote them, with every
    retryable failure pending again."""
    by_position: dict[int, Document] = {}
    for shard in shards:
        rows = out.child(MANIFEST).read_parquet(shard.replace(".tar", ".parquet"))
        rows = rows.filter(pc.equal(rows["unit"], unit))
        for key, off, length in zip(rows["key"].to_pylist(), rows["offset"].to_pylist(),
                                    rows["length"].to_pylist()):
            blob = out.fs.cat_file(out.path(SHARDS, shard), start=off, end=off + length)
            for sample in iter_samples(io.BytesIO(blob), f"{shard}:{key}"):
                doc = Document.from_json_bytes(sample["json"])
                for im in doc.images:
                    if im.member:
                        im.data = sample[im.member]
                _reset(doc)
                by_position[int(key.rsplit("-", 1)[1])] = doc
    dropped = out.child(DROPPED).read_parquet(f"{unit}.parquet")
    for position, record in zip(dropped["position"].to_pylist(),
                                dropped["record"].to_pylist()):
        doc = Document.from_json_bytes(record.encode("utf-8"))
        if (doc.dropped_by, doc.drop_reason) == (download, "no_images") and any(
                _retryable(im.status) for im in doc.images):
            doc.drop_reason = doc.dropped_by = None
            _reset(doc)
        by_position[position] = doc
    return [by_position[i] for i in range(len(by_position))]


def _rebuild(batch: dict, out: Location, dest: Location, shards_of: dict,
             download: str) -> dict:
    for unit in batch["unit"]:
        docs = rebuild_unit(out, str(unit), shards_of.get(str(unit), []), download)
        dest.write_bytes(f"{unit}.cdb", encode_docs(docs))
    return {"unit": batch["unit"]}


class RetrySources:
    """Pieces for the repack: the retried units' new pieces, and runs of untouched
    samples of the old shards (``old:SHARD:k``)."""

    def __init__(self, out: Location, pieces: Location) -> None:
        self.out, self.new = out, UnitPieces(pieces)
        self.old: dict[str, tuple[str, pa.Table]] = {}

    def index(self, name: str) -> pa.Table:
        return self.old[name][1] if name in self.old else self.new.index(name)

    def read(self, name: str, start: int, end: int) -> bytes:
        if name in self.old:
            return self.out.fs.cat_file(self.out.path(SHARDS, self.old[name][0]),
                                        start=start, end=end)
        return self.new.read(name, start, end)

    def sequence(self, touched: list[str], units: set[str]) -> list[tuple[str, Any]]:
        """(piece, lengths) in output order: old runs and new units interleaved."""
        seq: list[tuple[str, Any]] = []
        added: set[str] = set()
        for shard in touched:
            rows = self.out.child(MANIFEST).read_parquet(shard.replace(".tar", ".parquet"))
            rows = rows.drop_columns(["shard"])
            unit_col = rows["unit"].to_pylist()
            start = 0

            def flush(end: int) -> None:
                if end > start:
                    name = f"old:{shard}:{len(self.old)}"
                    self.old[name] = (shard, rows.slice(start, end - start))
                    seq.append((name, rows["length"].slice(start, end - start).to_numpy()))

            for i, unit in enumerate(unit_col + [None]):
                if unit is None or unit in units:
                    flush(i)
                    start = i + 1
                    if unit is not None and unit not in added:
                        added.add(unit)
                        seq.append((unit, self.new.index(unit)["length"].to_numpy()))
        for unit in sorted(units - added):  # units that had no sample before
            seq.append((unit, self.new.index(unit)["length"].to_numpy()))
        return seq


def run_retry(config: PipelineConfig, line: LineInput, out: Location, work: Location,
              state: RunState) -> dict[str, Any]:
    if config.branches:
        raise ValueError("--retry-failed works on a pipeline without branches")
    final = plan_segments([s.stage for s in config.stages])[-1]
    names = [op.stage.name if op.kind == "stage" else "" for op in final.ops]
    if "download" not in names:
        raise ValueError("--retry-failed needs the download stage in the pipeline's last "
                         "segment (no global stage after it)")
    ops = final.ops[names.index("download"):]
    rwork = work.child("retry")
    if rwork.exists(PLAN):
        plan = rwork.read_json(PLAN)
    else:
        if not out.exists(TOTALS):
            raise ValueError(f"{out.uri}: the run is not finished; run the same command "
                             "without --retry-failed first")
        stats = out.child(STATS)
        names_ = stats.list(".json")
        units = sorted(u for part in ray.get([_affected.remote(stats, names_[i:i + 256])
                                              for i in range(0, len(names_), 256)])
                       for u in part)
        shards_of = ray.get(_shards_of.remote(out.child(MANIFEST), units)) if units else {}
        last = [int(n[:-4]) for n in out.list(".tar", SHARDS) if n[:-4].isdigit()]
        plan = {"units": units, "shards_of": shards_of,
                "touched": sorted({s for v in shards_of.values() for s in v}),
                "first_new": max(last) + 1 if last else 0}
        rwork.write_json(PLAN, plan)
        state.progress.say(f"retry: {len(units)} of {len(names_)} unit(s) have retryable "
                           "image failures")
        if not units:
            return out.read_json(TOTALS)
        out.remove([TOTALS])
    units = plan["units"]
    staged = set(n.removesuffix(".cdb") for n in rwork.list(".cdb"))
    todo = [u for u in units if u not in staged]
    if todo:
        ray.data.from_items([{"unit": u} for u in todo]).map_batches(
            _rebuild, batch_size=1, fn_kwargs={"out": out, "dest": rwork,
                                               "shards_of": plan["shards_of"],
                                               "download": "download"}).materialize()
        out.child(STATS).remove([f"{u}.json" for u in units])
    from curation.runner.chain import ChainSettings

    done = {n.removesuffix(".json") for n in out.list(".json", STATS)}
    todo = [u for u in units if u not in done]
    pieces = work.child("pieces")
    if todo:
        from curation.runner.services import start_services

        services = start_services([op.stage for op in ops if op.kind == "stage"])
        try:
            state.progress.start_pass("retry", len(todo))
            ds = ray.data.from_items([{"unit": u} for u in todo],
                                     override_num_blocks=len(todo))
            ds = map_groups(ds, group_ops(ops), ChainSettings(
                config.options.keep_text_only, services=services.clients or None),
                rwork, WriteEnd(out, pieces))
            for row in ds.iter_rows():
                state.unit_done(row)
            state.progress.end_pass()
        finally:
            services.stop()
    _repack(out, pieces, plan)
    return finalize_output(out, line.ingest, {"retried_units": len(units)})


def _repack(out: Location, pieces: Location, plan: dict) -> None:
    """New shards for the touched ones (skipping those already written), then the old
    tars, then their manifest parts: a part left means the repack is not finished."""
    parts = set(out.list(".parquet", MANIFEST))
    touched = [s for s in plan["touched"] if s.replace(".tar", ".parquet") in parts]
    if not touched and plan["touched"]:
        return
    sources = RetrySources(out, pieces)
    seq = sources.sequence(touched, set(plan["units"]))
    for index, ranges in cut_shards(seq, _limits_of(out)):
        shard = plan["first_new"] + index
        if f"{shard:06d}.parquet" not in parts:
            assemble_shard(shard, ranges, sources, out)
    out.child(SHARDS).remove(touched)
    out.child(MANIFEST).remove([s.replace(".tar", ".parquet") for s in touched])


def _limits_of(out: Location) -> ShardLimits:
    writer = (out.read_json("_pipeline.json").get("config") or {}).get("writer") or {}
    return ShardLimits(**{k: v for k, v in writer.items()
                          if k in ("max_samples", "max_bytes")})
