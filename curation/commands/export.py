"""`curate export vila OUTPUT DEST --kind mmc4|coyo|coyo-wds --world-size N`: shards ->
VILA layouts."""

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
    parser.add_argument("--world-size", type=int, required=True,
                        help="GPUs VILA will train on: the shard count becomes a multiple of "
                             "it; an export that would leave a rank without data is an error")
    parser.add_argument("--format", dest="code_format", default="vila1",
                        choices=["vila1", "nvila"],
                        help="VILA code line that will read DEST (sets the default --tower)")
    parser.add_argument("--source", action="append", default=None, metavar="NAME",
                        help="export only documents of this source (repeatable); default: "
                             "coyo and laion for coyo/coyo-wds, interleaved ones for mmc4")
    parser.add_argument("--samples-per-shard", type=int, default=1000,
                        help="upper bound per shard before balancing (default 1000)")
    parser.add_argument("--tower", default=None,
                        choices=["clip-336", "siglip-384", "internvit-448", "siglip-448", "none"],
                        help="store images with the short side of this vision tower's input "
                             "(never upscaled; none: keep size); default clip-336 for vila1, "
                             "siglip-448 for nvila")
    parser.add_argument("--short-side", type=int, default=None,
                        help="explicit short side in pixels (0: keep size); overrides --tower")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier export in DEST")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--storage-options", default=None, metavar="JSON",
                        help='fsspec options, e.g. \'{"endpoint_url": "http://..."}\'')


def main(args: argparse.Namespace) -> int:
    from curation.export.vila import export_vila, short_side_for

    try:
        options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as exc:
        raise ValueError(f"--storage-options: not valid JSON: {exc}") from None
    short = (args.short_side or None) if args.short_side is not None else \
        short_side_for(args.tower, args.code_format)
    report = export_vila(args.output, args.dest, args.kind, world_size=args.world_size,
                         samples_per_shard=args.samples_per_shard, short_side=short,
                         sources=tuple(args.source) if args.source else None,
                         format=args.code_format, overwrite=args.overwrite,
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
    skipped = sum(report.skipped.values())
    print(f"skipped {skipped}" + (": " + ", ".join(
        f"{k}={v}" for k, v in sorted(report.skipped.items())) if skipped else ""))
    unit = "samples"
    if report.vila_groups is not None:
        unit = f"pairs ({report.vila_groups} indices of 4)"
    print(f"VILA ({report.format}) with world size {report.world_size} trains on "
          f"{report.vila_samples_used} {unit}")
    return 0
