"""The dedup fit on Ray Data: the decision of ``DedupStage.fit`` without one process
holding the corpus.

1. light node rows (ranking fields, URL/text hashes, LSH band keys) are shuffled by
   URL hash, then by text hash: the URL and exact steps, each deciding whole groups
   (``dedup_keys``); every record leaves with ``cur``, its survivor so far;
2. band rows (key, record, survivor) are shuffled by band key: candidate pairs
   between survivors, a star from the first record for buckets above max_all_pairs;
3. candidates are verified where the facts lie (``RidIndex``: the pairs travel to
   the blocks holding their records, the shingle hashes stay put);
4. connected components of the verified pairs (``components``) and the preferred
   record of each component;
5. every removed record is linked to its final survivor (a URL/exact copy of a
   record removed as a near-duplicate follows it) and compared with it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray  # noqa: TID251 - the runner is where Ray lives

from curation.dedup.finder import METHODS, MINHASH, pair_similarities, rounded
from curation.dedup.params import DedupConfig
from curation.dedup.stage import DedupStage
from curation.runner.fits import dedup_keys as keys
from curation.runner.fits.components import LOCAL_EDGES, component_labels
from curation.runner.fits.shuffle import RidIndex, by_key, count_by, partitions_for
from curation.stage import FACT_ID, FACT_UNIT

_REMOVED = pa.schema([("rid", pa.int64()), ("target", pa.int64()), ("method", pa.int64())])


def _payload_column(cfg: DedupConfig) -> str:
    return "shingles" if cfg.verify_exact else "signature"


def _with_payload(requests: pa.Table, rows: pa.Table, side: str, column: str) -> pa.Table:
    return requests.append_column(f"payload_{side}", rows.column(column))


def _verify(requests: pa.Table, rows: pa.Table, column: str, exact: bool,
            threshold: float) -> pa.Table:
    sims = pair_similarities(requests.column("payload_a").to_pylist(),
                             rows.column(column).to_pylist(), exact)
    keep = sims >= threshold
    return pa.table({"u": requests.column("a").filter(pa.array(keep)),
                     "v": requests.column("b").filter(pa.array(keep))})


def _unique_requests(requests: pa.Table, rows: pa.Table, column: str) -> pa.Table:
    """First lookup of a candidate: drop copies of the same pair (found in several
    bands), attach the first record's payload."""
    a = requests.column("a").to_numpy()
    b = requests.column("b").to_numpy()
    _, first = np.unique(np.stack([a, b], axis=1), axis=0, return_index=True)
    take = pa.array(np.sort(first))
    return _with_payload(requests.take(take), rows.take(take), "a", column)


def _rank_fields(requests: pa.Table, rows: pa.Table) -> pa.Table:
    return pa.table({"rid": requests.column("node"), "label": requests.column("label"),
                     "doc_id": rows.column("doc_id"), "num_images": rows.column("num_images"),
                     "text_len": rows.column("text_len")})


def _component_winners(t: pa.Table) -> pa.Table:
    label = t.column("label").to_numpy()
    members = np.arange(t.num_rows)
    winners = keys.group_winners(t, members, label)
    rid = t.column("rid").to_numpy()
    lost = winners != members
    return pa.table({"rid": rid[lost], "target": rid[winners[lost]],
                     "method": np.full(int(lost.sum()), MINHASH, dtype=np.int64)},
                    schema=_REMOVED)


def _follow(t: pa.Table) -> pa.Table:
    """Key-step losers whose survivor was then removed as a near-duplicate follow it."""
    kind = t.column("kind").to_numpy()
    key = t.column("key").to_numpy()
    target = t.column("target").to_numpy().copy()
    mh = kind == 1
    order = np.argsort(key[mh])
    lost, win = key[mh][order], target[mh][order]
    kl = np.flatnonzero(~mh)
    if len(lost) and len(kl):
        pos = np.minimum(np.searchsorted(lost, key[kl]), len(lost) - 1)
        hit = lost[pos] == key[kl]
        target[kl[hit]] = win[pos[hit]]
    return pa.table({"rid": t.column("rid"), "target": pa.array(target),
                     "method": t.column("method")}, schema=_REMOVED)


def _as_follow_rows(batch: pa.Table, kind: int) -> pa.Table:
    if kind == 0:  # key-step loser: key = its survivor after the key steps
        return pa.table({"key": batch.column("cur"), "rid": batch.column("rid"),
                         "target": batch.column("cur"), "method": batch.column("method"),
                         "kind": pa.array(np.zeros(batch.num_rows, np.int64))})
    return pa.table({"key": batch.column("rid"), "rid": batch.column("rid"),
                     "target": batch.column("target"), "method": batch.column("method"),
                     "kind": pa.array(np.ones(batch.num_rows, np.int64))})


def _removed_side(requests: pa.Table, rows: pa.Table, column: str, own: bool) -> pa.Table:
    out = requests.append_column(FACT_UNIT, rows.column(FACT_UNIT)).append_column(
        "payload_a", rows.column(column))
    if own:  # the removed record's own doc_id and location, for `curate dedup`
        out = out.append_column("doc_id", rows.column("doc_id")).append_column(
            "location", rows.column("location"))
    return out


