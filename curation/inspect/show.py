"""Find one sample by key through the manifest and read only its bytes.

Keys increase across the manifest parts in shard order, so the part holding a key is
found by binary search on each part's key range (Parquet column statistics: a footer
read, no rows), then that part's row gives the shard and the byte range."""

from __future__ import annotations

import pyarrow.compute as pc

from curation.inspect.arrow_io import iter_batches, parquet_file
from curation.inspect.load import OutputView
from curation.inspect.samples import Located, Sample, read_located, read_shard_samples
from shards.layout import unit_of_key

ROW_COLUMNS = ["key", "shard", "offset", "length"]


def _key_range(view: OutputView, part: str) -> tuple[str, str] | None:
    """(min, max) key of a manifest part, from its footer when it has statistics."""
    pf = parquet_file(view.loc, part)
    meta = pf.metadata
    if meta.num_rows == 0:
        return None
    col = pf.schema_arrow.get_field_index("key")
    lo = hi = None
    for i in range(meta.num_row_groups):
        st = meta.row_group(i).column(col).statistics
        if st is None or not st.has_min_max:
            mm = pc.min_max(pf.read(columns=["key"]).column("key"))
            return mm["min"].as_py(), mm["max"].as_py()
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    return lo, hi


def _find_part(view: OutputView, key: str) -> str | None:
    """Binary search over the parts (v2: one per shard, keys increasing)."""
    parts = view.manifest_names
    lo, hi = 0, len(parts) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        rng = _key_range(view, parts[mid])
        if rng is None:  # an empty part: look at both sides
            return next((p for p in parts[lo:hi + 1] if _part_has(view, p, key)), None)
        if key < rng[0]:
            hi = mid - 1
        elif key > rng[1]:
            lo = mid + 1
        else:
            return parts[mid]
    return None


def _part_has(view: OutputView, part: str, key: str) -> bool:
    rng = _key_range(view, part)
    return rng is not None and rng[0] <= key <= rng[1]


def _row(view: OutputView, parts: list[str], key: str) -> Located | None:
    for _, batch in iter_batches(view.loc, parts, ROW_COLUMNS):
        if batch is None:
            continue
        keys = batch.column("key").to_pylist()
        if key in keys:
            r = batch.slice(keys.index(key), 1).to_pylist()[0]
            return Located(key, str(r["shard"]), r.get("offset"), r.get("length"))
    return None


def locate(view: OutputView, key: str) -> list[Located]:
    """Where to look for ``key``: its manifest row, else (older outputs without a
    manifest) every shard its unit's stats list."""
    if view.layout == "v2" and view.manifest_names:
        part = _find_part(view, key)
        hit = _row(view, [part], key) if part else None
        return [hit] if hit else []
    if view.manifest_names:
        hit = _row(view, view.manifest_names, key)
        return [hit] if hit else []
    from curation.inspect.scan import scan_units

    unit = unit_of_key(key)
    return [Located(key, name) for name, s in scan_units(view).shard_lists.items()
            if s["unit"] == unit]


def find_sample(view: OutputView, key: str) -> Sample:
    """The sample ``key``; KeyError when no manifest row (or unit shard) holds it."""
    for at in locate(view, key):
        if at.offset is not None:
            return read_located(view.loc, at)
        found = read_shard_samples(view.loc, at.shard, {key})
        if key in found and found[key].record is not None:
            return found[key]
    raise KeyError(f"{view.root}: no sample with key {key!r} (not in the manifest)")
