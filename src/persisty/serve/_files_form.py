"""A streaming reader of the ``multipart/form-data`` a browser posts to an upload grant:
small text fields first, then the file (the last part), whose bytes are passed on as they
arrive and never held whole in memory."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from persisty.errors import ValidationError

MAX_FIELDS = 64
MAX_FIELD_BYTES = 16 * 1024
MAX_HEAD_BYTES = 16 * 1024
_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))', re.IGNORECASE)
_NAME = re.compile(r'\bname="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(r'\bfilename="', re.IGNORECASE)


def _bad(message: str) -> ValidationError:
    return ValidationError(f"the upload form is malformed: {message}", field="file")


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise ValidationError("the upload is multipart/form-data", field="Content-Type")
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise ValidationError("multipart/form-data needs a boundary", field="Content-Type")
    return (found.group(1) or found.group(2)).encode("latin-1")


class FormReader:
    """Reads the fields of a form, then streams its ``file`` part.

    Example::

        form = FormReader(request.stream(), boundary_of(request.headers["content-type"]))
        fields = await form.fields()      # {"token": "…", …}, up to the file part
        async for piece in form.file():   # the file's bytes
            ...
    """

    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"  # the first delimiter has no CRLF before it
        self._done = False

    async def _more(self) -> bool:
        if self._done:
            return False
        try:
            piece = await self._stream.__anext__()
        except StopAsyncIteration:
            self._done = True
            return False
        self._buffer += piece
        return True

    async def _until(self, marker: bytes, limit: int) -> bytes:
        """Bytes up to ``marker`` (consumed), refusing more than ``limit`` before it."""
        while True:
            at = self._buffer.find(marker)
            if at >= 0:
                found, self._buffer = self._buffer[:at], self._buffer[at + len(marker) :]
                return found
            if len(self._buffer) > limit + len(marker):
                raise _bad("a field or header is too long")
            if not await self._more():
                raise _bad("it ends too early")

    async def _part_head(self) -> str | None:
        """After a delimiter: the next part's headers, or ``None`` at the closing one."""
        while len(self._buffer) < 2 and await self._more():
            pass
        if self._buffer.startswith(b"--"):
            return None
        head = await self._until(b"\r\n\r\n", MAX_HEAD_BYTES)
        return head.decode("utf-8", "replace")

    async def fields(self) -> dict[str, str]:
        """The text fields before the file part (the reader then stands at the file)."""
        await self._until(self._delimiter, MAX_FIELD_BYTES)
        found: dict[str, str] = {}
        while True:
            head = await self._part_head()
            if head is None:
                raise _bad("it has no file part")
            name = _NAME.search(head)
            if _FILENAME.search(head) or (name is not None and name.group(1) == "file"):
                return found
            if name is None:
                raise _bad("a part has no name")
            if len(found) >= MAX_FIELDS:
                raise _bad("too many fields")
            value = await self._until(self._delimiter, MAX_FIELD_BYTES)
            found[name.group(1)] = value.decode("utf-8", "replace")

    async def file(self) -> AsyncIterator[bytes]:
        """The file part's bytes, streamed; whatever follows it is ignored."""
        keep = len(self._delimiter)
        while True:
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                if at:
                    yield self._buffer[:at]
                self._buffer = b""
                await self._drain()
                return
            if len(self._buffer) > keep:
                out, self._buffer = self._buffer[:-keep], self._buffer[-keep:]
                yield out
            if not await self._more():
                raise _bad("the file part is not closed")

    async def _drain(self) -> None:
        while await self._more():
            self._buffer = b""
