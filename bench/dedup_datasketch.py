"""The peer of bench/dedup.py: a one-process datasketch dedup script, as a user would
write one: read MMC4 JSONL, normalize, word 5-grams, MinHash.bulk, MinHashLSH,
union-find, write the kept lines and the removed ids.

    python bench/dedup_datasketch.py OUT.json FILE.jsonl [FILE.jsonl ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.dedup.normalize import words  # noqa: E402  the same normalization
from curation.dedup.shingles import shingle_tuples  # noqa: E402


def main() -> None:
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    out, files = Path(sys.argv[1]), sys.argv[2:]
    ids: list[tuple[str, int]] = []

    def shingles():  # streamed: only the signatures stay in memory
        for f in files:
            with open(f, "rb") as fh:
                for i, line in enumerate(fh):
                    rec = json.loads(line)
                    toks = words(" ".join(t for t in rec["text_list"] if t))
                    ids.append((f, i))
                    yield [" ".join(s).encode() for s in shingle_tuples(toks, 5)]

    sigs = MinHash.bulk(shingles(), num_perm=128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    with lsh.insertion_session() as session:
        for i, m in enumerate(sigs):
            session.insert(i, m)
    parent = list(range(len(sigs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(sigs):
        for j in lsh.query(m):
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    removed = [i for i in range(len(sigs)) if find(i) != i]
    removed_set = set(removed)
    with open(out.with_suffix(".kept.jsonl"), "wb") as fh:
        i = 0
        for f in files:
            with open(f, "rb") as src:
                for line in src:
                    if i not in removed_set:
                        fh.write(line)
                    i += 1
    clusters = {}
    for i in range(len(sigs)):
        clusters.setdefault(find(i), []).append(ids[i])
    groups = [g for g in clusters.values() if len(g) > 1]
    out.write_text(json.dumps({"seconds": time.perf_counter() - t0, "documents": len(sigs),
                               "removed": len(removed), "clusters": groups}))


if __name__ == "__main__":
    main()
