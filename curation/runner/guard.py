"""Refuse to mix two different runs in one output folder."""

from __future__ import annotations

import time

from curation import __version__
from curation.pipeline_config import PipelineConfig
from curation.storage import exists, filesystem, read_json, write_json
from shards.layout import join


def guard_output(output: str, config: PipelineConfig, files: list[str], overwrite: bool,
                 storage_options: dict | None = None) -> None:
    """Same config + inputs: resume. Different: error unless ``overwrite`` (then the
    old output is removed)."""
    marker = join(output, "_pipeline.json")
    fingerprint = config.fingerprint()
    if exists(marker, storage_options):
        old = read_json(marker, storage_options)
        same = old.get("fingerprint") == fingerprint and old.get("inputs") == files
        if same:
            return
        if not overwrite:
            what = "pipeline config" if old.get("fingerprint") != fingerprint else "inputs"
            raise FileExistsError(
                f"{output} holds a run with different {what} (fingerprint "
                f"{old.get('fingerprint')} vs {fingerprint}); pass --overwrite to "
                "discard it, or choose another --output")
    if overwrite:
        fs, path = filesystem(output, storage_options)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    write_json(marker, {
        "name": config.name,
        "fingerprint": fingerprint,
        "inputs": files,
        "stages": [s.name for s in config.stages],
        "config": config.raw,
        "source": config.source,
        "curation_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, storage_options)
