"""`curate export vila`: write an output's shards in the layouts VILA's own loaders read.

- ``mmc4``:     ``NNNNN.pkl`` + ``NNNNN.count`` only (``LazyMMC4Dataset`` counts files
                and assumes pairs), each pickle a list of MMC4 documents.
- ``coyo``:     ``part-NNNNN.pkl`` + ``.count`` (``LazyCoyoDataset``).
- ``coyo-wds``: ``NNNNN.tar`` of ``KEY.jpg``/``KEY.txt``/``KEY.json`` plus
                ``wids-meta.json`` (``LazyCoyoWebDataset``).

Only documents of the kind's sources are exported (``coyo``/``coyo-wds``: the pairs
of ``coyo`` and ``laion``; ``mmc4``: interleaved documents, i.e. neither pairs nor
``llava`` SFT records); the rest are counted as skipped by source.

VILA gives each rank ``n_shards // world_size`` whole shards and trims every rank to
the smallest rank's count (COYO: whole groups of 4 pairs per index), so the world size
is required: shard sizes are balanced (differ by at most one), the shard count is a
multiple of the world size, and an export where some rank would get no shard, or VILA
would train on nothing, is an error before anything is written. ``vila_samples_used``
is what VILA will train on. Two passes: records are converted once into a local spill
file (JSON lines, so the total is known), then packed into balanced shards. Nothing
here reads a pickle back.
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

from curation.export.vila_records import TOWER_SIZES, coyo_record, mmc4_record, wds_record
from curation.progress import Ticker
from curation.storage import filesystem, list_files, remove, write_bytes, write_json
from shards.layout import join
from trainer_bridge.shardlist import expand_urls
from trainer_bridge.tar_reader import read_samples

KINDS = ("mmc4", "coyo", "coyo-wds")
FORMATS = ("vila1", "nvila")
OWN_SUFFIXES = (".pkl", ".count", ".tar", "wids-meta.json")
PAIR_SOURCES = ("coyo", "laion")
SFT_SOURCES = ("llava",)
COYO_GROUP = 4  # LazyCoyoDataset's n_samples_per_idx
DEFAULT_TOWER = {"vila1": "clip-336", "nvila": "siglip-448"}


class ExportError(ValueError):
    """The export would give VILA nothing (or not what it needs) to train on."""


def default_sources(kind: str) -> tuple[str, ...] | None:
    """Pairs for coyo/coyo-wds; None (= anything but pairs and SFT) for mmc4."""
    return PAIR_SOURCES if kind in ("coyo", "coyo-wds") else None


def source_ok(source: str, kind: str, sources: tuple[str, ...] | None) -> bool:
    if sources is not None:
        return source in sources
    return source not in PAIR_SOURCES + SFT_SOURCES


@dataclass
class ExportReport:
    kind: str
    dest: str
    samples: int = 0
    shards: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    world_size: int = 1
    format: str = "vila1"
    short_side: int | None = None
    vila_samples_used: int = 0  # what VILA trains on with this world size
    vila_groups: int | None = None  # COYO: indices of 4 pairs VILA builds


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


def vila_usable(sizes: list[int], world_size: int, group: int = 1) -> int:
    """Samples VILA trains on: whole shards per rank, each rank's count cut to whole
    groups (COYO: 4), every rank cut to the smallest."""
    per = len(sizes) // world_size
    if per == 0:
        return 0
    ranks = [sum(sizes[r * per:(r + 1) * per]) // group for r in range(world_size)]
    return min(ranks) * world_size * group


def _convert(raw: dict, kind: str, short_side: int | None, skipped: Counter,
             sources: tuple[str, ...] | None) -> dict | None:
    try:
        doc = json.loads(raw["json"])
    except (KeyError, ValueError):
        skipped["bad_json"] += 1
        return None
    source = doc.get("source") or "unknown"
    if not source_ok(source, kind, sources):
        skipped[f"source:{source}"] += 1
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
           sources: tuple[str, ...] | None, storage_options: dict | None) -> int:
    n = 0
    urls = expand_urls(output, storage_options)
    ticker = Ticker("export: reading", len(urls), "shards")
    for url in urls:
        for raw in read_samples(url, storage_options=storage_options):
            record = _convert(raw, kind, short_side, skipped, sources)
            if record is not None:
                spill.write(json.dumps(record) + "\n")
                n += 1
        ticker.update(1, f"{n:,} samples kept, {sum(skipped.values()):,} skipped")
    ticker.close()
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


def _check_plan(kind: str, sizes: list[int], world_size: int) -> int:
    """What VILA trains on; an ExportError when a rank would get nothing."""
    group = COYO_GROUP if kind == "coyo" else 1
    if len(sizes) < world_size:
        raise ExportError(
            f"{sum(sizes)} sample(s) make only {len(sizes)} shard(s) for world size "
            f"{world_size}: VILA gives each rank n_shards // world_size whole shards, so "
            "it would train on nothing (MMC4) or fail (COYO); export more samples or "
            "train on fewer GPUs")
    used = vila_usable(sizes, world_size, group)
    if used == 0:
        raise ExportError(f"VILA with world size {world_size} would train on nothing: "
                          f"each rank needs at least {group} sample(s)")
    return used


def export_vila(output: str, dest: str, kind: str, *, world_size: int,
                samples_per_shard: int = 1000, short_side: int | None = 336,
                sources: tuple[str, ...] | None = None, format: str = "vila1",
                overwrite: bool = False, storage_options: dict | None = None) -> ExportReport:
    """Export ``output``'s documents of the kind's sources; see the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if not world_size or world_size < 1:
        raise ValueError("--world-size is required (the number of GPUs VILA trains on)")
    sources = tuple(sources) if sources else default_sources(kind)
    _prepare_dest(dest, overwrite, storage_options)
    report = ExportReport(kind=kind, dest=dest, world_size=world_size, format=format,
                          short_side=short_side)
    skipped: Counter = Counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spill:
        report.samples = _spill(output, kind, short_side, spill, skipped, sources,
                                storage_options)
        sizes = shard_sizes(report.samples, samples_per_shard, world_size)
        report.skipped = dict(skipped)
        report.vila_samples_used = _check_plan(kind, sizes, world_size)
        report.shards = _write_shards(dest, kind, _chunks(spill, sizes), storage_options)
    if kind == "coyo":
        report.vila_groups = report.vila_samples_used // COYO_GROUP
    elif kind == "coyo-wds":  # LazyCoyoWebDataset: len(dataset) // 4 indices
        report.vila_groups = report.samples // COYO_GROUP
        report.vila_samples_used = report.vila_groups * COYO_GROUP
    return report


def short_side_for(tower: str | None, fmt: str = "vila1") -> int | None:
    """The stored short side for a tower (``none``: keep the size)."""
    name = tower or DEFAULT_TOWER[fmt]
    if name == "none":
        return None
    if name not in TOWER_SIZES:
        raise ValueError(f"--tower must be one of {', '.join([*TOWER_SIZES, 'none'])}")
    return TOWER_SIZES[name]
