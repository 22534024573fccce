"""Pipeline YAML validation: errors name the file and the key."""

from __future__ import annotations

import pytest

from curation.pipeline_config import PipelineConfigError, load_pipeline, parse_pipeline
from tests.conftest import REPO


def test_shipped_pipelines_validate():
    for path in sorted((REPO / "pipelines").glob("*.yaml")):
        cfg = load_pipeline(path)
        assert cfg.stages, path


@pytest.mark.parametrize("raw, message", [
    ({"stages": [{"nope": {}}]}, "f.yaml: stages[0]: unknown stage 'nope'"),
    ({"stages": [{"download": {"timeout_sec": 3}}]},
     "f.yaml: stages[0].download.timeout_sec: unknown parameter"),
    ({"writer": {"max_samples": 0}}, "f.yaml: writer.max_samples:"),
    ({"stagez": []}, "f.yaml: stagez: unknown key"),
])
def test_config_errors_name_file_and_key(raw, message):
    with pytest.raises(PipelineConfigError) as err:
        parse_pipeline(raw, "f.yaml")
    assert str(err.value).startswith(message)


def test_fingerprint_changes_with_config():
    a = parse_pipeline({"stages": ["download"]}, "a")
    b = parse_pipeline({"stages": [{"download": {"timeout_s": 3}}]}, "a")
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == parse_pipeline({"stages": ["download"]}, "a").fingerprint()
