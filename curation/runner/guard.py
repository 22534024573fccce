"""Refuse to mix two different runs in one output folder; record what made it."""

from __future__ import annotations

import time
from typing import Any

from curation import __version__
from curation.location import Location
from shards.layout import PIPELINE


def guard_output(output: Location, fingerprint: str, inputs: list[str], overwrite: bool,
                 record: dict[str, Any]) -> bool:
    """Same fingerprint + inputs: resume (True when there was something to resume).
    Different: error unless ``overwrite``, which removes the old output first."""
    if output.exists(PIPELINE):
        old = output.read_json(PIPELINE)
        if old.get("fingerprint") == fingerprint and old.get("inputs") == inputs:
            return True
        if not overwrite:
            what = "pipeline config" if old.get("fingerprint") != fingerprint else "inputs"
            raise FileExistsError(
                f"{output.uri} holds a run with different {what} (fingerprint "
                f"{old.get('fingerprint')} vs {fingerprint}); pass --overwrite to "
                "discard it, or choose another --output")
    if overwrite:
        output.remove_tree()
    output.write_json(PIPELINE, {
        **record, "fingerprint": fingerprint, "inputs": inputs,
        "curation_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return False
