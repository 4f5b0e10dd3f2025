"""The request body as bytes: read within the payload limit, gzip undone.

The limit holds for what arrives and for what it decompresses to, so a small
gzip body cannot inflate past it.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from batch.server.errors import PayloadFormatError, PayloadTooLargeError, UnsupportedMediaTypeError


async def read_limited(stream: AsyncIterator[bytes], limit: int) -> bytes:
    """All of ``stream``; :class:`PayloadTooLargeError` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for part in stream:
        size += len(part)
        if size > limit:
            raise PayloadTooLargeError(_too_large(limit, "request body"))
        parts.append(part)
    return b"".join(parts)


def decoded(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone (``gzip`` or ``identity``).

    Raises:
        UnsupportedMediaTypeError: another encoding.
        PayloadFormatError: the body is not valid gzip.
        PayloadTooLargeError: it decompresses to more than ``limit`` bytes.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {content_encoding!r} is not supported; send gzip or identity"
        )
    return _gunzip(body, limit)


def _gunzip(body: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    rest = body
    try:
        while rest:  # a gzip stream may hold several members
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = inflater.decompress(rest, limit + 1 - size)
            size += len(chunk)
            if size > limit or inflater.unconsumed_tail:
                raise PayloadTooLargeError(_too_large(limit, "decompressed request body"))
            if not inflater.eof:
                raise PayloadFormatError("the gzip request body is truncated")
            out.append(chunk)
            rest = inflater.unused_data
    except zlib.error as exc:
        raise PayloadFormatError(f"the request body is not valid gzip: {exc}") from exc
    return b"".join(out)


def _too_large(limit: int, what: str) -> str:
    return (f"{what} is over the payload limit of {limit:,} bytes ({limit / 2**20:g} MB); "
            "send fewer rows per request or start the server with a larger --max-payload-mb")
