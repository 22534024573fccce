"""`curate show OUTPUT KEY`: print one written document the way the model sees it."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "show"
HELP = "Print one sample: text with <image> markers, image metadata, dropped images."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="output folder (local path or s3://bucket/prefix)")
    parser.add_argument("key", help="sample key, e.g. 00000-00000-000003")
    parser.add_argument("--json", action="store_true", help="print the stored JSON record")
    parser.add_argument("--storage-options", default=None, metavar="JSON",
                        help="fsspec options as JSON")


def main(args: argparse.Namespace) -> int:
    from curation.inspect.docview import render_terminal
    from curation.inspect.emit import emit
    from curation.inspect.load import load_output
    from curation.inspect.show import find_sample

    options = json.loads(args.storage_options) if args.storage_options else None
    view = load_output(args.output, options)
    if view.branches:
        raise ValueError(f"{args.output} is a branched output (branches: "
                         f"{', '.join(view.branches)}): pass OUTPUT/BRANCH")
    try:
        sample = find_sample(view, args.key)
    except KeyError as exc:
        print(f"curate show: error: {exc.args[0]}", file=sys.stderr)
        return 2
    emit(json.dumps(sample.record, indent=1, ensure_ascii=False) if args.json
         else render_terminal(sample.record or {}, sample.key, sample.shard))
    for problem in sample.problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
