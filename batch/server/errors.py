"""Errors of the HTTP shim: what a request can get wrong, and models still loading.

They hang under the engine's root, so the shim's one mapping to status codes
(:mod:`batch.server.status`) decides by type alone::

    BatchPredError
    ├── RequestError(ValueError)             a request the shim cannot take (400)
    │   ├── PayloadFormatError               a body that does not parse, or holds no rows (400)
    │   ├── QueryArgumentError               a bad query argument (400)
    │   ├── PayloadTooLargeError             a body over the payload limit (413)
    │   └── UnsupportedMediaTypeError        a content type or encoding not taken (415)
    │   └── HumilityRejectedError            a humility rule rejected a row (480)
    ├── UnauthorizedError(PermissionError)  no API token, or an unknown one (401)
    ├── ForbiddenError(PermissionError)     a token whose role may not do this (403)
    └── RetryLaterError(RuntimeError)        not now: retry after ``retry_after`` s (503)
        ├── ModelsLoadingError               the model is still loading
        └── SaturatedError                   as many requests in progress as it takes
"""

from __future__ import annotations

from batch.errors import BatchPredError


class RequestError(BatchPredError, ValueError):
    """A request the shim cannot take; the message names the argument, column or limit."""


class PayloadFormatError(RequestError):
    """The body is not the CSV or JSON it claims to be, or it holds no rows."""


class QueryArgumentError(RequestError):
    """A query argument has a bad value or clashes with another."""


class PayloadTooLargeError(RequestError):
    """The body (or what it decompresses to) is over the payload limit."""


class UnsupportedMediaTypeError(RequestError):
    """A content type, charset or content encoding the shim does not read."""


class HumilityRejectedError(RequestError):
    """A deployment's humility rule rejected a row of the request (DataRobot's 480)."""


class RetryLaterError(BatchPredError, RuntimeError):
    """Not now; ``retry_after`` says in how many seconds to ask again."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelsLoadingError(RetryLaterError):
    """The model is still loading."""


class SaturatedError(RetryLaterError):
    """The server has as many requests in progress as it takes: retry later."""


class UnauthorizedError(BatchPredError, PermissionError):
    """The request carries no API token, or one the server does not know."""


class ForbiddenError(BatchPredError, PermissionError):
    """The request's token is known, but its role may not do this."""
