"""A constructed output with known counts: real JPEG bytes, real write_unit, real
finalize_output. The expected numbers are spelled out in EXPECTED."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from curation.document import Document, ImageRecord, Provenance
from curation.storage import write_json
from shards.writer import ShardLimits, write_unit

STAGES = ["dedup", "download", "image_size", "text_length"]
EXPECTED = {
    "documents_in": 9, "documents_written": 4, "images_in": 13, "images_written": 5,
    "documents_dropped": {"dedup:duplicate_url": 1, "dedup:duplicate_exact": 1,
                          "download:no_images": 1, "image_size:no_images": 1,
                          "text_length:too_short": 1},
    "image_status": {"ok": 7, "http_404": 1, "pending": 3, "timeout": 1, "too_small": 1},
    "quarantined": {"malformed_json": 2},
}


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


def mmc4_unit() -> list[Document]:
    t3 = ["First sentence here.", "A second one.", "And a third sentence."]
    return [
        doc(1, "mmc4", t3, [image(64, 48, 1, text=2, sim=0.31, n_texts=3),
                            image(80, 60, 2, text=0, sim=0.25, n_texts=3)]),
        doc(2, "mmc4", t3[:2], [image(72, 72, 3, text=1, sim=0.28, n_texts=2),
                                failed("http_404", "download", 4)]),
        doc(3, "mmc4", t3, [failed("pending", None, 5), failed("pending", None, 6)],
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


def build_output(root: Path, finalize: bool = True) -> Path:
    out = str(root)
    limits = ShardLimits(max_samples=1)  # one sample per shard: several shards per unit
    write_unit(mmc4_unit(), out, "00000-00000", limits)
    write_unit(coyo_unit(), out, "00001-00000", limits)
    write_json(f"{out}/_pipeline.json", {"name": "test", "fingerprint": "f00d",
                                          "stages": STAGES, "inputs": ["mmc4.in", "coyo.in"]})
    qdir = root / "_work" / "quarantine"
    qdir.mkdir(parents=True)
    bad = [{"file": "mmc4.in", "line": n, "row": None, "reason": "malformed_json",
            "detail": "Expecting value", "excerpt": "{oops"} for n in (7, 9)]
    (qdir / "00000.jsonl").write_text("".join(json.dumps(b) + "\n" for b in bad))
    (qdir / "00001.jsonl").write_text("")
    idir = root / "_work" / "ingest"
    idir.mkdir(parents=True)
    for index, (path, unit, n) in enumerate([("mmc4.in", "00000-00000", 5),
                                             ("coyo.in", "00001-00000", 4)]):
        write_json(str(idir / f"{index:05d}.done.json"),
                   {"index": index, "path": path, "units": [unit], "documents": n,
                    "quarantined": 2 if index == 0 else 0})
    if finalize:
        from curation.runner.finalize import finalize_output

        finalize_output(out)
    return root