def _decision_rows(requests: pa.Table, rows: pa.Table, column: str, exact: bool
                   ) -> pa.Table:
    sims = [rounded(x) for x in pair_similarities(
        requests.column("payload_a").to_pylist(), rows.column(column).to_pylist(), exact)]
    methods = [METHODS[m] for m in requests.column("method").to_pylist()]
    out = pa.table({FACT_ID: requests.column("rid"), FACT_UNIT: requests.column(FACT_UNIT),
                    "method": pa.array(methods, pa.string()),
                    "duplicate_of": rows.column("doc_id"),
                    "duplicate_of_location": rows.column("location"),
                    "similarity": pa.array(sims, pa.float64())})
    for name in ("doc_id", "location"):
        if name in requests.column_names:
            out = out.append_column(name, requests.column(name))
    return out


def _key_losers(batch: pa.Table) -> pa.Table:
    method = batch.column("method").to_numpy()
    return batch.filter(pa.array(method >= 0)).select(["rid", "cur", "method"])


def fit_dedup(stage: DedupStage, facts: ray.data.Dataset, local_edges: int = LOCAL_EDGES,
              own_columns: bool = False) -> tuple[dict, ray.data.Dataset | None]:
    """``DedupStage.fit`` on a Ray dataset of facts: (summary, decision rows).
    ``own_columns`` adds each removed record's doc_id and location to its row."""
    cfg: DedupConfig = stage.config
    column = _payload_column(cfg)
    facts = facts.materialize()
    n_docs = facts.count()
    parts = partitions_for(n_docs * (cfg.bands + 2))
    index = RidIndex.build(facts, [FACT_ID, FACT_UNIT, "doc_id", "location", "num_images",
                                   "text_len", column])
    nodes = facts.map_batches(keys.node_rows, batch_format="pyarrow", fn_kwargs={
        "bands": cfg.bands, "rows": cfg.rows, "num_perm": cfg.num_perm,
        "minhash": cfg.minhash})
    if cfg.url:
        routed = by_key(nodes.map_batches(_url_key, batch_format="pyarrow"), "_key",
                        keys.url_step, parts, exact=cfg.exact)
    else:
        routed = nodes.map_batches(keys.first_step, batch_format="pyarrow")
    if cfg.exact:
        decided = by_key(routed.map_batches(_route_key, batch_format="pyarrow"), "_key",
                         keys.exact_step, parts)
    else:
        decided = routed.map_batches(_key_result, batch_format="pyarrow")
    decided = decided.materialize()
    removed = [decided.map_batches(_key_losers, batch_format="pyarrow")
               .map_batches(_as_follow_rows, batch_format="pyarrow", fn_kwargs={"kind": 0})
               .materialize()]
    losers = _minhash_losers(decided, index, cfg, parts, column, local_edges) \
        if cfg.minhash else None
    if losers is not None:
        removed.append(losers.map_batches(_as_follow_rows, batch_format="pyarrow",
                                          fn_kwargs={"kind": 1}).materialize())
    removed = [r for r in removed if r.count()]
    if not removed:
        return {"counts": {}, "documents": n_docs}, None
    both = removed[0].union(*removed[1:]) if len(removed) > 1 else removed[0]
    final = by_key(both, "key", _follow, parts)
    rows = index.attach(final, "rid", _removed_side, column=column, own=own_columns)
    rows = index.attach(rows, "target", _decision_rows, column=column,
                        exact=cfg.verify_exact).materialize()
    return {"counts": count_by(rows, "method"), "documents": n_docs}, rows


def _with_key(batch: pa.Table, values) -> pa.Table:
    if "_key" in batch.column_names:
        batch = batch.drop_columns(["_key"])
    return batch.append_column("_key", pa.array(values))


def _url_key(batch: pa.Table) -> pa.Table:
    url, has = keys._column(batch, "url_hash")
    rid = batch.column("rid").to_numpy(zero_copy_only=False)
    return _with_key(batch, np.where(has, url, rid))


def _route_key(batch: pa.Table) -> pa.Table:
    return _with_key(batch, batch.column("route").to_numpy(zero_copy_only=False))


def _key_result(batch: pa.Table) -> pa.Table:
    return keys.key_result(batch, batch.column("cur").to_numpy(),
                           batch.column("method").to_numpy())


def _minhash_losers(decided, index: RidIndex, cfg: DedupConfig, parts: int, column: str,
                    local_edges: int) -> ray.data.Dataset | None:
    """(rid, target = the preferred record of its component, MINHASH) for every
    near-duplicate removed."""
    rows = decided.map_batches(keys.band_rows, batch_format="pyarrow",
                               fn_kwargs={"bands": cfg.bands})
    pairs = by_key(rows, "key", keys.candidate_pairs, parts,
                   max_all_pairs=cfg.max_all_pairs).materialize()
    if pairs.count() == 0:
        return None
    first = index.attach(pairs, "a", _unique_requests, column=column)
    verified = index.attach(first, "b", _verify, column=column, exact=cfg.verify_exact,
                            threshold=cfg.threshold).materialize()
    if verified.count() == 0:
        return None
    labels = component_labels(verified, local_edges)
    fields = index.attach(labels, "node", _rank_fields)
    return by_key(fields, "label", _component_winners, parts)

