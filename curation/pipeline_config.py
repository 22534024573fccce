"""Declarative pipeline definitions (YAML), validated with clear errors.

    name: demo
    ingest: {format: auto, docs_per_unit: 256}
    stages:
      - download: {timeout_s: 10}
      - image_size: {min_width: 150}
    writer: {max_samples: 1000, max_bytes: 500000000}

Errors name the file and the key path (``pipelines/x.yaml: stages[1].image_size.min_w:
unknown parameter``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curation.registry import STAGES, stage_class
from curation.stage import Stage


class PipelineConfigError(ValueError):
    """A pipeline file is invalid; the message names the file and the key."""


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["auto", "mmc4", "coyo", "laion", "llava"] = "auto"
    docs_per_unit: int = Field(default=512, ge=1, description="documents per work unit")
    url_column: str | None = None  # pairs: override the image url column
    caption_column: str | None = None  # pairs: override the caption column
    max_line_bytes: int = Field(default=8 * 1024 * 1024, ge=1024,
                                description="longer JSONL lines are quarantined")
    image_root: str | None = None  # llava: folder of local image paths (default: the file's)


class WriterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_samples: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)


@dataclass
class StageSpec:
    name: str
    params: dict[str, Any]
    stage: Stage


@dataclass
class PipelineConfig:
    name: str
    ingest: IngestConfig
    writer: WriterConfig
    stages: list[StageSpec]
    source: str  # file path or "<inline>"
    raw: dict[str, Any]

    def fingerprint(self) -> str:
        """Hash of the normalized config; a changed config must not reuse an output."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _fmt_loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _fmt_loc(err["loc"])
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        raise PipelineConfigError(f"{where}.{key}: {msg}") from None


def parse_pipeline(raw: dict[str, Any], source: str = "<inline>") -> PipelineConfig:
    if not isinstance(raw, dict):
        raise PipelineConfigError(f"{source}: top level must be a mapping")
    unknown = set(raw) - {"name", "ingest", "stages", "writer", "description"}
    if unknown:
        raise PipelineConfigError(f"{source}: {sorted(unknown)[0]}: unknown key")
    ingest = _validate(IngestConfig, raw.get("ingest"), f"{source}: ingest")
    writer = _validate(WriterConfig, raw.get("writer"), f"{source}: writer")
    specs: list[StageSpec] = []
    for i, item in enumerate(raw.get("stages") or []):
        where = f"{source}: stages[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise PipelineConfigError(f"{where}: each stage is `- name: {{params}}`")
        (name, params), = item.items()
        if name not in STAGES:
            known = ", ".join(sorted(STAGES))
            raise PipelineConfigError(f"{where}: unknown stage {name!r} (known: {known})")
        cls = stage_class(name)
        cfg = _validate(cls.Config, params, f"{where}.{name}")
        specs.append(StageSpec(name=name, params=dict(params or {}), stage=cls(cfg)))
    return PipelineConfig(
        name=str(raw.get("name") or Path(source).stem),
        ingest=ingest,  # type: ignore[arg-type]
        writer=writer,  # type: ignore[arg-type]
        stages=specs,
        source=source,
        raw=raw,
    )


def load_pipeline(path: str | Path) -> PipelineConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineConfigError(f"{path}: no such pipeline file") from None
    except yaml.YAMLError as exc:
        raise PipelineConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_pipeline(raw, str(path))
