"""`make demo`: the real pipeline on the bundled sample corpus, served over HTTP from
127.0.0.1, on a local Ray. Prints where the shards and the report are."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from curation.demo.corpus import DATA, write_coyo_parquet, write_mmc4_jsonl
from curation.http_server import StaticServer

REPO = Path(__file__).resolve().parents[2]


def run_demo(out_dir: Path, pipeline: Path) -> dict:
    from curation.pipeline_config import load_pipeline
    from curation.runner.pipeline import run_pipeline

    if out_dir.exists():
        shutil.rmtree(out_dir)
    inputs = out_dir / "input"
    inputs.mkdir(parents=True)
    with StaticServer(DATA) as server:
        n_docs = write_mmc4_jsonl(inputs / "mmc4_docs.jsonl", server.base_url)
        n_pairs = write_coyo_parquet(inputs / "coyo_pairs.parquet", server.base_url)
        print(f"demo: serving {DATA / 'images'} at {server.base_url}; corpus: {n_docs} "
              f"MMC4-style documents (+1 malformed line), {n_pairs} COYO-style pairs",
              flush=True)
        totals = run_pipeline(load_pipeline(pipeline), [str(inputs)], str(out_dir / "run"),
                              filter_stderr=True)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curation.demo")
    parser.add_argument("--output", default=str(REPO / "demo_output"))
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "demo.yaml"))
    args = parser.parse_args(argv)
    out_dir = Path(args.output).resolve()
    run_demo(out_dir, Path(args.pipeline))
    run = out_dir / "run"
    from curation.cli import main as curate

    curate(["stats", str(run)])
    report = out_dir / "report.html"
    if curate(["report", str(run), "--html", str(report)]) != 0:
        return 1
    print(f"\nshards:   {run / 'shards'}\nmanifest: {run / 'manifest'}/\n"
          f"report:   {report}\nstats:    curate stats {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
