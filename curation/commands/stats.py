"""`curate stats OUTPUT`: the funnel, count checks and distributions of an output,
read from its manifest and stats files (never the tars). Imports stay light here:
the CLI imports every command module at startup."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "stats"
HELP = "Show what an output kept and dropped (funnel, checks, distributions)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="output folder (local path or s3://bucket/prefix)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--compare", metavar="OTHER",
                        help="a second output to show side by side")
    parser.add_argument("--storage-options", default=None, metavar="JSON",
                        help='fsspec options, e.g. \'{"endpoint_url": "http://..."}\'')


def _options(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"--storage-options: not valid JSON: {exc}") from None


def main(args: argparse.Namespace) -> int:
    """Exit status 1 when a count does not add up."""
    from curation.inspect.emit import emit
    from curation.inspect.summary import summarize_output
    from curation.inspect.table import render_branches, render_compare, render_summary

    options = _options(args.storage_options)
    a = summarize_output(args.output, options)
    b = summarize_output(args.compare, options) if args.compare else None
    if b is not None and ("branches" in a or "branches" in b):
        raise ValueError("--compare needs two single outputs: pass OUTPUT/BRANCH")
    if args.json:
        text = json.dumps({"a": a, "b": b} if b is not None else a, indent=1)
    elif b is not None:
        text = render_compare(a, b)
    elif "branches" in a:
        text = render_branches(a)
    else:
        text = render_summary(a)
    emit(text)
    ok = a["ok"] and (b is None or b["ok"])
    if not ok:
        print("curate stats: counts do not add up (see ERROR lines)", file=sys.stderr)
    return 0 if ok else 1
