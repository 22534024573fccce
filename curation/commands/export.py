"""`curate export vila OUTPUT DEST --kind mmc4|coyo|coyo-wds`: shards -> VILA layouts."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

NAME = "export"
HELP = "Write an output's shards in a trainer's on-disk layout (VILA: mmc4, coyo, coyo-wds)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=["vila"], help="target trainer")
    parser.add_argument("output", help="curated output folder (local path or s3://...)")
    parser.add_argument("dest", help="folder to write (must be empty or a previous export)")
    parser.add_argument("--kind", required=True, choices=["mmc4", "coyo", "coyo-wds"],
                        help="VILA dataset_type whose loader will read DEST")
    parser.add_argument("--world-size", type=int, default=None,
                        help="GPUs VILA will train on: shard count becomes a multiple of it")
    parser.add_argument("--samples-per-shard", type=int, default=1000,
                        help="upper bound per shard before balancing (default 1000)")
    parser.add_argument("--short-side", type=int, default=336,
                        help="downscale images to this short side (0: keep size; default 336)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier export in DEST")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--storage-options", default=None, metavar="JSON",
                        help='fsspec options, e.g. \'{"endpoint_url": "http://..."}\'')


def main(args: argparse.Namespace) -> int:
    from curation.export.vila import export_vila

    try:
        options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as exc:
        raise ValueError(f"--storage-options: not valid JSON: {exc}") from None
    report = export_vila(args.output, args.dest, args.kind, world_size=args.world_size,
                         samples_per_shard=args.samples_per_shard,
                         short_side=args.short_side or None, overwrite=args.overwrite,
                         storage_options=options)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump(asdict(report), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    sizes = [s["nsamples"] for s in report.shards]
    print(f"exported {report.samples} samples as VILA {report.kind} into {report.dest}: "
          f"{len(sizes)} shards of {min(sizes, default=0)}-{max(sizes, default=0)} samples")
    if report.skipped:
        print("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(report.skipped.items())))
    if report.vila_samples_used is not None:
        print(f"VILA with world size {args.world_size} trains on "
              f"{report.vila_samples_used} of them")
    return 0
