"""Hostile uploads are bounded at the gateway (issue 12, defects 5 and 6): sizes read from headers
before decoding, the whole form counted, stalled bodies dropped, cut-off bodies refused, durations
measured when the container states none, and `fps` sampling capped.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.errors import FrameTooLarge
from models.video.decode import measured_duration, probe_video
from tests import media
from tests.live_gateway import live_gateway, raw_request
from tests.service_helpers import Deployment, error_of, submit

pytest_plugins = ("tests.service_fixtures",)

BOUNDARY = "fakewatchboundsboundary"
ANSWER_TIMEOUT_S = 60  # far past the short body timeouts configured below


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares `width` x `height` followed by a few rows of pixels: decoding
    it would allocate the whole declared frame before finding the data short."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress((b"\x00" + b"\x10" * (width * 3)) * 4)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
    return path


def make_jpeg_declaring(path: Path, width: int, height: int) -> Path:
    """A JPEG with an EXIF-sized segment before a frame header declaring `width` x `height`."""
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 3000) + b"Exif\x00\x00" + b"\x00" * 2994
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    path.write_bytes(b"\xff\xd8" + app1 + sof + b"\xff\xd9")
    return path


def form_head(filename: str = "clip.mp4") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def form_field(name: str, value: str) -> bytes:
    return f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()


FORM_END = f"\r\n--{BOUNDARY}--\r\n".encode()
FORM_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def nothing_left(deployment: Deployment) -> bool:
    uploads = deployment.settings().uploads_dir
    return [p for p in uploads.rglob("*") if p.name != "incoming"] == []


@pytest.fixture
def deployment(gateway_deployment: Any) -> Deployment:
    return gateway_deployment()


def test_image_size_is_read_from_the_header_before_decoding(
    gateway_deployment: Any, tmp_path: Path
) -> None:
    png = make_png_declaring(tmp_path / "bomb.png", 16000, 16000)
    jpeg = make_jpeg_declaring(tmp_path / "bomb.jpg", 12000, 9000)
    with pytest.raises(FrameTooLarge):
        probe_video(png, max_side=2560)
    deployment = gateway_deployment()
    with deployment.gateway() as client:
        for path, size in ((png, "16000x16000"), (jpeg, "12000x9000")):
            message = error_of(submit(client, path), 422, "ResolutionTooHigh")
            assert size in message
        assert nothing_left(deployment)


def test_video_size_is_read_from_the_container(tmp_path: Path, gateway_deployment: Any) -> None:
    video = media.make_blank_video(tmp_path / "wide.mp4", frames=2, width=640, height=360)
    with pytest.raises(FrameTooLarge):
        probe_video(video, max_side=320)
    deployment = gateway_deployment(max_side_px=320)
    with deployment.gateway() as client:
        assert "640x360" in error_of(submit(client, video), 422, "ResolutionTooHigh")


def test_option_fields_count_against_the_limit_over_chunked_encoding(
    deployment: Deployment, face_image: Path
) -> None:
    image = face_image.read_bytes()
    fields = b"".join(form_field("models", "m" * 4000) for _ in range(50))

    def chunks() -> Iterator[bytes]:
        yield form_head("face.jpg") + image
        yield from (fields[i : i + 8192] for i in range(0, len(fields), 8192))
        yield FORM_END

    with deployment.gateway() as client:
        response = client.post("/detect", content=chunks(), headers=FORM_TYPE)
        assert "content-length" not in response.request.headers
        error_of(response, 413, "FormTooLarge")
        assert nothing_left(deployment)


def test_the_whole_body_counts_against_the_upload_limit(
    gateway_deployment: Any, face_image: Path
) -> None:
    image = face_image.read_bytes()
    deployment = gateway_deployment(max_upload_bytes=len(image) + 100)
    empty_parts = form_field("models", "") * 5000  # no value bytes, but 400 KB of form

    def chunks() -> Iterator[bytes]:
        yield form_head("face.jpg") + image
        yield empty_parts
        yield FORM_END

    with deployment.gateway() as client:
        error_of(client.post("/detect", content=chunks(), headers=FORM_TYPE), 413, "UploadTooLarge")
        assert nothing_left(deployment)


def test_a_body_cut_off_before_its_closing_boundary_is_refused(
    deployment: Deployment, face_video: Path
) -> None:
    data = face_video.read_bytes()
    body = form_head() + data[: len(data) // 2]
    with deployment.gateway() as client:
        response = client.post("/detect", content=body, headers=FORM_TYPE)
        assert "cut off" in error_of(response, 400, "IncompleteUpload")
        assert client.get("/jobs").json()["total"] == 0
    assert nothing_left(deployment)


def test_a_body_shorter_than_its_content_length_is_dropped(
    gateway_deployment: Any, face_video: Path
) -> None:
    deployment = gateway_deployment(upload_idle_timeout_s=0.5)
    body = form_head() + face_video.read_bytes()[:1000]
    head = (
        "POST /detect HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body) + 100_000}\r\n\r\n"
    ).encode()
    with live_gateway(deployment.settings()) as address:
        answer = raw_request(address, head, body, ANSWER_TIMEOUT_S)
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 408 " in status_line, answer
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["type"] == "UploadTimeout"
    assert nothing_left(deployment)


def test_duration_is_measured_when_the_container_states_none(
    gateway_deployment: Any, tmp_path: Path
) -> None:
    webm = media.make_streamed_webm(tmp_path / "live.webm", frames=36)  # 3 s at 12 fps
    assert probe_video(webm).duration is None
    assert measured_duration(webm) == pytest.approx(3.0, abs=0.2)
    bare = media.make_raw_h264_video(tmp_path / "bare.h264", frames=24)  # no timestamps at all
    frame_rate = probe_video(bare).fps  # the demuxer's guess: a bare stream keeps no clock
    assert frame_rate and measured_duration(bare) == pytest.approx(24 / frame_rate, rel=0.1)
    deployment = gateway_deployment(max_duration_s=2)
    with deployment.gateway() as client:
        error_of(submit(client, webm), 422, "VideoTooLong")
        assert nothing_left(deployment)


def test_fps_sampling_is_capped_over_the_whole_video(
    deployment: Deployment, tmp_path: Path
) -> None:
    sparse = media.make_vfr_video(tmp_path / "sparse.mp4", times=[0.0, 10.0, 20.0])
    with deployment.gateway() as client:
        message = error_of(submit(client, sparse, fps="60"), 422, "TooManyFrames")
        assert "1024" in message
        assert client.post("/detect", files={"file": ("s.mp4", sparse.read_bytes())},
                           data={"fps": "10"}).status_code == 202


def test_file_names_are_shown_without_control_or_bidi_characters(
    deployment: Deployment, face_image: Path
) -> None:
    hostile = "in\u202egpj.exe\x00\x1b[31m\u200b.jpg"  # sent raw: clients would escape these
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{hostile}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    with deployment.gateway() as client:
        body = head + face_image.read_bytes() + FORM_END
        response = client.post("/detect", content=body, headers=FORM_TYPE)
        assert response.status_code == 202, response.text
        shown = client.get(f"/jobs/{response.json()['id']}").json()["upload"]["filename"]
    assert shown == "ingpj.exe[31m.jpg"
