"""The malformed-media corpus, generated from one valid clip: every case is bytes plus how it is
sent. Each must be refused with a 4xx or become a failed job with a reason (cases built on a valid
clip, such as hostile file names, must instead succeed with the name made harmless)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

LONG_VIDEO_S = 3600  # an hour of 1 fps 16x16 video: tiny file, twice the duration limit
GIANT_SIDE_PX = 3000  # over the default 2560 px limit, and a real image of that size


@dataclass(frozen=True)
class Case:
    """One hostile input. `send`: "multipart" (a normal upload) or a raw-socket variant."""

    name: str
    data: bytes
    filename: str = "upload.mp4"
    send: str = "multipart"
    valid: bool = False  # the payload is a good clip; only the wrapping is hostile


def boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Top-level ISO-BMFF boxes as (offset, size, type)."""
    found, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        size = size or len(data) - offset
        found.append((offset, size, kind))
        offset += size
    return found


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, "PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header (with a correct CRC) claims `width` x `height`; one tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def _video(width: int, height: int, frames: int, fps: int, fmt: str = "mp4") -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(frames):
            image = np.full((height, width, 3), index % 255, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def _audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def _claim_dimensions(data: bytes, side: int) -> bytes:
    """The clip with its sample entry's width and height fields set to `side`."""
    patched = bytearray(data)
    for codec in (b"mp4v", b"avc1"):
        at = patched.find(codec)
        if at > 0:
            patched[at + 28 : at + 32] = struct.pack(">HH", side, side)
    return bytes(patched)


def build(clip: Path) -> list[Case]:
    """The corpus, 40+ cases, all derived from `clip` (a valid MP4) or made here."""
    good = clip.read_bytes()
    cases = [Case("zero-byte", b""), Case("one byte", b"\0")]
    for offset, size, kind in boxes(good):
        name = kind.decode(errors="replace")
        if offset:
            cases.append(Case(f"truncated before {name}", good[:offset]))
        cases.append(Case(f"truncated inside {name} header", good[: offset + 4]))
        cases.append(Case(f"truncated mid-{name}", good[: offset + size // 2]))
    without_moov = b"".join(good[o : o + s] for o, s, k in boxes(good) if k != b"moov")
    cases += [
        Case("moov missing", without_moov),
        Case("wrong magic: text", b"this is a shopping list, not a video\n" * 40),
        Case("wrong magic: random bytes", bytes(range(256)) * 64),
        Case("wrong magic: ftyp renamed", good.replace(b"ftyp", b"fty!", 1)),
        Case("ELF binary named .mp4", b"\x7fELF\x02\x01\x01" + b"\0" * 4000),
        # FFmpeg takes frame sizes from the bitstream, so the container's claim is ignored and
        # the clip is scored at its real size: harmless, hence `valid`.
        Case("giant claimed video dimensions", _claim_dimensions(good, 65535), valid=True),
        Case("giant real video dimensions", _video(GIANT_SIDE_PX, 16, 2, 2)),
        Case("giant claimed PNG dimensions", _png_claiming(100_000, 100_000), "big.png"),
        Case("giant real image dimensions", _png(GIANT_SIDE_PX, GIANT_SIDE_PX), "giant.png"),
        Case("giant real image, one long side", _png(GIANT_SIDE_PX * 3, 8), "strip.png"),
        Case("1x1 image", _png(1, 1), "dot.png"),
        Case("2x2 video", _video(2, 2, 4, 4)),
        Case("hour-long tiny video", _video(16, 16, LONG_VIDEO_S, 1)),
        Case("no declared duration: raw MPEG-4 elementary stream",
             _video(64, 64, 8, 8, fmt="m4v"), "raw.m4v"),
        Case("audio only", _audio_only(), "tone.m4a"),
        Case("polyglot: PNG then MP4", _png(8, 8) + good, "poly.png"),
        # Bytes after the last box are ignored by every MP4 reader: a valid clip.
        Case("polyglot: MP4 with a ZIP appended", good + b"PK\x03\x04" + b"\0" * 200,
             valid=True),
        Case("polyglot: HTML with MP4 magic", good[:32] + b"<html><script>alert(1)</script>"),
        Case("polyglot: GIF header over MP4", b"GIF89a" + good[6:], "poly.gif"),
        Case("JPEG magic, nothing after", b"\xff\xd8\xff\xe0" + b"\0" * 64, "x.jpg"),
        Case("MP4 header then zeros", good[:64] + b"\0" * 50_000),
        Case("hostile filename: path traversal", good, "../../../etc/passwd.mp4", valid=True),
        Case("hostile filename: NUL and escapes", good, "a\x00b\x1b[31mred\x1b[0m.mp4",
             valid=True),
        Case("hostile filename: bidi override", good, "evil\u202egpj.mp4", valid=True),
        Case("hostile filename: 4 KiB long", good, "n" * 4096 + ".mp4", valid=True),
        Case("hostile filename: CRLF header injection", good, "x.mp4\r\nX-Evil: 1", valid=True),
        Case("huge multipart part headers", good, send="huge-part-headers"),
        Case("stalled body", good, send="stall"),
        Case("Content-Length longer than the body", good, send="long-content-length"),
        Case("Content-Length shorter than the body", good, send="short-content-length"),
        Case("body without its closing boundary", good, send="no-closing-boundary"),
    ]
    return cases
