"""A multipart upload streamed to a temporary file, with a size limit checked as it comes.

Starlette's form parser keeps going until the whole body is on disk; a route that
publishes data must refuse a body past its limit as soon as it passes it (HTTP 413),
and never hold a file in memory. The body is read here chunk by chunk through
python-multipart's streaming parser: the one file part goes to a file in a private
temporary directory, the few text fields (bounded) to memory. The directory is removed
when the request is done.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from fastapi import Request

from ailedger.errors import (
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

FILE_FIELD: Final = "file"
MAX_FIELD_BYTES: Final = 16 * 1024
MAX_FIELDS: Final = 64
FORM_OVERHEAD: Final = MAX_FIELDS * (MAX_FIELD_BYTES + 512)
"""What the text fields and part headers may add to a body on top of the file."""


@dataclass
class Upload:
    path: Path
    size: int
    filename: str
    fields: dict[str, list[str]] = field(default_factory=dict)


class _Parts:
    """The parser's callbacks: where each part's bytes go."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.fields: dict[str, list[str]] = {}
        self.file: IO[bytes] | None = None
        self.path: Path | None = None
        self.filename = ""
        self.size = 0
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._value = bytearray()
        self._into_file = False
        self._count = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add_name(d[s:e]),
            "on_header_value": lambda d, s, e: self._add_value(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": lambda d, s, e: self._data(d[s:e]),
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._value, self._into_file = {}, bytearray(), False
        self._count += 1
        if self._count > MAX_FIELDS:
            raise MalformedRequestError(f"the form has more than {MAX_FIELDS} parts")

    def _add_name(self, data: bytes) -> None:
        self._header_name += data

    def _add_value(self, data: bytes) -> None:
        self._header_value += data
        if len(self._header_value) > MAX_FIELD_BYTES:
            raise MalformedRequestError("a part header of the form is too long")

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        kind, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise MalformedRequestError("a part of the form has no form-data name")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self.file is not None:
                raise MalformedRequestError("the form carries more than one file; send one")
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace")[:255]
            self.path = self.directory / "upload"
            self.file = self.path.open("xb")
            self._into_file = True

    def _data(self, data: bytes) -> None:
        if self._into_file:
            assert self.file is not None
            self.size += len(data)
            if self.size > self.max_bytes:
                raise _too_large(self.max_bytes)
            self.file.write(data)
            return
        self._value += data
        if len(self._value) > MAX_FIELD_BYTES:
            raise MalformedRequestError(
                f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes"
            )

    def _end(self) -> None:
        if self._into_file:
            assert self.file is not None
            self.file.close()
            self._into_file = False
            return
        try:
            text = self._value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedRequestError(f"form field {self._name!r} is not UTF-8 text") from exc
        self.fields.setdefault(self._name, []).append(text)

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the file is larger than this node takes in one upload ({max_bytes} bytes); "
        "publish it from the command line (`ailedger data publish`), which has no limit"
    )


def streamed_upload(max_bytes: int) -> Callable[[Request], AsyncIterator[Upload]]:
    """A dependency that reads a ``multipart/form-data`` body with one ``file`` part
    of at most ``max_bytes``, and removes what it wrote once the request is done."""

    async def upload(request: Request) -> AsyncIterator[Upload]:
        from python_multipart.exceptions import MultipartParseError
        from python_multipart.multipart import MultipartParser, parse_options_header

        kind, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UnsupportedMediaTypeError(
                "send the dataset as multipart/form-data with a `file` part and the fields"
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
            raise _too_large(max_bytes)  # refused before a byte is read
        directory = Path(tempfile.mkdtemp(prefix="ailedger-upload-"))
        parts = _Parts(directory, max_bytes)
        try:
            callbacks: Any = parts.callbacks()
            parser = MultipartParser(boundary, callbacks)
            try:
                async for chunk in request.stream():
                    parser.write(chunk)
                parser.finalize()
            except MultipartParseError as exc:
                raise MalformedRequestError(f"the form cannot be read: {exc}") from exc
            finally:
                parts.close()
            if parts.path is None:
                raise MalformedRequestError(f"the form has no `{FILE_FIELD}` part: attach a file")
            yield Upload(parts.path, parts.size, parts.filename, parts.fields)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    return upload
