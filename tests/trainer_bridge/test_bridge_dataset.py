"""ShardDataset on real shards: ranks x workers, resume, shuffle, counts, safety, S3."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bridge_builder import TOTAL, build_output
from torch.utils.data import DataLoader

from trainer_bridge import ResumableLoader, ShardDataset
from trainer_bridge.shardlist import expand_urls, resolve_shards
from trainer_bridge.tar_reader import ShardCountError, UnsafeTarError


def keys_of(batch) -> list[str]:
    return list(batch["__key__"])


def collate_keys(batch):
    return {"__key__": [s["__key__"] for s in batch],
            "__worker__": [s["__worker__"] for s in batch]}


def run_rank(root, rank, remainder, num_workers=2, batch_size=3):
    ds = ShardDataset(str(root), rank=rank, world_size=2, seed=7, shuffle_buffer=5,
                      remainder=remainder)
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_keys)
    batches = list(loader)
    return [k for b in batches for k in keys_of(b)], len(batches)


@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_two_ranks_two_workers_disjoint_union_equal(bridge_output, remainder):
    root, keys = bridge_output
    r0, nb0 = run_rank(root, 0, remainder)
    r1, nb1 = run_rank(root, 1, remainder)
    per = 14 if remainder == "pad" else 13
    assert len(r0) == len(r1) == per and nb0 == nb1
    both = Counter(r0 + r1)
    if remainder == "pad":
        assert set(both) == set(keys)  # union is the whole set
        assert sum(both.values()) == TOTAL + 1 and max(both.values()) == 2
    else:
        assert max(both.values()) == 1 and len(both) == TOTAL - 1  # disjoint


def test_len_matches_what_is_yielded(bridge_output):
    root, _ = bridge_output
    ds = ShardDataset(str(root), rank=1, world_size=3, group_size=2, shuffle_buffer=4)
    items = list(ds)
    assert len(items) == len(ds) == 4  # 9 samples per rank -> 4 pairs
    assert all(len(it["samples"]) == 2 for it in items)
    assert ds.len_for(2) == 4 and ds.len_for(9) == 4  # groups formed per rank, then split


def test_seeded_shuffle_repeats_per_epoch_and_changes_between(bridge_output):
    root, keys = bridge_output

    def order(seed, epoch):
        ds = ShardDataset(str(root), seed=seed, shuffle_buffer=6, rank=0, world_size=1)
        ds.set_epoch(epoch)
        return [s["__key__"] for s in ds]

    a = order(1, 0)
    assert a == order(1, 0) and sorted(a) == sorted(keys)
    assert a != order(1, 1) and a != order(2, 0) and a != keys
    plain = ShardDataset(str(root), shuffle=False, rank=0, world_size=1)
    assert [s["__key__"] for s in plain] == keys


def keys_in_order(batches) -> list[str]:
    return [k for b in batches for k in b["__key__"]]


@pytest.mark.parametrize("num_workers,shuffle", [(0, True), (2, True), (3, False)])
def test_resume_gives_the_uninterrupted_global_order(bridge_output, num_workers, shuffle):
    """Stop after every possible batch, resume from the saved state in a fresh loader:
    the batches that follow equal the uninterrupted run's, batch by batch."""
    root, _ = bridge_output

    def loader():
        ds = ShardDataset(str(root), rank=1, world_size=2, seed=11, shuffle_buffer=3,
                          shuffle=shuffle)
        ds.set_epoch(2)
        return ResumableLoader(ds, batch_size=2, num_workers=num_workers,
                               collate_fn=collate_keys)

    full = [b["__key__"] for b in loader()]
    assert len(full) == len(loader())  # len() counts each worker's partial batch
    for stop in (1, 2, 3, len(full) - 1):
        first = loader()
        head = []
        for batch in first:
            head.append(batch["__key__"])
            if len(head) == stop:
                break
        state = first.state_dict()
        assert sum(state["consumed"].values()) == sum(len(h) for h in head)
        resumed = loader()
        resumed.load_state_dict(state)
        tail = [b["__key__"] for b in resumed]
        assert head + tail == full, f"stop after {stop}"
        assert resumed.dataset.epoch == 3 and resumed.state_dict()["consumed"] == {}


def test_resume_with_shuffle_opens_no_delivered_shard(tmp_path):
    """Shuffle blocks of 8 over shards of 4: stop after 7 of the first block's 8 samples,
    so one of its two shards was fully delivered. The resumed run opens only the shard
    holding the last undelivered sample and the next block's shards."""
    root = tmp_path / "out"
    build_output(root, unit_sizes=(8, 8))  # 4 shards of 4 samples

    def dataset():
        return ShardDataset(str(root), rank=0, world_size=1, seed=2, shuffle_buffer=8)

    full = [s["__key__"] for s in dataset()]
    first = dataset()
    loader = ResumableLoader(first, batch_size=1, collate_fn=collate_keys)
    it = iter(loader)
    seen = [next(it)["__key__"][0] for _ in range(7)]
    block0 = list(dict.fromkeys(first.opened))  # the two shards of the first block
    assert len(block0) == 2
    again = dataset()
    again.load_state_dict(loader.state_dict())
    rest = [s["__key__"] for s in again]
    assert seen + rest == full
    shard_keys = {u: set(keys_of_shard(u)) for u in block0}
    left = [u for u in block0 if not shard_keys[u] <= set(seen)]
    later = [s.url for s in again.shards if s.url not in block0]
    assert len(left) == 1 and sorted(set(again.opened)) == sorted(left + later)


