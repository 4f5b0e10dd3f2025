"""Errors to HTTP statuses: the one place the shim decides, by the error's type.

Every answer that is not a prediction is ``{"message": "..."}`` as JSON. What a
client can send wrong is a 4xx; a 5xx means the model or the server failed.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from batch.errors import (
    BatchPredError,
    ConfigError,
    DeploymentError,
    IncompatibleModelError,
    ModelOutputError,
    PackageError,
    SchemaError,
    UserCodeError,
)
from batch.server.errors import (
    ForbiddenError,
    HumilityRejectedError,
    PayloadTooLargeError,
    RequestError,
    RetryLaterError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from connectors.errors import ConnectorConfigError, ConnectorError, InputFormatError

HUMILITY_REJECTED = 480  # DataRobot's status for a row a humility rule rejected
# most specific first: the first type an error is an instance of decides
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (PayloadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (HumilityRejectedError, HUMILITY_REJECTED),
    (RequestError, 400),
    (ConfigError, 400),
    (InputFormatError, 400),
    (ConnectorConfigError, 400),
    (SchemaError, 422),
    (IncompatibleModelError, 409),
    (DeploymentError, 404),
    (RetryLaterError, 503),
    (PackageError, 500),
    (ModelOutputError, 500),
    (UserCodeError, 500),
)


def status_of(exc: Exception) -> int:
    """The status of an error (500 for one the table does not know)."""
    return next((code for typ, code in STATUSES if isinstance(exc, typ)), 500)


def message_response(message: str, status: int, headers: dict[str, str] | None = None) -> \
        JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def error_response(exc: Exception) -> JSONResponse:
    """The response for an error of the engine, the shim or a connector."""
    headers = None
    if isinstance(exc, RetryLaterError):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, UnauthorizedError):
        headers = {"WWW-Authenticate": 'Bearer realm="batchpred"'}
    status = status_of(exc)
    message = str(exc) if status < 500 or isinstance(exc, BatchPredError | ConnectorError) \
        else f"internal error: {type(exc).__name__}"
    return message_response(message, status, headers)


def install_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"message": ...}``."""

    async def known(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return message_response(detail, exc.status_code, dict(exc.headers or {}) or None)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return message_response(f"invalid request: {problems}", 400)

    app.add_exception_handler(Exception, known)  # anything else: a 500 with a JSON message
    app.add_exception_handler(BatchPredError, known)
    app.add_exception_handler(ConnectorError, known)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(RequestValidationError, invalid)
