"""Per-partition steps of the distributed dedup fit (plain pyarrow/numpy, no Ray).

Each function gets one hash partition of rows in which every group it must decide is
whole, and decides the same way ``curation.dedup.finder.resolve`` does: the kept
record of a group is the best by (most images, longest text, smallest doc_id,
smallest rid).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.dedup.finder import EXACT, URL
from curation.dedup.lsh import band_keys, pairs_from_keys, unique_pairs

ALIVE = -1


def _column(t: pa.Table, name: str, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An int64 column as (values, present mask); nulls become ``fill``."""
    col = t.column(name)
    present = ~pc.is_null(col).to_numpy(zero_copy_only=False)
    return pc.fill_null(col, fill).to_numpy(zero_copy_only=False).astype(np.int64), present


def group_winners(t: pa.Table, members: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row index of the preferred record of each member's key group (per member)."""
    if len(members) == 0:
        return members
    ni = t.column("num_images").to_numpy(zero_copy_only=False)[members]
    tl = t.column("text_len").to_numpy(zero_copy_only=False)[members]
    doc = np.asarray(t.column("doc_id").to_pylist(), dtype=str)[members]
    rid = t.column("rid").to_numpy(zero_copy_only=False)[members]
    order = np.lexsort((rid, doc, -tl, -ni, keys))
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    first = np.repeat(order[starts], np.diff(np.r_[starts, len(k)]))
    winners = np.empty(len(members), dtype=np.int64)
    winners[order] = members[first]
    return winners


def node_rows(batch: pa.Table, bands: int, rows: int, num_perm: int, minhash: bool
              ) -> pa.Table:
    """The light per-record rows the key steps shuffle: ranking fields, hashes, and
    the LSH band keys (so no join with the signatures is needed later)."""
    out = {n: batch.column(n) for n in ("rid", "doc_id", "num_images", "text_len",
                                        "url_hash", "text_hash")}
    sig = batch.column("signature")
    has = ~pc.is_null(sig).to_numpy(zero_copy_only=False)
    if minhash:
        has &= pc.binary_length(sig).fill_null(0).to_numpy(zero_copy_only=False) > 0
    keys = np.zeros((batch.num_rows, bands), dtype=np.uint64)
    if minhash and has.any():
        raw = b"".join(sig.filter(pa.array(has)).to_pylist())
        sigs = np.frombuffer(raw, dtype=np.uint32).reshape(-1, num_perm)
        keys[has] = band_keys(sigs, bands, rows)
    blobs = [k.tobytes() if h else None for k, h in zip(keys, has & minhash)]
    out["bands"] = pa.array(blobs, pa.binary())
    return pa.table(out)


def url_step(t: pa.Table, exact: bool) -> pa.Table:
    """URL duplicates of one partition; losers route their next step to their
    winner's text key (so a winner later removed as an exact copy is followed)."""
    rid = t.column("rid").to_numpy(zero_copy_only=False)
    url, has_url = _column(t, "url_hash")
    text, has_text = _column(t, "text_hash")
    cur = rid.copy()
    method = np.full(len(rid), ALIVE, dtype=np.int64)
    members = np.flatnonzero(has_url)
    winners = group_winners(t, members, url[members])
    lost = winners != members
    cur[members[lost]] = rid[winners[lost]]
    method[members[lost]] = URL
    route = np.where(has_text, text, rid)
    route_known = has_text.copy()
    lost_rows, won_rows = members[lost], winners[lost]
    route[lost_rows] = np.where(has_text[won_rows], text[won_rows], rid[lost_rows])
    route_known[lost_rows] = has_text[won_rows]
    return t.append_column("cur", pa.array(cur)).append_column(
        "method", pa.array(method)).append_column(
        "route", pa.array(route)).append_column(
        "routed", pa.array(route_known & exact))


def first_step(t: pa.Table) -> pa.Table:
    """Without URL dedup: every record alive, routed by its text key."""
    rid = t.column("rid").to_numpy(zero_copy_only=False)
    text, has_text = _column(t, "text_hash")
    return t.append_column("cur", pa.array(rid)).append_column(
        "method", pa.array(np.full(len(rid), ALIVE, dtype=np.int64))).append_column(
        "route", pa.array(np.where(has_text, text, rid))).append_column(
        "routed", pa.array(has_text))


def exact_step(t: pa.Table) -> pa.Table:
    """Exact-text duplicates among the survivors of the URL step, in one partition;
    URL losers routed here follow their winner if it loses now."""
    rid = t.column("rid").to_numpy(zero_copy_only=False)
    text, has_text = _column(t, "text_hash")
    cur = t.column("cur").to_numpy(zero_copy_only=False).copy()
    method = t.column("method").to_numpy(zero_copy_only=False).copy()
    members = np.flatnonzero(has_text & (method == ALIVE))
    winners = group_winners(t, members, text[members])
    lost = winners != members
    cur[members[lost]] = rid[winners[lost]]
    method[members[lost]] = EXACT
    passengers = np.flatnonzero(method == URL)
    if len(passengers) and len(members):
        order = np.argsort(rid[members])
        sorted_rids = rid[members][order]
        pos = np.minimum(np.searchsorted(sorted_rids, cur[passengers]), len(order) - 1)
        found = sorted_rids[pos] == cur[passengers]
        row = members[order[pos]]
        cur[passengers[found]] = cur[row[found]]
    return key_result(t, cur, method)


def key_result(t: pa.Table, cur: np.ndarray, method: np.ndarray) -> pa.Table:
    return pa.table({"rid": t.column("rid"), "cur": pa.array(cur),
                     "method": pa.array(method), "bands": t.column("bands")})


def band_rows(batch: pa.Table, bands: int) -> pa.Table:
    """One row per (record with a signature, band): key, node, owner (its survivor)."""
    has = ~pc.is_null(batch.column("bands")).to_numpy(zero_copy_only=False)
    sel = batch.filter(pa.array(has))
    if sel.num_rows == 0:
        z = np.zeros(0, np.int64)
        return pa.table({"key": z, "node": z, "owner": z})
    keys = np.frombuffer(b"".join(sel.column("bands").to_pylist()), dtype=np.int64)
    rid = sel.column("rid").to_numpy(zero_copy_only=False)
    cur = sel.column("cur").to_numpy(zero_copy_only=False)
    return pa.table({"key": keys, "node": np.repeat(rid, bands),
                     "owner": np.repeat(cur, bands)})


def candidate_pairs(t: pa.Table, max_all_pairs: int) -> pa.Table:
    """Candidate pairs of one slice of the LSH index, between the survivors of the
    key steps (a pair found through a removed copy is checked on its replacement)."""
    key = t.column("key").to_numpy(zero_copy_only=False)
    node = t.column("node").to_numpy(zero_copy_only=False)
    owner = t.column("owner").to_numpy(zero_copy_only=False)
    u, v = pairs_from_keys(key, node, max_all_pairs)
    if len(u) == 0:
        z = np.zeros(0, np.int64)
        return pa.table({"a": z, "b": z})
    nodes, first = np.unique(node, return_index=True)
    own = owner[first]
    a, b = own[np.searchsorted(nodes, u)], own[np.searchsorted(nodes, v)]
    a, b = unique_pairs(a, b)
    keep = a != b
    return pa.table({"a": a[keep], "b": b[keep]})

