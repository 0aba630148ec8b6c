"""Receive a multipart upload as it streams in: to disk, counted, hashed, never held in memory.

FastAPI has no upload size limit of its own (REFERENCE.md §7) and its `UploadFile` is spooled in
full before a route runs, so `POST /detect` parses the body itself: each chunk is counted (413
past the limit), hashed and written; the first bytes are kept for sniffing the container.
Whatever the transfer encoding, the whole body counts (the file plus a small allowance for the
form around it, option values together at most `MAX_OPTIONS_BYTES`), a body must end with its
closing boundary (a cut-off upload is not scored on the part that arrived), and a client that
stops sending is dropped after an idle timeout, the whole upload after a total one (408).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import ApiError
from models.video.sniff import SNIFF_BYTES

FILE_FIELD = "file"
OPTION_FIELDS = frozenset({"frames", "fps", "models", "policy", "preset", "threshold", "callback_url"})
MAX_FIELD_BYTES = 4096  # an option value (a URL, a list of model ids) is far shorter
MAX_OPTIONS_BYTES = 16 * 1024  # every option value together: a job record stays small
MAX_FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and option fields around the file
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME_CHARS = 100
MAX_DISPLAY_NAME_CHARS = 255  # a file name's longest on common file systems
DEFAULT_NAME = "upload"


@dataclass
class ReceivedUpload:
    """The file part of a request, written to `path` (in a folder of its own, under the client's
    file name so that error messages name the file the user knows), plus the other fields."""

    directory: Path
    path: Path
    filename: str | None = None
    size: int = 0
    sha256: str = ""
    head: bytes = b""
    fields: dict[str, list[str]] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.directory.rmdir()


def _display_name(filename: str) -> str | None:
    """The client's file name as the job shows it: no folders, and no control or format
    characters (NUL, newlines, bidi overrides that make `gpj.exe` read as `exe.jpg`)."""
    name = "".join(
        char for char in Path(filename).name if unicodedata.category(char) not in ("Cc", "Cf")
    )
    return name.strip()[:MAX_DISPLAY_NAME_CHARS] or None


def _safe_name(filename: str) -> str:
    name = UNSAFE_NAME_CHARS.sub("_", Path(filename).name)[:MAX_NAME_CHARS].strip("._")
    return name or DEFAULT_NAME


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "UploadTooLarge",
        f"the upload is larger than the limit of {limit} bytes; send a shorter or smaller clip",
    )


class _FormReceiver:
    """Callbacks for python-multipart's streaming parser; raises ApiError on a bad form."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.upload = ReceivedUpload(directory=directory, path=directory / DEFAULT_NAME)
        self.limit = limit
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None
        self._files_seen = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition: dict[bytes, bytes] = {}
        self._part: str | None = None  # the field name of the part being read
        self._value = bytearray()
        self._option_bytes = 0
        self.ended = False  # the closing boundary arrived

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _part_begin(self) -> None:
        self._disposition = {}
        self._part = None
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            _, self._disposition = parse_options_header(self._header_value)
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        name = self._disposition.get(b"name", b"").decode("utf-8", "replace")
        is_file = b"filename" in self._disposition
        if name == FILE_FIELD:
            self._files_seen += 1
            if self._files_seen > 1:
                raise ApiError(422, "TooManyFiles", "send one file per request")
            filename = self._disposition.get(b"filename", b"").decode("utf-8", "replace")
            self.upload.filename = _display_name(filename)
            self.upload.path = self.upload.directory / _safe_name(filename)
            self._file = self.upload.path.open("wb")
        elif is_file:
            raise ApiError(
                422,
                "UnexpectedField",
                f"got a file in field {name!r}; send the video or image in a field named "
                f"{FILE_FIELD!r}",
            )
        elif name not in OPTION_FIELDS:
            raise ApiError(
                422,
                "UnexpectedField",
                f"unknown form field {name!r}; known fields: {FILE_FIELD}, "
                + ", ".join(sorted(OPTION_FIELDS)),
            )
        self._part = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None:
            self.upload.size += len(chunk)
            if self.upload.size > self.limit:
                raise _too_large(self.limit)
            if len(self.upload.head) < SNIFF_BYTES:
                self.upload.head += chunk[: SNIFF_BYTES - len(self.upload.head)]
            self._hash.update(chunk)
            self._file.write(chunk)
            return
        self._value += chunk
        self._option_bytes += len(chunk)
        if self._option_bytes > MAX_OPTIONS_BYTES:
            raise ApiError(
                413,
                "FormTooLarge",
                f"the option fields add up to more than {MAX_OPTIONS_BYTES} bytes; send each "
                "option once",
            )
        if len(self._value) > MAX_FIELD_BYTES:
            raise ApiError(
                422, "FieldTooLong", f"form field {self._part!r} is over {MAX_FIELD_BYTES} bytes"
            )

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._part is not None:
            value = self._value.decode("utf-8", "replace")
            self.upload.fields.setdefault(self._part, []).append(value)
        self._part = None

    def finish(self) -> ReceivedUpload:
        self.close()
        if not self.ended:
            raise ApiError(
                400,
                "IncompleteUpload",
                "the multipart body ended before its closing boundary: the upload was cut off; "
                "send the whole file again",
            )
        if self._files_seen == 0:
            raise ApiError(
                422,
                "MissingFile",
                f"no file in the request: send the video or image as multipart/form-data in a "
                f"field named {FILE_FIELD!r} (curl -F {FILE_FIELD}=@clip.mp4)",
            )
        self.upload.sha256 = self._hash.hexdigest()
        return self.upload

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(
            415,
            "NotMultipart",
            f"send the upload as multipart/form-data with the file in a field named "
            f"{FILE_FIELD!r} (curl -F {FILE_FIELD}=@clip.mp4)",
        )
    return params[b"boundary"]


@dataclass(frozen=True)
class BodyTimeouts:
    """How long a client may go without sending (`idle_s`) and take in all (`total_s`)."""

    idle_s: float
    total_s: float


def _timed_out(timeouts: BodyTimeouts) -> ApiError:
    return ApiError(
        408,
        "UploadTimeout",
        f"the upload stalled (nothing for {timeouts.idle_s:g} s) or took longer than "
        f"{timeouts.total_s:g} s in all; send it again over a steadier connection",
    )


async def _chunks(request: Request, timeouts: BodyTimeouts) -> AsyncIterator[bytes]:
    """The body's chunks, each awaited at most `idle_s`, all of them within `total_s`."""
    stream = request.stream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total_s
    while True:
        wait = min(timeouts.idle_s, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError as error:
            raise _timed_out(timeouts) from error
        yield chunk


async def receive_upload(
    request: Request, incoming: Path, limit: int, timeouts: BodyTimeouts
) -> ReceivedUpload:
    """Stream the request's multipart body into a new folder under `incoming`."""
    boundary = _boundary(request)
    body_limit = limit + MAX_FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise _too_large(limit)
    directory = incoming / uuid.uuid4().hex
    directory.mkdir(parents=True)
    receiver = _FormReceiver(directory, limit)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in _chunks(request, timeouts):
            received += len(chunk)
            if received > body_limit:
                raise _too_large(limit)
            parser.write(chunk)
        parser.finalize()
        return receiver.finish()
    except ParseError as error:
        receiver.close()
        receiver.upload.discard()
        raise ApiError(
            400, "MalformedMultipart", f"the multipart body could not be parsed: {error}"
        ) from error
    except BaseException:
        receiver.close()
        receiver.upload.discard()
        raise
