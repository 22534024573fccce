"""Document dedup as a Ray Data job: no process holds the whole LSH index.

1. facts (ids, URL/text hashes, MinHash signature) are computed per input file or
   per block, in parallel (``facts_dataset``);
2. every document emits one row per key it can collide on (URL hash, text hash, one
   per LSH band); rows are shuffled by ``groupby(partition)`` where
   ``partition = key mod P``, so each group is a bounded slice of the index and the
   candidate pairs of a slice come from one vectorized call (``pairs_from_keys``);
3. only documents that have a candidate at all are fetched to the driver, where
   candidates are verified (signature estimate, or exact Jaccard of shingle sets)
   and clustered (``finder.resolve``): that set scales with the duplicates, not
   with the corpus.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import ray  # noqa: TID251 - the runner is where Ray lives
import xxhash

from curation.dedup.facts import FACT_SCHEMA, FactTable, compute_facts
from curation.dedup.finder import EXACT, MINHASH, URL, resolve
from curation.dedup.lsh import band_keys, pairs_from_keys
from curation.dedup.params import DedupConfig
from curation.document import Document
from curation.ingest.files import expand_inputs
from curation.ingest.reader import read_input
from curation.pipeline_config import IngestConfig
from curation.runner.session import start_ray
from curation.storage import atomic_write, write_bytes, write_json, write_parquet

ROWS_PER_PARTITION = 4_000_000  # key rows per shuffled group (~100 MB of numpy)
_FACT_CHUNK = 2048
BLOCK_ROWS = 20_000  # facts per block when the job is handed a list


def facts_table(facts: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(facts, schema=FACT_SCHEMA)


def _facts_of_file(batch: dict, ingest: IngestConfig, cfg: DedupConfig,
                   storage_options: dict | None) -> Iterator[pa.Table]:
    for path in batch["path"]:
        chunk: list[Document] = []
        for rec in read_input(str(path), ingest, storage_options):
            if isinstance(rec, Document):
                chunk.append(rec)
            if len(chunk) >= _FACT_CHUNK:
                yield facts_table(compute_facts(chunk, cfg))
                chunk = []
        if chunk:
            yield facts_table(compute_facts(chunk, cfg))


def facts_dataset(files: list[str], ingest: IngestConfig, cfg: DedupConfig,
                  storage_options: dict | None = None) -> ray.data.Dataset:
    """Facts of every document of the input files, one read task per file."""
    paths = ray.data.from_items([{"path": f} for f in files],
                                override_num_blocks=max(1, len(files)))
    return paths.map_batches(_facts_of_file, batch_size=1, batch_format="numpy",
                             fn_kwargs={"ingest": ingest, "cfg": cfg,
                                        "storage_options": storage_options})


def node_ids(doc_id, location) -> np.ndarray:
    """Stable 64-bit node id of a record (doc_id alone is shared by URL copies)."""
    ids = np.fromiter((xxhash.xxh64_intdigest(f"{d}\x00{loc}".encode("utf-8"))
                       for d, loc in zip(doc_id, location)), dtype=np.uint64)
    return ids.view(np.int64)


def _key_rows(batch: pa.Table, cfg: DedupConfig, partitions: int) -> dict:
    """One row per (document, collision key): kind, key, node, partition."""
    cols = batch.to_pydict()
    table = FactTable.from_columns(cols, cfg.num_perm)
    nodes = node_ids(cols["doc_id"], cols["location"])
    kinds, keys, owners = [], [], []
    for kind, on, arr, mask in ((URL, cfg.url, table.url_hash, table.has_url),
                                (EXACT, cfg.exact, table.text_hash, table.has_text)):
        if on:
            kinds.append(np.full(mask.sum(), kind))
            keys.append(arr[mask])
            owners.append(nodes[mask])
    if cfg.minhash and table.has_sig.any():
        bk = band_keys(table.sig[table.has_sig], cfg.bands, cfg.rows).view(np.int64)
        kinds.append(np.full(bk.size, MINHASH))
        keys.append(bk.ravel())
        owners.append(np.repeat(nodes[table.has_sig], cfg.bands))
    if not keys:
        z = np.zeros(0, np.int64)
        return {"kind": z, "key": z, "node": z, "partition": z}
    kind, key = np.concatenate(kinds).astype(np.int64), np.concatenate(keys)
    return {"kind": kind, "key": key, "node": np.concatenate(owners),
            "partition": (key.view(np.uint64) % np.uint64(partitions)).astype(np.int64)}


def _partition_pairs(group: dict, cfg: DedupConfig) -> dict:
    """Candidate pairs of one shuffled slice of the index, all kinds at once."""
    us, vs, ks = [], [], []
    for kind in np.unique(group["kind"]):
        sel = group["kind"] == kind
        cap = cfg.max_all_pairs if kind == MINHASH else 1
        u, v = pairs_from_keys(group["key"][sel], group["node"][sel], cap)
        us.append(u)
        vs.append(v)
        ks.append(np.full(len(u), kind, dtype=np.int64))
    if not us:
        z = np.zeros(0, np.int64)
        return {"u": z, "v": z, "kind": z}
    return {"u": np.concatenate(us), "v": np.concatenate(vs), "kind": np.concatenate(ks)}


def _select_nodes(batch: pa.Table, wanted: np.ndarray) -> pa.Table:
    cols = batch.to_pydict()
    mask = np.isin(node_ids(cols["doc_id"], cols["location"]), wanted)
    return batch.filter(pa.array(mask))


def _collect(ds: ray.data.Dataset, names: list[str]) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {n: [] for n in names}
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        for n in names:
            parts[n].append(batch[n])
    return {n: np.concatenate(p) if p else np.zeros(0, np.int64) for n, p in parts.items()}


def find_duplicates_distributed(facts: ray.data.Dataset | list[dict],
                                cfg: DedupConfig) -> list[dict]:
    """Same result as ``finder.find_duplicates`` for the same facts, on Ray Data."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    if not isinstance(facts, ray.data.Dataset):
        table = facts_table(facts)
        step = max(BLOCK_ROWS, math.ceil(len(facts) / (4 * cpus)))
        facts = ray.data.from_arrow([table.slice(i, step) for i in range(0, len(table), step)]
                                    or [table])
    n_docs = facts.count()
    partitions = max(cpus, math.ceil(n_docs * (cfg.bands + 2) / ROWS_PER_PARTITION))
    keys = facts.map_batches(_key_rows, batch_format="pyarrow",
                             fn_kwargs={"cfg": cfg, "partitions": partitions})
    pairs_ds = keys.groupby("partition", num_partitions=partitions).map_groups(
        _partition_pairs, batch_format="numpy", fn_kwargs={"cfg": cfg})
    raw = _collect(pairs_ds, ["u", "v", "kind"])
    if len(raw["u"]) == 0:
        return []
    wanted = np.unique(np.concatenate([raw["u"], raw["v"]]))
    chosen = facts.map_batches(_select_nodes, batch_format="pyarrow",
                               fn_kwargs={"wanted": wanted})
    tables = [t for t in ray.get(chosen.to_arrow_refs()) if t.num_rows]
    if not tables:
        return []
    table_pa = pa.concat_tables(tables).cast(FACT_SCHEMA)
    return _resolve_on_driver(table_pa, raw, cfg)


