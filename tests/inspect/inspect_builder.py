"""Constructed outputs with known counts: real JPEG bytes written by the real writer
and packer (shards.local.write_output), ``_pipeline.json`` written by hand. The
expected numbers are spelled out as literals in EXPECTED (and in the tests)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image

from curation.document import Document, ImageRecord, Provenance
from shards.local import ShardLimits, write_output

STAGES = ["dedup", "download", "image_size", "text_length"]
EXPECTED = {
    "documents_in": 9, "documents_written": 4, "images_in": 13, "images_written": 5,
    "documents_dropped": {"dedup:duplicate_url": 1, "dedup:duplicate_exact": 1,
                          "download:no_images": 1, "image_size:no_images": 1,
                          "text_length:too_short": 1},
    "image_status": {"ok": 7, "http_404": 1, "pending": 3, "timeout": 1, "too_small": 1},
    "quarantined": {"malformed_json": 2},
    "shards": 2,
}
# max_samples=3: shard 000000 holds mmc4 positions 0, 1 and coyo position 0 (a shard
# across two units), shard 000001 holds coyo position 3
SHARD_KEYS = {"000000.tar": ["00000-00000-000000", "00000-00000-000001",
                             "00001-00000-000000"],
              "000001.tar": ["00001-00000-000003"]}
MMC4, COYO = "00000-00000", "00001-00000"


def jpeg(w: int, h: int, seed: int) -> bytes:
    img = Image.new("RGB", (w, h), ((seed * 70) % 256, (seed * 30) % 256, 120))
    for x in range(0, w, 8):
        img.paste((255, 255 - x % 256, seed % 256), (x, 0, x + 4, h))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def image(w: int, h: int, seed: int, text: int = 0, sim: float = 0.3,
          n_texts: int = 1) -> ImageRecord:
    data = jpeg(w, h, seed)
    sims = [round(sim - 0.05 * abs(i - text), 3) for i in range(n_texts)]
    return ImageRecord(url=f"http://127.0.0.1/{seed}.jpg", matched_text_index=text,
                       matched_sim=sim, status="ok", width=w, height=h, mime="image/jpeg",
                       num_bytes=len(data), similarities=sims, data=data)


def failed(status: str, stage: str | None, seed: int) -> ImageRecord:
    return ImageRecord(url=f"http://127.0.0.1/{seed}.jpg", status=status, dropped_by=stage)


def doc(i: int, source: str, texts: list[str], images: list[ImageRecord],
        drop: tuple[str, str] | None = None) -> Document:
    d = Document(doc_id=f"{source}{i:03d}", source=source, url=f"http://127.0.0.1/d{i}",
                 texts=texts, images=images, provenance=Provenance(f"{source}.in", line=i))
    if drop:
        d.drop(drop[1], drop[0])
    return d


T3 = ["First sentence here.", "A second one.", "And a third sentence."]


def mmc4_unit() -> list[Document]:
    return [
        doc(1, "mmc4", T3, [image(64, 48, 1, text=2, sim=0.31, n_texts=3),
                            image(80, 60, 2, text=0, sim=0.25, n_texts=3)]),
        doc(2, "mmc4", T3[:2], [image(72, 72, 3, text=1, sim=0.28, n_texts=2),
                                failed("http_404", "download", 4)]),
        doc(3, "mmc4", T3, [failed("pending", None, 5), failed("pending", None, 6)],
            drop=("dedup", "duplicate_url")),
        doc(4, "mmc4", ["Only one."], [failed("timeout", "download", 7)],
            drop=("download", "no_images")),
        doc(5, "mmc4", ["Hi.", "Yo."], [image(64, 64, 8, n_texts=2),
                                        image(64, 64, 9, n_texts=2)],
            drop=("text_length", "too_short")),
    ]


def coyo_unit() -> list[Document]:
    return [
        doc(1, "coyo", ["a red square photo"], [image(96, 64, 10, sim=0.33)]),
        doc(2, "coyo", ["tiny"], [failed("too_small", "image_size", 11)],
            drop=("image_size", "no_images")),
        doc(3, "coyo", ["a red square photo"], [failed("pending", None, 12)],
            drop=("dedup", "duplicate_exact")),
        doc(4, "coyo", ["a blue photo"], [image(64, 96, 13, sim=0.22)]),
    ]


BAD = [{"file": "mmc4.in", "line": n, "row": None, "reason": "malformed_json",
        "detail": "Expecting value", "excerpt": "{oops"} for n in (7, 9)]


def write_pipeline(root: Path, **fields) -> None:
    (root / "_pipeline.json").write_text(json.dumps(fields, indent=1))


def build_output(root: Path, pipeline: dict | None = None) -> Path:
    """The 9-document output of EXPECTED (two units, two shards)."""
    write_output({MMC4: mmc4_unit(), COYO: coyo_unit()}, str(root),
                 ShardLimits(max_samples=3), quarantine=BAD)
    write_pipeline(root, **(pipeline or {"name": "test", "fingerprint": "f00d",
                                         "stages": STAGES,
                                         "inputs": ["mmc4.in", "coyo.in"]}))
    return root


def refilter_unit() -> list[Document]:
    """The parent's 4 written documents read back (the 404 record of mmc4002 travels
    with its document) after ``image_similarity`` with min 0.3."""
    docs = [d for d in mmc4_unit() + coyo_unit() if d.kept]
    for d in docs:
        for im in d.images:
            if im.kept and (im.matched_sim or 0) < 0.3:
                im.drop("low_similarity", "image_similarity")
        if not d.kept_images:
            d.drop("no_images", "image_similarity")
    return docs


def build_child(root: Path, parent: Path, inputs: list[str] | None = None,
                fingerprint: str = "f00d") -> Path:
    """A run over ``parent`` (4 documents in, 2 written) with lineage to it."""
    write_output({"00000-00000": refilter_unit()}, str(root), ShardLimits(max_samples=3))
    write_pipeline(root, name="refilter", fingerprint="c0ffee",
                   stages=["image_similarity"], inputs=inputs or [str(parent)],
                   lineage={"parent": str(parent), "parent_fingerprint": fingerprint,
                            "parent_name": "test"})
    return root


def build_branched(root: Path) -> Path:
    """A branched run: branch ``all`` (the 9-document output) and branch ``coyo``
    (its coyo unit only); the bad records lie in the run's own quarantine/ only."""
    root.mkdir(parents=True)
    write_pipeline(root, name="both", fingerprint="b0b0", stages=["dedup", "download"],
                   branches=["all", "coyo"])
    build_output(root / "all", {"name": "both/all", "branch": "all", "fingerprint": "a1",
                                "stages": STAGES})
    write_output({COYO: coyo_unit()}, str(root / "coyo"), quarantine=BAD)
    write_pipeline(root / "coyo", name="both/coyo", branch="coyo", fingerprint="c1",
                   stages=STAGES)
    shutil.move(str(root / "all" / "quarantine"), str(root / "quarantine"))
    shutil.rmtree(root / "coyo" / "quarantine")
    return root
