"""The safe shard reader refuses links, '..', absolute names; reads our shards."""

from __future__ import annotations

import io
import tarfile

import pytest

from shards.local import write_output
from shards.pack import ShardLimits
from shards.reader import UnsafeTarError, iter_samples, read_shard
from tests.shards.test_shards_writer import make_doc


def tar_with(*members: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        good = tarfile.TarInfo("k1.json")
        good.size = 2
        tf.addfile(good, io.BytesIO(b"{}"))
        for m in members:
            if m.isreg():
                m.size = len(data)
                tf.addfile(m, io.BytesIO(data))
            else:
                tf.addfile(m)
    buf.seek(0)
    return buf


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = link
    return m


@pytest.mark.parametrize("member, words", [
    (info("../evil.json"), "escapes"),
    (info("a/../../evil.json"), "escapes"),
    (info("/etc/passwd"), "absolute"),
    (info("k2.jpg", tarfile.SYMTYPE, "/etc/passwd"), "link"),
    (info("k2.jpg", tarfile.LNKTYPE, "k1.json"), "link"),
    (info("k2.dev", tarfile.CHRTYPE), "not a regular file"),
])
def test_hostile_members_are_refused_with_the_shard_named(member, words):
    with pytest.raises(UnsafeTarError, match=words) as err:
        list(iter_samples(tar_with(member), "s3://b/shards/x.tar"))
    assert "s3://b/shards/x.tar" in str(err.value)


def test_reads_back_what_the_writer_wrote(tmp_path):
    docs = [make_doc(i, n_images=3) for i in range(5)]
    write_output({"00000-00000": docs}, str(tmp_path), ShardLimits())
    samples = list(read_shard(str(tmp_path / "shards" / "000000.tar")))
    assert [s["__key__"] for s in samples] == [f"00000-00000-{i:06d}" for i in range(5)]
    assert set(samples[0]) == {"__key__", "__url__", "json", "0.jpg", "1.png"}


def test_fast_headers_read_by_tarfile_and_long_names():
    import tarfile as tf_mod

    from shards.tarfast import END, member_bytes

    long = "a" * 60 + "/" + "b" * 90 + ".json"  # > 100 bytes: USTAR prefix field
    blob = member_bytes("k1.json", b"{}") + member_bytes(long, b"x" * 700) + END
    with tf_mod.open(fileobj=io.BytesIO(blob)) as tf:
        assert tf.getnames() == ["k1.json", long]
        assert tf.extractfile(long).read() == b"x" * 700  # type: ignore[union-attr]
        assert all(m.isreg() and m.mode == 0o444 for m in tf.getmembers())
    assert [s["__key__"] for s in iter_samples(io.BytesIO(blob), "t")] == ["k1", long[:-5]]


def test_header_fields_as_tarfile_reads_them():
    """The templated header: every field tarfile parses, for short, non-ASCII and
    prefix-split names and sizes up to what 11 octal digits hold."""
    import tarfile as tf_mod

    from shards.tarfast import MAX_MEMBER_SIZE, member_header

    for name, size in [("k.json", 0), ("ключ.0.jpg", 12345), ("d/" * 60 + "n.json", 77),
                       ("x" * 100, MAX_MEMBER_SIZE)]:
        info = tf_mod.TarInfo.frombuf(member_header(name, size), "utf-8", "surrogateescape")
        assert (info.name, info.size, info.mode, info.mtime) == (name, size, 0o444, 0)
        assert (info.uname, info.gname, info.type) == ("curate", "curate", tf_mod.REGTYPE)
    with pytest.raises(ValueError, match="does not fit"):
        member_header("k.json", MAX_MEMBER_SIZE + 1)


def test_pax_and_gnu_long_names_written_by_tarfile_are_read():
    name = "x" * 150 + ".json"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"{}"))
        buf.seek(0)
        assert [s["__key__"] for s in iter_samples(buf, "t")] == ["x" * 150]


def test_bad_checksum_and_truncation_are_errors():
    from shards.tarfast import TarFormatError, member_bytes

    blob = bytearray(member_bytes("k.json", b"{}"))
    blob[0] ^= 1
    with pytest.raises(TarFormatError, match="checksum"):
        list(iter_samples(io.BytesIO(bytes(blob)), "t"))
    with pytest.raises(TarFormatError, match="truncated"):
        list(iter_samples(io.BytesIO(member_bytes("k.json", b"x" * 600)[:700]), "t"))
