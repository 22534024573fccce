"""Text and URL normalization shared by exact and near-duplicate detection.

Two documents that differ only in case, Unicode form (NFKC), punctuation or spacing
are the same text: all three dedup methods see the same token stream.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import xxhash

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
# The same fold for the ASCII bytes of UTF-8 text as one bytes.translate: ASCII
# punctuation and the ASCII separators bytes.split() misses become spaces.
_BYTE_FOLD = bytes(32 if c < 128 and (_PUNCT.match(chr(c)) or chr(c).isspace()) else c
                   for c in range(256))
# Query keys that only track the visitor; a URL differing only in these is the same page.
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = {"fbclid", "gclid", "msclkid", "ref", "ref_src", "mc_cid", "mc_eid"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def words(text: str) -> list[str]:
    """NFKC, lowercase, punctuation folded to spaces, split on whitespace."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()


def ascii_folded(text: str) -> bytes:
    """NFKC, lowercase, UTF-8, ASCII punctuation and separators made spaces (one
    bytes.translate); words with non-ASCII characters are finished by ``fold_texts``."""
    return unicodedata.normalize("NFKC", text).lower().encode("utf-8").translate(_BYTE_FOLD)


def fold_texts(texts: list[str]) -> tuple[bytearray, np.ndarray]:
    """``words(text)`` of many texts as one buffer of UTF-8 words separated by runs of
    spaces, and the end offset of each text (texts are separated by a space). No
    Python object per word: only words holding a non-ASCII byte are looked at, and
    only those with a non-alphanumeric character go through the regex. A folded word
    is never longer than the original, so it is written back in place."""
    parts = [ascii_folded(t) for t in texts]
    buf = bytearray(b" ".join(parts) + b" ")
    ends = np.cumsum([len(p) + 1 for p in parts], dtype=np.int64)
    arr = np.frombuffer(buf, dtype=np.uint8)
    high = np.flatnonzero(arr >= 0x80)
    if len(high) == 0:
        return buf, ends
    space = np.flatnonzero(arr == 32)  # the buffer ends with one: every word has an end
    after = np.unique(np.searchsorted(space, high))  # one entry per non-ASCII word
    end = space[after]
    start = np.where(after > 0, space[np.maximum(after - 1, 0)] + 1, 0)
    for s, e in zip(start.tolist(), end.tolist()):
        word = buf[s:e].decode("utf-8")
        if word.isalnum():  # letters and digits only: the regex would not change it
            continue
        folded = " ".join(_PUNCT.sub(" ", word).split()).encode("utf-8")
        buf[s:e] = folded.ljust(e - s)
    return buf, ends


def folded_bytes(text: str) -> bytes:
    """``words(text)`` as UTF-8 bytes separated by runs of spaces."""
    buf, _ = fold_texts([text])
    return bytes(buf)


def word_bytes(text: str) -> list[bytes]:
    """``words(text)`` as UTF-8 bytes."""
    return folded_bytes(text).split()


def document_text(texts: list[str]) -> str:
    """The text a document is compared by: its sentences joined by a space."""
    return " ".join(filter(None, texts))


def to_signed64(value: int) -> int:
    """uint64 -> int64 (same bits) so hashes fit Arrow/JSON int64 columns."""
    return value - (1 << 64) if value >= (1 << 63) else value


def text_hash(tokens: list[str] | list[bytes]) -> int | None:
    """Exact-duplicate key of a token stream (None for an empty text: never a dup);
    the scalar reference of ``shingles.texts_hashes``."""
    from curation.dedup.shingles import token_hash, tokens_hash

    if not tokens:
        return None
    return to_signed64(tokens_hash([token_hash(t) for t in tokens]))


def normalize_url(url: str | None) -> str | None:
    """Canonical page URL: scheme folded to https, host lowercased without ``www.``,
    default port, fragment, trailing slash and tracking parameters removed, query sorted.
    Returns None for an empty or unparsable URL (never a duplicate key)."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    if host.startswith("www."):
        host = host[4:]
    scheme = parts.scheme.lower() or "http"
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(_TRACKING_PREFIXES)
             and k.lower() not in _TRACKING_KEYS]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, urlencode(sorted(query)), ""))


def url_hash(url: str | None) -> int | None:
    norm = normalize_url(url)
    if norm is None:
        return None
    return to_signed64(xxhash.xxh64_intdigest(norm.encode("utf-8")))
