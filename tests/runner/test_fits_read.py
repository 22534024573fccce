"""The fit's facts dataset: every staged facts file read once, in the facts schema."""

import pyarrow as pa
import ray

from curation.location import Location
from curation.runner.fit import read_facts
from curation.stage import facts_schema
from filters.clip_topk import ClipTopKConfig, ClipTopKStage


def _stage_facts(loc: Location, units: int, per_unit: int) -> None:
    for u in range(units):
        # columns written in another order and type: the read casts to the schema
        loc.write_parquet(f"00000-{u:05d}.parquet", pa.table({
            "score": pa.array([u + i / 10 for i in range(per_unit)], pa.float32()),
            "unit": [f"00000-{u:05d}"] * per_unit,
            "rid": [(u << 20) + i for i in range(per_unit)]}))


def test_read_facts_reads_every_file_once_in_the_schema(tmp_path, ray_session):
    stage = ClipTopKStage(ClipTopKConfig(count=3, score="quality"))
    loc = Location.of(str(tmp_path / "facts"))
    _stage_facts(loc, units=7, per_unit=5)
    ds = read_facts(loc, stage).materialize()
    table = pa.concat_tables(ray.get(ds.to_arrow_refs()))
    assert table.schema == facts_schema(stage)
    assert ds.num_blocks() == 4  # two groups of files per CPU of the 2-CPU session
    assert sorted(table.column("rid").to_pylist()) == sorted(
        (u << 20) + i for u in range(7) for i in range(5))
    assert table.column("score").type == pa.float64()


def test_read_facts_of_no_files_is_an_empty_dataset(tmp_path, ray_session):
    stage = ClipTopKStage(ClipTopKConfig(count=3, score="quality"))
    loc = Location.of(str(tmp_path / "facts"))
    (tmp_path / "facts").mkdir()
    ds = read_facts(loc, stage)
    assert ds.count() == 0
