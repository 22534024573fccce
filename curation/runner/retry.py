"""`curate run ... --retry-failed`: re-fetch only the images whose failure was
retryable (timeouts, 5xx, 429, resets), and rewrite only the units they belong to.

For each affected unit the documents are rebuilt from what the finished run wrote:
kept documents come from the unit's shards (kept images keep their bytes, retryable
failures go back to ``pending``); documents dropped because none of their images
downloaded come back from the drop table with only their retryable failures pending;
other drops stay dropped with their reason. The unit then goes through the final segment again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from curation.batch_codec import decode_docs, encode_docs
from curation.document import IMAGE_PENDING, Document, ImageRecord
from curation.storage import list_files, read_json, read_parquet_rows, remove, write_bytes
from shards.layout import join
from shards.reader import read_shard

Retryable = Callable[[str], bool]


def affected_units(output: str, units: list[str], retryable: Retryable,
                   storage_options: dict | None) -> list[str]:
    out = []
    for unit in units:
        uri = join(output, "stats", f"{unit}.json")
        stats = read_json(uri, storage_options)
        if any(retryable(status) for status in stats.get("image_status", {})):
            out.append(unit)
    return out


def _shard_docs(output: str, unit: str, storage_options: dict | None) -> dict[str, Document]:
    docs: dict[str, Document] = {}
    for shard in list_files(join(output, "shards"), ".tar", storage_options):
        if not shard.rsplit("/", 1)[-1].startswith(f"{unit}-"):
            continue
        for sample in read_shard(shard, storage_options):
            doc = Document.from_dict(json.loads(sample["json"]))
            for im in doc.images:
                if im.member:
                    im.data = sample[im.member]
            docs[_identity(doc)] = doc
    return docs


def _identity(doc: Document) -> str:
    return f"{doc.doc_id}@{doc.provenance.location()}"


def _reset(im: ImageRecord, retryable: Retryable) -> None:
    if retryable(im.status):
        im.status, im.dropped_by, im.member = IMAGE_PENDING, None, None


def rebuild_unit(output: str, unit: str, source: str, download_stage: str,
                 retryable: Retryable, storage_options: dict | None) -> list[Document]:
    """The unit's documents ready for a second pass of the final segment."""
    with_bytes = _shard_docs(output, unit, storage_options)
    drops = {f"{d['doc_id']}@{d['location']}": d for d in read_parquet_rows(
        join(output, "drops", f"{unit}.parquet"), storage_options)}
    import fsspec

    with fsspec.open(join(source, f"{unit}.cdb"), "rb", **(storage_options or {})) as f:
        staged = decode_docs(f.read())
    rebuilt: list[Document] = []
    for doc in staged:
        key = _identity(doc)
        if key in with_bytes:
            doc = with_bytes[key]
            for im in doc.images:
                _reset(im, retryable)
        elif key in drops:
            drop = drops[key]
            if (drop["stage"], drop["reason"]) == (download_stage, "no_images"):
                doc = Document.from_dict(json.loads(drop["record"]))
                doc.drop_reason = doc.dropped_by = None
                for im in doc.images:
                    _reset(im, retryable)
            else:
                doc.drop(drop["reason"], drop["stage"])
        rebuilt.append(doc)
    return rebuilt


def prepare_retry(output: str, units: list[str], source: str, download_stage: str,
                  retryable: Retryable, storage_options: dict | None) -> list[str]:
    """Stage rebuilt units under _work/retry and clear their completion markers;
    returns the units to run again."""
    todo = affected_units(output, units, retryable, storage_options)
    for unit in todo:
        docs = rebuild_unit(output, unit, source, download_stage, retryable,
                            storage_options)
        write_bytes(join(output, "_work", "retry", f"{unit}.cdb"), encode_docs(docs),
                    storage_options)
        remove([join(output, "stats", f"{unit}.json")], storage_options)
    return todo
