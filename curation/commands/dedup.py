"""`curate dedup --input URI --output URI [--threshold T --num-perm N ...]`.

Writes OUTPUT/documents/NNNNN.jsonl or .parquet (the kept records of input file NNNNN,
unchanged, in its format), OUTPUT/duplicates/NNNNN.parquet (one row per removed record
of that file), OUTPUT/quarantine/NNNNN.jsonl (its bad records) and OUTPUT/stats.json
(written last: the run's completion marker).
"""

from __future__ import annotations

import argparse
import json
import os

NAME = "dedup"
HELP = "remove URL, exact-text and MinHash near-duplicate documents, on Ray"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", "-i", action="append", required=True,
                   help="MMC4 JSONL / COYO-LAION Parquet file, dir, glob or s3:// (repeatable)")
    p.add_argument("--output", "-o", required=True, help="output folder or s3:// URI")
    p.add_argument("--format", default="auto", choices=["auto", "mmc4", "coyo", "laion"])
    p.add_argument("--threshold", type=float, default=None, help="Jaccard cut (0.8)")
    p.add_argument("--num-perm", type=int, default=None, help="MinHash permutations (128)")
    p.add_argument("--bands", type=int, default=None, help="LSH bands (16)")
    p.add_argument("--rows", type=int, default=None, help="rows per band (8)")
    p.add_argument("--ngram", type=int, default=None, help="words per shingle (5)")
    p.add_argument("--seed", type=int, default=None, help="permutation seed (1)")
    p.add_argument("--estimate-only", action="store_true",
                   help="cut candidates on the MinHash estimate instead of the exact "
                        "Jaccard of their shingle sets (less memory, less precise)")
    for method in ("url", "exact", "minhash"):
        p.add_argument(f"--no-{method}", action="store_true", help=f"skip {method} dedup")
    p.add_argument("--address", default=None, help="Ray address (default: local Ray)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--storage-options", default=None, help="JSON fsspec options")
    p.add_argument("--json", action="store_true", help="print the stats as JSON")


def _config(args: argparse.Namespace):
    from curation.dedup.params import DedupConfig

    given = {k: getattr(args, k) for k in ("threshold", "num_perm", "bands", "rows",
                                           "ngram", "seed") if getattr(args, k) is not None}
    flags = {m: not getattr(args, f"no_{m}") for m in ("url", "exact", "minhash")}
    return DedupConfig(**given, **flags, verify_exact=not args.estimate_only)


def main(args: argparse.Namespace) -> int:
    if args.address:  # before Ray is imported: see curation/runner/__init__.py
        os.environ["RAY_ADDRESS"] = args.address
    from curation.location import Location
    from curation.pipeline_config import IngestConfig
    from curation.runner.dedup_job import OUTPUT_DIRS, run_dedup

    cfg = _config(args)
    so = json.loads(args.storage_options) if args.storage_options else None
    out = Location.of(args.output, so)
    if any(out.exists(n) for n in ("stats.json", *OUTPUT_DIRS)) and not args.overwrite:
        raise FileExistsError(f"{args.output} already holds a dedup output (--overwrite)")
    stats = run_dedup(args.input, args.output, cfg, IngestConfig(format=args.format),
                      address=args.address, storage_options=so)
    if args.json:
        print(json.dumps(stats, indent=1, sort_keys=True))
        return 0
    by = ", ".join(f"{m} {n}" for m, n in sorted(stats["removed_by_method"].items()))
    print(f"documents: {stats['documents_in']} in, {stats['kept']} kept, "
          f"{stats['removed']} removed ({by or 'none'}), {stats['quarantined']} quarantined")
    print(f"kept: {out.join('documents')}/  duplicates: {out.join('duplicates')}/")
    return 0
