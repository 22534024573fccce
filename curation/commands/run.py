"""`curate run PIPELINE.yaml --input URI [--input URI ...] --output URI`."""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "run"
HELP = "run a pipeline (YAML) over MMC4/COYO inputs into WebDataset shards, on Ray"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pipeline", help="pipeline YAML file (see pipelines/)")
    p.add_argument("--input", "-i", action="append", required=True,
                   help="input file, directory, glob or s3:// URI (repeatable)")
    p.add_argument("--output", "-o", required=True, help="output folder or s3:// URI")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an existing output made with another config or inputs")
    p.add_argument("--storage-options", default=None,
                   help='JSON fsspec options, e.g. \'{"endpoint_url": "http://..."}\'')
    p.add_argument("--retry-failed", action="store_true",
                   help="on a finished output: re-fetch only images whose failure was "
                   "retryable (timeouts, 5xx, 429) and rewrite only their units")
    p.add_argument("--keep-work", action="store_true",
                   help="keep OUTPUT/_work (staged units, facts, decisions) after success")
    p.add_argument("--dry-run", action="store_true",
                   help="check the pipeline and inputs, print the plan; write nothing")
    p.add_argument("--json", action="store_true", help="print run totals as JSON")


def main(args: argparse.Namespace) -> int:
    if args.address:  # before Ray is imported: see curation/runner/session.py
        os.environ["RAY_ADDRESS"] = args.address
    from curation.pipeline_config import load_pipeline

    config = load_pipeline(args.pipeline)
    so = json.loads(args.storage_options) if args.storage_options else None
    if args.dry_run:
        from curation.dry_run import dry_run

        report = dry_run(config, args.input, args.output, so)
        print("\n".join(report.lines))
        for error in report.errors:
            print(f"curate run: error: {error}", file=sys.stderr)
        return 2 if report.errors else 0
    from curation.runner.pipeline import run_pipeline

    totals = run_pipeline(config, args.input, args.output, address=args.address,
                          overwrite=args.overwrite, storage_options=so,
                          retry_failed=args.retry_failed, keep_work=args.keep_work,
                          filter_stderr=True)
    if args.json:
        print(json.dumps(totals, indent=1, sort_keys=True))
    elif config.branches:
        for branch in config.branches:
            print(f"shards: {args.output.rstrip('/')}/{branch.name}/shards/")
    else:
        print(f"shards: {args.output.rstrip('/')}/shards/  "
              f"({totals['documents_written']} documents, {totals['shards']} shards)")
    return 0
