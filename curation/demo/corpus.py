"""Build the demo corpus: MMC4-style documents and COYO-style pairs whose image URLs
point at the demo's local HTTP server. Deterministic (seeded), so runs compare.

Images: downscaled CC0/public-domain photos from scikit-image (see data/NOTICE.md).
The corpus plants what a real crawl has: broken URLs (404), a logo URL, an exact and a
near-duplicate document, and a malformed JSON line, so the demo shows them counted.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).parent / "data"


def _image_names() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for p in sorted((DATA / "images").glob("*.jpg")):
        names.setdefault(p.stem.rsplit("_", 1)[0], []).append(p.name)
    return names


def _document(rng: random.Random, i: int, base_url: str, topics: list[str],
              sentences: dict, images: dict) -> dict:
    texts: list[str] = []
    infos = []
    for topic in topics:
        start = len(texts)
        texts.extend(rng.sample(sentences[topic], 3))
        infos.append({"raw_url": f"{base_url}/images/{rng.choice(images[topic])}",
                      "image_name": f"{topic}.jpg", "matched_text_index": start,
                      "matched_sim": None, "face_detections": None})
    for _ in range(rng.randint(1, 2)):
        texts.insert(rng.randint(0, len(texts)), rng.choice(sentences["filler"]))
    return {"url": f"https://example.org/demo/article-{i:03d}.html", "text_list": texts,
            "image_info": infos, "similarity_matrix": None, "could_have_url_duplicate": 0}


def build_documents(base_url: str, n: int = 36, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    sentences = json.loads((DATA / "sentences.json").read_text())
    images = _image_names()
    topics = sorted(images)
    docs = [_document(rng, i, base_url, rng.sample(topics, rng.randint(1, 3)), sentences,
                      images) for i in range(n)]
    # Failures a crawl has: a dead link, a link to a missing host path, a logo image.
    docs[3]["image_info"].append({"raw_url": f"{base_url}/images/missing.jpg",
                                  "matched_text_index": 0})
    docs[7]["image_info"] = [{"raw_url": f"{base_url}/gone/photo.jpg",
                              "matched_text_index": 0}]
    docs[11]["image_info"].append({"raw_url": f"{base_url}/images/site-logo.png",
                                   "matched_text_index": 0})
    # An exact copy (mirror under another URL) and a near copy (one sentence changed).
    mirror = json.loads(json.dumps(docs[5]))
    mirror["url"] = "https://mirror.example.net/demo/article-005.html"
    near = json.loads(json.dumps(docs[9]))
    near["url"] = "https://example.org/demo/article-009-amp.html"
    near["text_list"].append(sentences["filler"][0])
    return docs + [mirror, near]


def write_mmc4_jsonl(path: Path, base_url: str) -> int:
    docs = build_documents(base_url)
    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    lines.insert(20, '{"text_list": ["a line cut in half by a crawler"], "image_info": [')
    path.write_text("\n".join(lines) + "\n")
    return len(docs)


def write_coyo_parquet(path: Path, base_url: str) -> int:
    captions = [json.loads(line) for line in (DATA / "captions.jsonl").read_text().splitlines()]
    rows = []
    for i, cap in enumerate(captions):
        stem = cap["file"].rsplit(".", 1)[0]
        for view in ("a", "b"):
            rows.append({"id": 1000 + 2 * i + (view == "b"),
                         "url": f"{base_url}/images/{stem}_{view}.jpg",
                         "text": cap["caption"], "width": None, "height": None,
                         "image_phash": None})
    rows.append({"id": 9999, "url": f"{base_url}/images/does-not-exist.jpg",
                 "text": "A picture that was taken down.", "width": None, "height": None,
                 "image_phash": None})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)