def keys_of_shard(url: str) -> list[str]:
    from trainer_bridge.tar_reader import read_samples

    return [s["__key__"] for s in read_samples(url)]


def test_collate_that_drops_the_worker_tag_is_named(bridge_output):
    root, _ = bridge_output
    ds = ShardDataset(str(root), rank=0, world_size=1)
    loader = ResumableLoader(ds, batch_size=2, num_workers=1,
                             collate_fn=lambda b: {"__key__": [s["__key__"] for s in b]})
    with pytest.raises(TypeError, match="__worker__.*collate_fn"):
        next(iter(loader))
    with pytest.raises(ValueError, match="persistent_workers"):
        ResumableLoader(ds, num_workers=1, persistent_workers=True)


def test_len_of_loader_with_workers(bridge_output):
    root, _ = bridge_output
    for workers, bs, drop in [(2, 4, False), (3, 4, False), (3, 4, True), (0, 5, False)]:
        ds = ShardDataset(str(root), rank=0, world_size=1)
        loader = ResumableLoader(ds, batch_size=bs, num_workers=workers, drop_last=drop,
                                 collate_fn=collate_keys)
        assert len(loader) == len(list(loader)), (workers, bs, drop)


def test_resume_refuses_other_world_or_workers(bridge_output):
    root, _ = bridge_output
    ds = ShardDataset(str(root), rank=0, world_size=2)
    state = ResumableLoader(ds, num_workers=2, collate_fn=collate_keys).state_dict()
    state["consumed"] = {"0": 1}
    with pytest.raises(ValueError, match="world_size"):
        ShardDataset(str(root), rank=0, world_size=4).load_state_dict(state)
    other = ShardDataset(str(root), rank=0, world_size=2)
    other.load_state_dict(state)
    with pytest.raises(ValueError, match="num_workers"):
        list(other)


def test_counts_from_shard_table_manifest_parts_or_scan(tmp_path):
    root = tmp_path / "out"
    build_output(root, unit_sizes=(5, 2))
    expected = {"000000.tar": 4, "000001.tar": 1, "000002.tar": 2}

    def counts():
        return {s.url.rsplit("/", 1)[-1]: s.count for s in resolve_shards(str(root))}

    assert counts() == expected  # shards.parquet
    pq.write_table(pa.table({"shard": ["000000.tar"], "samples": [3]}),
                   root / "shards.parquet")
    assert counts()["000000.tar"] == 3  # the shard table wins
    (root / "shards.parquet").unlink()
    assert counts() == expected  # manifest parts
    shutil.rmtree(root / "manifest")
    assert counts() == expected  # scanned
    loose = tmp_path / "loose"
    shutil.copytree(root / "shards", loose)
    assert {s.url.rsplit("/", 1)[-1]: s.count
            for s in resolve_shards(str(loose / "*.tar"))} == expected  # scanned
    braces = str(root / "shards" / "00000{0,2}.tar")
    assert [u.rsplit("/", 1)[-1] for u in expand_urls(braces)] == \
           ["000000.tar", "000002.tar"]


def test_stale_count_fails_naming_the_shard(tmp_path):
    root = tmp_path / "out"
    build_output(root, unit_sizes=(3,))
    shard = str(root / "shards" / "000000.tar")
    ds = ShardDataset(shard, counts={shard: 5}, shuffle=False, rank=0, world_size=1)
    with pytest.raises(ShardCountError, match="000000.tar"):
        list(ds)


def evil_tar(path, name, link=False):
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 2
            tf.addfile(info, io.BytesIO(b"{}"))


@pytest.mark.parametrize("name,link", [("../up.json", False), ("/abs.json", False),
                                       ("k.json", True)])
def test_unsafe_members_are_refused(tmp_path, name, link):
    path = tmp_path / "evil.tar"
    evil_tar(path, name, link)
    with pytest.raises(UnsafeTarError, match="evil.tar"):
        list(ShardDataset(str(path), counts={str(path): 1}, rank=0, world_size=1))


def test_bad_sample_is_replaced_and_counted(bridge_output):
    root, _ = bridge_output

    def transform(raw):
        if raw["__key__"].endswith("000002"):
            raise ValueError("broken on purpose")
        return {"__key__": raw["__key__"]}

    ds = ShardDataset(str(root), transform=transform, shuffle=False, rank=0, world_size=1)
    out = [s["__key__"] for s in ds]
    assert len(out) == TOTAL and ds.failures == 4  # 4 units each have a key ...000002
    assert not any(k.endswith("000002") for k in out)


def test_reads_from_s3(s3_bucket):
    bucket, options = s3_bucket
    keys = build_output(None, unit_sizes=(3, 2), out=f"{bucket}/out", storage_options=options)
    ds = ShardDataset(f"{bucket}/out", storage_options=options, rank=0, world_size=1,
                      seed=1)
    assert sorted(s["__key__"] for s in ds) == sorted(keys)
    glob = ShardDataset(f"{bucket}/out/shards/*.tar", storage_options=options,
                        rank=1, world_size=2)
    assert len(list(glob)) == 3
