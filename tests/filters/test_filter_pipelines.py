"""The shipped recipes parse, name their sources' numbers, and cut the real MMC4
example the way the papers say."""

from __future__ import annotations

import json

import pytest

from curation.document import Document, ImageRecord, Provenance
from curation.pipeline_config import load_pipeline
from curation.scoring.assign import assign_document
from curation.stage import GlobalStage
from tests.conftest import DATA, REPO


def params(cfg, name: str) -> list[dict]:
    return [s.stage.config.model_dump() for s in cfg.stages if s.name == name]


@pytest.mark.parametrize("name", ["mmc4", "mmc4_core", "coyo"])
def test_recipes_parse_with_source_numbers(name):
    cfg = load_pipeline(REPO / "pipelines" / f"{name}.yaml")
    names = [s.name for s in cfg.stages]
    assert names[names.index("download") + 1:].count("clip_score") == 1
    score = params(cfg, "clip_score")[0]
    assert (score["model"], score["pretrained"]) == ("ViT-L-14-quickgelu", "openai")
    if name == "coyo":
        assert params(cfg, "clip_topk")[0]["count"] == 25_000_000
        assert names.index("clip_topk") > names.index("clip_score")
        return
    assert params(cfg, "url_words")[0]["words"] == ["logo", "button", "icon", "plugin",
                                                    "widget"]
    assert names.index("url_words") < names.index("download")
    assert params(cfg, "image_similarity")[0]["min_similarity"] == 0.15
    assert params(cfg, "image_size")[0]["min_width"] == 150
    if name == "mmc4_core":
        last = params(cfg, "doc_counts")[-1]
        assert (last["min_images"], last["max_images"], last["min_sentences"],
                last["max_sentences"]) == (2, 15, 4, 40)
        assert params(cfg, "doc_assignment_strength")[0] == {"min_similarity": 0.25,
                                                             "min_share": 0.75}


def real_mmc4_doc() -> Document:
    raw = json.loads((DATA / "mmc4_readme_example.jsonl").read_text().splitlines()[0])
    ims = [ImageRecord(info["raw_url"], status="ok", width=400, height=300,
                       similarities=row)
           for info, row in zip(raw["image_info"], raw["similarity_matrix"])]
    doc = Document("ex", "mmc4", raw["url"], raw["text_list"], ims,
                   Provenance("mmc4_readme_example.jsonl", 1),
                   similarity_matrix=raw["similarity_matrix"])
    assign_document(doc)  # what clip_score writes after the similarities
    return doc


def run_after_scoring(name: str, doc: Document) -> None:
    cfg = load_pipeline(REPO / "pipelines" / f"{name}.yaml")
    names = [s.name for s in cfg.stages]
    for spec in cfg.stages[names.index("clip_score") + 1:]:
        assert not isinstance(spec.stage, GlobalStage)
        spec.stage.process([doc])


def test_real_mmc4_example_through_the_recipes():
    doc = real_mmc4_doc()
    run_after_scoring("mmc4", doc)
    assert doc.kept and [im.status for im in doc.images] == ["ok", "ok"]
    assert [im.matched_text_index for im in doc.images] == [2, 1]  # as published
    core = real_mmc4_doc()
    run_after_scoring("mmc4_core", core)
    # 3 sentences: below mmc4-core's 4 (the example is in mmc4, not mmc4-core)
    assert (core.drop_reason, core.dropped_by) == ("too_few_sentences", "doc_counts")
