"""One JSON-safe summary of an output: funnel, checks and distributions."""

from __future__ import annotations

from typing import Any

from curation.inspect.distributions import by_source, distributions
from curation.inspect.funnel import build_funnel
from curation.inspect.load import OutputView, load_output


def summarize(view: OutputView) -> dict[str, Any]:
    funnel = build_funnel(view)
    pipe = view.pipeline or {}
    overall = distributions(view.manifest)
    return {
        "output": view.root,
        "pipeline": {"name": pipe.get("name"), "fingerprint": pipe.get("fingerprint"),
                     "stages": pipe.get("stages")},
        "read_from": view.sources,
        "ok": not funnel.errors,
        **funnel.to_dict(),
        "distributions": {"all": overall, "by_source": by_source(view.manifest, overall)},
    }


def summarize_output(output: str, storage_options: dict | None = None) -> dict[str, Any]:
    return summarize(load_output(output, storage_options))
