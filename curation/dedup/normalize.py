"""Text and URL normalization shared by exact and near-duplicate detection.

Two documents that differ only in case, Unicode form (NFKC), punctuation or spacing
are the same text: all three dedup methods see the same token stream.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import xxhash

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
# The same fold for the ASCII bytes of UTF-8 text as one bytes.translate: ASCII
# punctuation and the ASCII separators bytes.split() misses become spaces.
_BYTE_FOLD = bytes(32 if c < 128 and (_PUNCT.match(chr(c)) or chr(c).isspace()) else c
                   for c in range(256))
_NON_ASCII = re.compile(rb"[\x80-\xff]+")
# Query keys that only track the visitor; a URL differing only in these is the same page.
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = {"fbclid", "gclid", "msclkid", "ref", "ref_src", "mc_cid", "mc_eid"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def words(text: str) -> list[str]:
    """NFKC, lowercase, punctuation folded to spaces, split on whitespace."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower()).split()


def folded_bytes(text: str) -> bytes:
    """``words(text)`` as UTF-8 bytes separated by runs of spaces (``.split()`` gives
    the words), without one Python object per word: the ASCII part is folded by one
    bytes.translate, only words with non-ASCII characters go through the regex."""
    norm = unicodedata.normalize("NFKC", text).lower()
    folded = norm.encode("utf-8").translate(_BYTE_FOLD)
    if norm.isascii():
        return folded
    parts, pos = [], 0
    for run in _NON_ASCII.finditer(folded):
        start = folded.rfind(b" ", 0, run.start()) + 1
        if start < pos:  # a second run inside a word already folded
            continue
        end = folded.find(b" ", run.end())
        end = len(folded) if end < 0 else end
        word = folded[start:end].decode("utf-8")
        if word.isalnum():  # letters and digits only: the regex would not change it
            continue
        parts.append(folded[pos:start])
        parts.append(" ".join(_PUNCT.sub(" ", word).split()).encode("utf-8"))
        pos = end
    if not parts:
        return folded
    parts.append(folded[pos:])
    return b" ".join(parts)


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
