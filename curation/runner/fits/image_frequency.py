"""The image_frequency fit on Ray Data: distinct documents per image identity.

Fact rows (rid, unit, image, key) are shuffled by a hash of the key, so every
identity is counted in one place; rows of identities seen in more than
``max_documents`` documents come back as the (rid, unit, image) slots to drop.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curation.runner.fits.shuffle import by_key, partitions_for
from curation.stage import FACT_ID, FACT_UNIT

_ROWS = pa.schema([(FACT_ID, pa.int64()), (FACT_UNIT, pa.string()), ("image", pa.int32())])


def _key_hash(batch: pa.Table) -> pa.Table:
    hashes = np.fromiter((xxhash.xxh64_intdigest(k.encode("utf-8"))
                          for k in batch.column("key").to_pylist()),
                         dtype=np.uint64, count=batch.num_rows)
    return batch.append_column("_key", pa.array(hashes.view(np.int64)))


def _too_frequent(t: pa.Table, limit: int) -> pa.Table:
    docs = t.group_by("key").aggregate([(FACT_ID, "count_distinct")])
    frequent = docs.filter(pc.greater(docs[f"{FACT_ID}_count_distinct"], limit))["key"]
    hit = t.filter(pc.is_in(t["key"], value_set=frequent))
    rows = hit.group_by([FACT_ID, FACT_UNIT, "image"]).aggregate([])
    out = rows.select([FACT_ID, FACT_UNIT, "image"]).cast(_ROWS)
    # the number of frequent keys rides along once per partition (first row)
    counts = np.zeros(out.num_rows, np.int64)
    if out.num_rows:
        counts[0] = len(frequent)
    elif len(frequent):
        raise AssertionError("frequent keys without rows")
    return out.append_column("frequent_keys", pa.array(counts))


def fit_image_frequency(stage, facts):
    """``ImageFrequencyStage.fit`` on a Ray dataset of facts: (summary, rows)."""
    limit = stage.config.max_documents
    facts = facts.materialize()
    parts = partitions_for(facts.count())
    hashed = facts.map_batches(_key_hash, batch_format="pyarrow")
    found = by_key(hashed, "_key", _too_frequent, parts, limit=limit).materialize()
    if found.count() == 0:
        return {"max_documents": limit, "frequent_keys": 0, "images": 0}, None
    frequent = int(found.sum("frequent_keys"))
    # an image frequent by two identities was found in two partitions: once per slot
    rows = by_key(found.drop_columns(["frequent_keys"]), FACT_ID, _distinct,
                  parts).materialize()
    return {"max_documents": limit, "frequent_keys": frequent,
            "images": rows.count()}, rows


def _distinct(t: pa.Table) -> pa.Table:
    return t.group_by([FACT_ID, FACT_UNIT, "image"]).aggregate([]).select(
        [FACT_ID, FACT_UNIT, "image"]).cast(_ROWS)
