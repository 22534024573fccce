"""`curate report OUTPUT --html FILE`: a self-contained HTML report (funnel chart,
histograms, gallery of sampled documents with embedded images)."""

from __future__ import annotations

import argparse
import json

NAME = "report"
HELP = "Write a self-contained HTML report of an output (charts, sampled documents)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="output folder (local path or s3://bucket/prefix)")
    parser.add_argument("--html", required=True, metavar="FILE", help="report file to write")
    parser.add_argument("--samples", type=int, default=12,
                        help="documents in the gallery (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample draw")
    parser.add_argument("--storage-options", default=None, metavar="JSON",
                        help="fsspec options as JSON")


def main(args: argparse.Namespace) -> int:
    from curation.inspect.report_html import write_report

    if args.samples < 0:
        raise ValueError("--samples must be >= 0")
    options = json.loads(args.storage_options) if args.storage_options else None
    path = write_report(args.output, args.html, args.samples, args.seed, options)
    print(f"report: {path}")
    return 0
