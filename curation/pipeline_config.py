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
import re
from dataclasses import dataclass, field
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
    docs_per_unit: int = Field(default=512, ge=1, le=1_000_000,
                               description="documents per work unit")
    url_column: str | None = None  # pairs: override the image url column
    caption_column: str | None = None  # pairs: override the caption column
    max_line_bytes: int = Field(default=8 * 1024 * 1024, ge=1024,
                                description="longer JSONL lines are quarantined")
    image_root: str | None = None  # llava: folder of local image paths (default: the file's)


class WriterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_samples: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)


class RunOptions(BaseModel):
    """Pipeline-wide settings (top-level keys of the YAML)."""

    model_config = ConfigDict(extra="forbid")
    keep_text_only: bool = Field(
        default=False, description="keep documents whose images were all removed "
        "(default: a document left without images is dropped as no_images)")
    max_error_rate: float = Field(
        default=0.01, ge=0.0, le=1.0, description="stop the run when one stage fails on "
        "more than this fraction of its documents (data errors; checked from "
        "min_errors_to_stop errors on)")
    min_errors_to_stop: int = Field(default=10, ge=1)
    local_fit_max_facts: int = Field(
        default=5_000_000, ge=0, description="global stages with at most this many facts "
        "(and local_fit_max_bytes) fit in one Ray task; larger ones run their "
        "distributed fit")
    local_fit_max_bytes: int = Field(
        default=256 * 2**20, ge=0, description="facts of a fit in one Ray task: at most "
        "this many bytes in memory (Parquet's uncompressed sizes)")


@dataclass
class StageSpec:
    name: str
    params: dict[str, Any]
    stage: Stage


@dataclass
class BranchConfig:
    """A named branch: its own stages after the shared trunk, its own output folder."""

    name: str
    stages: list[StageSpec]
    writer: WriterConfig


@dataclass
class PipelineConfig:
    name: str
    ingest: IngestConfig
    writer: WriterConfig
    stages: list[StageSpec]  # the trunk when there are branches
    source: str  # file path or "<inline>"
    raw: dict[str, Any]
    options: RunOptions = field(default_factory=RunOptions)
    branches: list[BranchConfig] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Hash of the normalized config; a changed config must not reuse an output."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def branch_fingerprint(self, branch: BranchConfig) -> str:
        """What one branch's output depends on: the trunk and that branch only, so
        adding a branch does not invalidate the others."""
        trunk = {k: v for k, v in self.raw.items() if k != "branches"}
        own = (self.raw.get("branches") or {}).get(branch.name)
        blob = json.dumps([trunk, own], sort_keys=True, default=str).encode()
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


_TOP_KEYS = {"name", "ingest", "stages", "writer", "description", "branches",
             *RunOptions.model_fields}
_BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _parse_stages(items: Any, where: str) -> list[StageSpec]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise PipelineConfigError(f"{where}: must be a list of stages")
    specs: list[StageSpec] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise PipelineConfigError(f"{at}: each stage is `- name: {{params}}`")
        (name, params), = item.items()
        if name not in STAGES:
            known = ", ".join(sorted(STAGES))
            raise PipelineConfigError(f"{at}: unknown stage {name!r} (known: {known})")
        cls = stage_class(name)
        cfg = _validate(cls.Config, params, f"{at}.{name}")
        specs.append(StageSpec(name=name, params=dict(params or {}), stage=cls(cfg)))
    return specs


def _parse_branches(raw: Any, source: str, writer: WriterConfig) -> list[BranchConfig]:
    if raw is None:
        return []
    if not isinstance(raw, dict) or not raw:
        raise PipelineConfigError(f"{source}: branches: must map branch names to "
                                  "{stages: [...]}")
    out = []
    for name, body in raw.items():
        where = f"{source}: branches.{name}"
        if not isinstance(name, str) or not _BRANCH_NAME.match(name) or name.startswith("_"):
            raise PipelineConfigError(f"{where}: a branch name is letters, digits, _ and -")
        if name in {"shards", "stats", "manifest", "drops", "dropped", "quarantine"}:
            raise PipelineConfigError(f"{where}: {name!r} is a reserved output folder")
        body = body or {}
        if not isinstance(body, dict) or set(body) - {"stages", "writer"}:
            raise PipelineConfigError(f"{where}: a branch holds only stages and writer")
        bw = _validate(WriterConfig, {**writer.model_dump(), **(body.get("writer") or {})},
                       f"{where}.writer")
        out.append(BranchConfig(name, _parse_stages(body.get("stages"), f"{where}.stages"),
                                bw))  # type: ignore[arg-type]
    return out


def parse_pipeline(raw: dict[str, Any], source: str = "<inline>") -> PipelineConfig:
    if not isinstance(raw, dict):
        raise PipelineConfigError(f"{source}: top level must be a mapping")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise PipelineConfigError(f"{source}: {sorted(unknown)[0]}: unknown key")
    ingest = _validate(IngestConfig, raw.get("ingest"), f"{source}: ingest")
    writer = _validate(WriterConfig, raw.get("writer"), f"{source}: writer")
    options = _validate(RunOptions, {k: raw[k] for k in RunOptions.model_fields if k in raw},
                        f"{source}")
    return PipelineConfig(
        name=str(raw.get("name") or Path(source).stem),
        ingest=ingest,  # type: ignore[arg-type]
        writer=writer,  # type: ignore[arg-type]
        stages=_parse_stages(raw.get("stages"), f"{source}: stages"),
        source=source,
        raw=raw,
        options=options,  # type: ignore[arg-type]
        branches=_parse_branches(raw.get("branches"), source, writer),  # type: ignore[arg-type]
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
