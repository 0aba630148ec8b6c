"""Width and height of a still image from its header, without decoding a pixel.

FFmpeg decodes a whole still image while it opens one (its stream probe needs a frame), so a
745 KB PNG that declares 16000x16000 costs 730 MB before anyone can look at its size. The header
states the size in the first bytes: read it there and refuse before FFmpeg sees the file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers, not DHT/JPG/DAC
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length
_MAX_JPEG_SEGMENTS = 1024  # a real file reaches its frame header within a few dozen segments


def image_size(path: Path, kind: str) -> tuple[int, int] | None:
    """(width, height) as the header of a `kind` image (jpeg, png, webp, gif) declares it;
    None when the header does not say (a malformed file: FFmpeg will refuse it)."""
    with path.open("rb") as file:
        if kind == "png":
            return _png(file.read(24))
        if kind == "gif":
            return _gif(file.read(10))
        if kind == "webp":
            return _webp(file.read(30))
        if kind == "jpeg":
            return _jpeg(file)
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _gif(head: bytes) -> tuple[int, int] | None:
    if len(head) < 10:
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def _webp(head: bytes) -> tuple[int, int] | None:
    if len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the key frame's start code
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit sizes minus one, packed after the signature byte
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas sizes minus one
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg(file: BinaryIO) -> tuple[int, int] | None:
    """Walk the marker segments to the first frame header (after EXIF and other metadata)."""
    if file.read(2) != b"\xff\xd8":
        return None
    for _ in range(_MAX_JPEG_SEGMENTS):
        marker = file.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes before a marker
            marker = marker[1:] + file.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in _JPEG_STANDALONE:
            continue
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if code in _JPEG_SOF:
            frame = file.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if length < 2:
            return None
        file.seek(length - 2, 1)
    return None
