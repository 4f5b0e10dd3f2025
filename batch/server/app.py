"""The FastAPI app of the real-time shim, in the Portable Prediction Server's shape.

Single-model mode (one package)::

    POST /predictions    GET /info    GET /ping

Multi-model mode (deployments)::

    POST /deployments/{id}/predictions
    POST /predApi/v1.0/deployments/{id}/predictions   (DataRobot's Prediction API path)
    GET  /deployments/{id}/info    GET /deployments    GET /ping
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from batch.errors import BatchPredError
from batch.server.auth import Tokens
from batch.server.info import model_info, model_summary
from batch.server.models import RETRY_AFTER, ServedModels
from batch.server.predict import Predictor
from batch.server.query import PredictionQuery
from batch.server.recorder import RequestRecorder
from batch.server.status import error_response, install_handlers, message_response

DEFAULT_MAX_PAYLOAD_MB = 50.0

_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example": "income,purpose\n52000,car\n"},
    "application/json": {"schema": {"oneOf": [
        {"type": "array", "items": {"type": "object"}},
        {"type": "object", "properties": {"data": {"type": "array",
                                                   "items": {"type": "object"}}}},
    ]}},
}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Predictions: {\"data\": [...]} as JSON, or CSV with Accept: text/csv",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    400: {"description": "Malformed body or query argument"},
    404: {"description": "Unknown deployment"},
    413: {"description": "Body over the payload limit"},
    415: {"description": "Unsupported content type or encoding"},
    422: {"description": "Rows that do not fit the model (a missing required column)"},
    503: {"description": "The model is loading; see Retry-After"},
}

Columns = Annotated[list[str], Query(alias="passthroughColumns",
                                     description="Input column to copy to the output.")]
ColumnSet = Annotated[str | None, Query(alias="passthroughColumnsSet",
                                        description="'all': copy every input column.")]
Decimals = Annotated[str | None, Query(alias="decimalsNumber",
                                       description="Round predicted values to this many "
                                       "decimal places.")]
ApiKey = Annotated[str | None, Header(alias="datarobot-key", description="Accepted, ignored.")]
Authorization = Annotated[str | None, Header(description="Accepted, ignored.")]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``single``: serve the one model at ``/predictions``; else by deployment id."""

    single: bool = False
    max_payload_mb: float = DEFAULT_MAX_PAYLOAD_MB
    tokens: Tokens | None = None  # None: no API tokens asked for

    @property
    def max_payload(self) -> int:
        return int(self.max_payload_mb * 2**20)


def create_app(models: ServedModels, config: ServerConfig,
               recorder: RequestRecorder | None = None) -> FastAPI:
    """The app; models start loading when it starts (see :class:`ServedModels`), and the
    requests' monitoring records are published until it stops (``recorder``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models.start_loading()
        if recorder is not None:
            recorder.start()
        try:
            yield
        finally:  # SIGTERM and Ctrl-C end the lifespan: the last micro-chunks go out
            if recorder is not None:
                recorder.close()

    app = FastAPI(title="batchpred prediction server", lifespan=lifespan,
                  description="Real-time scoring, compatible with DataRobot's Portable "
                  "Prediction Server.")
    install_handlers(app)
    if config.tokens is not None:
        _require_tokens(app, config.tokens)
    predictor = Predictor(models, config.max_payload, recorder)
    app.include_router(_common_routes(models))
    if config.single:
        app.include_router(_single_routes(predictor, models.names[0]))
    else:
        app.include_router(_deployment_routes(predictor))
    return app


OPEN_PATHS = frozenset({"/ping"})  # answered without a token: a load balancer's probe


def _require_tokens(app: FastAPI, tokens: Tokens) -> None:
    """Every request but the open ones needs a known API token (401, or 403 for a role
    that may not do what it asks)."""

    @app.middleware("http")
    async def check_token(request: Request, call_next: Any) -> Response:
        if request.url.path not in OPEN_PATHS:
            try:
                request.state.caller = tokens.caller(request.headers.get("authorization"))
            except BatchPredError as exc:
                return error_response(exc)
        return await call_next(request)  # type: ignore[no-any-return]


def _common_routes(models: ServedModels) -> APIRouter:
    router = APIRouter()

    @router.get("/ping", summary="Ready: every model loaded")
    def ping() -> JSONResponse:
        if models.ready:
            return message_response("OK", 200)
        return message_response("models are loading", 503, {"Retry-After": str(RETRY_AFTER)})

    return router


def _single_routes(predictor: Predictor, name: str) -> APIRouter:
    router = APIRouter()
    models = predictor.models

    @router.post("/predictions", summary="Score rows", openapi_extra=_BODY,
                 responses=_RESPONSES)
    async def predictions(request: Request, *, columns: Columns = [],  # noqa: B006
                          column_set: ColumnSet = None, decimals: Decimals = None) -> Response:
        query = PredictionQuery.parse(columns, column_set, decimals)
        return await predictor.predict(request, name, query)

    @router.get("/info", summary="The model: target, features, scorer")
    def info() -> dict[str, Any]:
        return model_info(models.model(name), loaded=models.is_loaded(name))

    return router


def _deployment_routes(predictor: Predictor) -> APIRouter:
    router = APIRouter()
    models = predictor.models

    @router.get("/deployments", summary="The served deployments")
    def deployments() -> dict[str, Any]:
        return {"data": [model_summary(models.model(n), loaded=models.is_loaded(n))
                         for n in models.names]}

    @router.get("/deployments/{deployment_id}/info", summary="A deployment's model")
    def info(deployment_id: str) -> dict[str, Any]:
        return model_info(models.model(deployment_id), loaded=models.is_loaded(deployment_id))

    @router.post("/deployments/{deployment_id}/predictions", summary="Score rows",
                 openapi_extra=_BODY, responses=_RESPONSES)
    @router.post("/predApi/v1.0/deployments/{deployment_id}/predictions",
                 summary="Score rows (DataRobot Prediction API path)", openapi_extra=_BODY,
                 responses=_RESPONSES)
    async def predictions(request: Request, deployment_id: str, *,
                          columns: Columns = [],  # noqa: B006
                          column_set: ColumnSet = None, decimals: Decimals = None,
                          datarobot_key: ApiKey = None,
                          authorization: Authorization = None) -> Response:
        query = PredictionQuery.parse(columns, column_set, decimals)
        return await predictor.predict(request, deployment_id, query)

    return router
