"""Name a file's container from its first bytes: a quick accept/reject before any decoding."""

from __future__ import annotations

SNIFF_BYTES = 512  # enough to see every signature below, incl. a second MPEG-TS sync byte
IMAGE_CONTAINERS = frozenset({"jpeg", "png", "webp"})
_MPEGTS_PACKET = 188  # ISO/IEC 13818-1 transport packets, each starting with sync byte 0x47
_M2TS_PACKET = 192  # Blu-ray transport packets: a 4-byte timecode before each 188-byte packet
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff_container(head: bytes) -> str | None:
    """Name the container of a file from its first bytes (ideally `SNIFF_BYTES`), None if unknown.

    Recognises mp4, mov, matroska, webm, avi, mpegts, mpeg (program stream), flv, ogg, asf, and
    the images jpeg, png, webp and gif. Meant for a quick accept/reject before any decoding.
    """
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[:1] == b"\x47" and head[_MPEGTS_PACKET : _MPEGTS_PACKET + 1] == b"\x47":
        return "mpegts"
    if head[4:5] == b"\x47" and head[4 + _M2TS_PACKET : 5 + _M2TS_PACKET] == b"\x47":
        return "mpegts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None
