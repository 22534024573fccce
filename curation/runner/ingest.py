"""Read one input file into work units (inside a Ray task; no driver state).

A unit is ``docs_per_unit`` consecutive documents of one file, named
``FFFFF-CCCCC`` (file index, chunk). Bad records go to the output's
``quarantine/FFFFF.jsonl`` with file, line and reason. The file's marker
(``_work/ingest/FFFFF.done.json``: its units, document count and quarantine counts)
is written after its last unit has been handed on.
"""

from __future__ import annotations

import errno
import json
import zipfile
from collections import Counter
from collections.abc import Iterator

from curation.batch_codec import encode_docs
from curation.document import Document
from curation.ingest.quarantine import QuarantineRecord
from curation.ingest.reader import read_input
from curation.location import Location
from curation.pipeline_config import IngestConfig
from shards.layout import QUARANTINE, unit_id_for


def file_marker(index: int) -> str:
    return f"{index:05d}.done.json"


def ingest_file(index: int, path: str, cfg: IngestConfig, ingest_dir: Location,
                output: Location, stage_units: bool, skip: frozenset[str] = frozenset()
                ) -> Iterator[tuple[str, list[Document], bool]]:
    """Yield ``(unit, documents, last)`` for the units of one input file not in
    ``skip`` (``last``: no unit of the file follows; a full unit waits for the next
    document to know); with ``stage_units`` every unit is also staged for later
    passes."""
    units: list[str] = []
    bad: list[dict] = []
    batch: list[Document] = []
    n_docs = 0

    def flush(last: bool) -> Iterator[tuple[str, list[Document], bool]]:
        unit = unit_id_for(index, len(units))
        units.append(unit)
        docs = list(batch)
        batch.clear()
        if stage_units:
            ingest_dir.write_bytes(f"{unit}.cdb", encode_docs(docs), durable=False)
        if unit not in skip:
            yield unit, docs, last

    try:
        for item in read_input(path, cfg, output.options):
            if isinstance(item, QuarantineRecord):
                bad.append(item.to_dict())
                continue
            if len(batch) >= cfg.docs_per_unit:
                yield from flush(False)
            batch.append(item)
            n_docs += 1
    except OSError as exc:
        if "://" in path or not _is_unreadable(exc):
            raise  # storage trouble is not bad data: let Ray retry, then fail loudly
        bad.append(QuarantineRecord(path, "unreadable_file", f"{type(exc).__name__}: "
                                    f"{exc}", line=None).to_dict())
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:  # a broken file
        bad.append(QuarantineRecord(path, "unreadable_file", f"{type(exc).__name__}: "
                                    f"{exc}", line=None).to_dict())
    if batch:
        yield from flush(True)
    lines = "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bad)
    output.child(QUARANTINE).write_bytes(f"{index:05d}.jsonl", lines.encode("utf-8"))
    ingest_dir.write_json(file_marker(index), {
        "index": index, "path": path, "units": units, "documents": n_docs,
        "quarantined": dict(Counter(b["reason"] for b in bad))})


def _is_unreadable(exc: OSError) -> bool:
    """A local file that is corrupt (bad gzip, truncated) rather than unreachable."""
    return exc.errno not in (errno.EIO, errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM)
