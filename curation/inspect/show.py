"""Find one sample by key (manifest, else the key's unit stats) and read it."""

from __future__ import annotations

import pyarrow.compute as pc

from curation.inspect.load import OutputView
from curation.inspect.samples import Sample, read_shard_samples


def shard_of(view: OutputView, key: str) -> str | None:
    """The shard holding ``key`` per the manifest."""
    m = view.manifest
    if m.num_rows:
        hit = m.filter(pc.equal(m.column("key"), key))
        if hit.num_rows:
            return str(hit.column("shard")[0].as_py())
    return None


def candidate_shards(view: OutputView, key: str) -> list[str]:
    """Shards to look in: the manifest's answer, else every shard of the key's unit
    (keys are UNIT-INDEX and shards UNIT-PP.tar)."""
    shard = shard_of(view, key)
    if shard:
        return [shard]
    unit = key.rsplit("-", 1)[0]
    return [s["name"] for st in view.units if st.get("unit") == unit
            for s in st.get("shards") or []]


def find_sample(view: OutputView, key: str) -> Sample:
    for shard in candidate_shards(view, key):
        found = read_shard_samples(view.root, shard, {key}, view.storage_options)
        if key in found and found[key].record is not None:
            return found[key]
    raise KeyError(f"{view.root}: no sample with key {key!r} (not in the manifest "
                   f"or in its unit's shards)")