def _resolve_on_driver(table_pa: pa.Table, raw: dict, cfg: DedupConfig) -> list[dict]:
    cols = table_pa.to_pydict()
    nodes = node_ids(cols["doc_id"], cols["location"])
    nodes, first = np.unique(nodes, return_index=True)  # a record read twice counts once
    cols = {k: [v[i] for i in first] for k, v in cols.items()}
    table = FactTable.from_columns(cols, cfg.num_perm)
    mh = raw["kind"] == MINHASH  # URL/exact groups are rebuilt from the fetched hashes
    u, v = np.searchsorted(nodes, raw["u"][mh]), np.searchsorted(nodes, raw["v"][mh])
    return resolve(table, u, v, cfg)


# ---- `curate dedup`: files in, kept documents + duplicates.parquet out ----------------

DUPLICATES_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("location", pa.string()), ("duplicate_of", pa.string()),
    ("duplicate_of_location", pa.string()), ("method", pa.string()),
    ("similarity", pa.float64()),
])


def _write_kept(row: dict, output: str, ingest: IngestConfig, removed_ref: ray.ObjectRef,
                storage_options: dict | None) -> dict:
    """Re-read one input file and write its surviving documents as JSONL."""
    removed = ray.get(removed_ref)
    counts = {"documents_in": 0, "kept": 0, "removed": 0, "quarantined": 0}
    quarantine: list[str] = []

    def write(f) -> None:
        for rec in read_input(row["path"], ingest, storage_options):
            if not isinstance(rec, Document):
                counts["quarantined"] += 1
                quarantine.append(json.dumps(rec.to_dict()))
                continue
            counts["documents_in"] += 1
            if (rec.doc_id, rec.provenance.location()) in removed:
                counts["removed"] += 1
                continue
            counts["kept"] += 1
            f.write(json.dumps(rec.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")

    uri = f"{output.rstrip('/')}/documents/{int(row['index']):05d}.jsonl"
    atomic_write(uri, write, storage_options)
    return {**counts, "quarantine": "\n".join(quarantine)}


def run_dedup(inputs: list[str], output: str, cfg: DedupConfig, ingest: IngestConfig,
              address: str | None = None, storage_options: dict | None = None) -> dict:
    """The whole command: facts, distributed duplicates, then one writer per file."""
    start_ray(address)
    files = expand_inputs(inputs, storage_options)
    facts = facts_dataset(files, ingest, cfg, storage_options).materialize()
    dups = find_duplicates_distributed(facts, cfg)
    out = output.rstrip("/")
    write_parquet(f"{out}/duplicates.parquet", dups, DUPLICATES_SCHEMA, storage_options)
    removed_ref = ray.put({(d["doc_id"], d["location"]) for d in dups})
    tasks = ray.data.from_items([{"path": f, "index": i} for i, f in enumerate(files)],
                                override_num_blocks=max(1, len(files)))
    per_file = tasks.map(_write_kept, fn_kwargs={
        "output": out, "ingest": ingest, "removed_ref": removed_ref,
        "storage_options": storage_options}).take_all()  # one small row per file
    stats = {k: sum(r[k] for r in per_file)
             for k in ("documents_in", "kept", "removed", "quarantined")}
    stats["removed_by_method"] = dict(Counter(d["method"] for d in dups))
    stats["files"] = len(files)
    stats["config"] = cfg.model_dump()
    lines = [r["quarantine"] for r in per_file if r["quarantine"]]
    if lines:
        write_bytes(f"{out}/quarantine.jsonl", ("\n".join(lines) + "\n").encode(),
                    storage_options)
    write_json(f"{out}/stats.json", stats, storage_options)
    return stats
