"""Magic-number sniffing: does a body start like an image Pillow can read?

Used only when the server's Content-Type says the body is not an image (an HTML
error page is the usual case), so the download can stop after the first chunk.
"""

from __future__ import annotations

_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"GIF87a", b"GIF89a",
    b"BM",  # BMP
    b"II*\x00", b"MM\x00*",  # TIFF
    b"\x00\x00\x01\x00",  # ICO
)


def looks_like_image(head: bytes) -> bool:
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix",
                                                   b"mif1")
