"""`curate export vila`: write an output's shards in the layouts VILA's own loaders read.

- ``mmc4``:     ``NNNNN.pkl`` + ``NNNNN.count`` only (``LazyMMC4Dataset`` counts files
                and assumes pairs), each pickle a list of MMC4 documents.
- ``coyo``:     ``part-NNNNN.pkl`` + ``.count`` (``LazyCoyoDataset``).
- ``coyo-wds``: ``NNNNN.tar`` of ``KEY.jpg``/``KEY.txt``/``KEY.json`` plus
                ``wids-meta.json`` (``LazyCoyoWebDataset``).

VILA gives each rank ``n_shards // world_size`` whole shards and trims every rank to
the smallest rank's count, so shard sizes are balanced (differ by at most one) and,
with ``world_size``, the shard count is a multiple of it; fewer shards than ranks is
warned about. Two passes: records are converted once into a local spill file (JSON
lines, so the total is known), then packed into balanced shards. Nothing here reads a
pickle back.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from curation.export.vila_records import coyo_record, mmc4_record, wds_record
from curation.storage import filesystem, list_files, remove, write_bytes, write_json
from shards.layout import join
from trainer_bridge.shardlist import expand_urls
from trainer_bridge.tar_reader import read_samples

KINDS = ("mmc4", "coyo", "coyo-wds")
OWN_SUFFIXES = (".pkl", ".count", ".tar", "wids-meta.json")


@dataclass
class ExportReport:
    kind: str
    dest: str
    samples: int = 0
    shards: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    vila_samples_used: int | None = None  # what VILA keeps for the given world size


def shard_sizes(total: int, max_per_shard: int, world_size: int | None = None) -> list[int]:
    """Balanced sizes (max - min <= 1); with ``world_size``, a multiple of it shards
    and the larger shards dealt round-robin over the ranks' contiguous slices, so
    VILA's per-rank totals differ by at most one sample."""
    if total == 0:
        return []
    n = -(-total // max(1, max_per_shard))
    ranks = world_size if world_size and total >= world_size else 1
    n = -(-n // ranks) * ranks
    base, extra = divmod(total, n)
    per = n // ranks
    return [base + (1 if (p % per) * ranks + p // per < extra else 0) for p in range(n)]


def vila_usable(sizes: list[int], world_size: int) -> int:
    """Samples VILA trains on: whole shards per rank, every rank cut to the smallest."""
    per = len(sizes) // world_size
    if per == 0:
        return 0
    return min(sum(sizes[r * per:(r + 1) * per]) for r in range(world_size)) * world_size


def _convert(raw: dict, kind: str, short_side: int | None, skipped: Counter) -> dict | None:
    try:
        doc = json.loads(raw["json"])
    except (KeyError, ValueError):
        skipped["bad_json"] += 1
        return None
    if kind == "mmc4":
        record, image_reasons = mmc4_record(raw, doc, short_side)
        skipped.update(image_reasons)
        if record is None:
            skipped["no_images"] += 1
        return record
    made = (coyo_record if kind == "coyo" else wds_record)(raw, doc, short_side)
    if isinstance(made, str):
        skipped[made] += 1
        return None
    return made


def _spill(output: str, kind: str, short_side: int | None, spill, skipped: Counter,
           storage_options: dict | None) -> int:
    n = 0
    for url in expand_urls(output, storage_options):
        for raw in read_samples(url, storage_options=storage_options):
            record = _convert(raw, kind, short_side, skipped)
            if record is not None:
                spill.write(json.dumps(record) + "\n")
                n += 1
    return n


def _chunks(spill, sizes: list[int]) -> Iterator[list[dict]]:
    spill.seek(0)
    for size in sizes:
        yield [json.loads(spill.readline()) for _ in range(size)]


def _tar_bytes(records: list[dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for rec in records:
            members = [("jpg", base64.b64decode(rec["jpg"])), ("txt", rec["txt"].encode()),
                       ("json", rec["json"].encode())]
            for suffix, data in members:
                info = tarfile.TarInfo(f"{rec['__key__']}.{suffix}")
                info.size, info.mode, info.mtime = len(data), 0o444, 0
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_shards(dest: str, kind: str, chunks: Iterator[list[dict]],
                  storage_options: dict | None) -> list[dict]:
    written = []
    for i, records in enumerate(chunks):
        if kind == "coyo-wds":
            name, blob = f"{i:05d}.tar", _tar_bytes(records)
            write_bytes(join(dest, name), blob, storage_options)
            written.append({"url": name, "nsamples": len(records), "filesize": len(blob)})
            continue
        stem = f"{i:05d}" if kind == "mmc4" else f"part-{i:05d}"
        write_bytes(join(dest, f"{stem}.pkl"), pickle.dumps(records, protocol=4),
                    storage_options)
        write_bytes(join(dest, f"{stem}.count"), str(len(records)).encode(), storage_options)
        written.append({"url": f"{stem}.pkl", "nsamples": len(records)})
    if kind == "coyo-wds":
        write_json(join(dest, "wids-meta.json"), {"__kind__": "VILA-WebDataset",
                   "wids_version": 1, "shardlist": written}, storage_options)
    return written


def _prepare_dest(dest: str, overwrite: bool, storage_options: dict | None) -> None:
    """DEST must hold nothing but this exporter's files (VILA counts files in it)."""
    present = list_files(dest, "", storage_options)
    if present and not overwrite:
        raise FileExistsError(f"{dest} is not empty ({len(present)} files); "
                              "use --overwrite to replace an earlier export")
    remove([p for p in present if p.endswith(OWN_SUFFIXES)], storage_options)
    others = [p for p in present if not p.endswith(OWN_SUFFIXES)]
    if others:
        raise FileExistsError(f"{dest} holds files this exporter did not write, e.g. "
                              f"{others[0]}: VILA would read them as shards")
    fs, path = filesystem(dest, storage_options)
    fs.makedirs(path, exist_ok=True)


def export_vila(output: str, dest: str, kind: str, *, world_size: int | None = None,
                samples_per_shard: int = 1000, short_side: int | None = 336,
                overwrite: bool = False, storage_options: dict | None = None) -> ExportReport:
    """Export every sample of ``output``'s shards; return counts, shards and warnings."""
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    _prepare_dest(dest, overwrite, storage_options)
    report, skipped = ExportReport(kind=kind, dest=dest), Counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spill:
        report.samples = _spill(output, kind, short_side, spill, skipped, storage_options)
        sizes = shard_sizes(report.samples, samples_per_shard, world_size)
        report.shards = _write_shards(dest, kind, _chunks(spill, sizes), storage_options)
    report.skipped = dict(skipped)
    if world_size:
        report.vila_samples_used = vila_usable(sizes, world_size)
        if len(sizes) < world_size:
            report.warnings.append(
                f"only {len(sizes)} shard(s) for world size {world_size}: VILA gives each "
                "rank n_shards // world_size whole shards, so it would train on nothing; "
                "export more samples or lower --samples-per-shard")
    return report
