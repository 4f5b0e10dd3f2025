"""The FastAPI app of the real-time shim, in the Portable Prediction Server's shape.

Single-model mode (one package)::

    POST /predictions    GET /info    GET /ping

Multi-model mode (deployments)::

    POST /deployments/{id}/predictions
    POST /predApi/v1.0/deployments/{id}/predictions   (DataRobot's Prediction API path)
    GET  /deployments/{id}/info    GET /deployments    GET /ping
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from batch.deployments import DeploymentRegistry
from batch.errors import BatchPredError
from batch.server.admission import DEFAULT_MAX_REQUESTS, Admission
from batch.server.auth import Tokens
from batch.server.body import read_limited
from batch.server.errors import ForbiddenError, QueryArgumentError
from batch.server.info import model_info, model_summary
from batch.server.models import RETRY_AFTER, ServedModel, ServedModels, deployed, with_fast_path
from batch.server.predict import Predictor
from batch.server.query import PredictionQuery
from batch.server.recorder import RequestRecorder, Watched
from batch.server.status import error_response, install_handlers, message_response
from batch.server.uploads import unpack_package

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
    480: {"description": "A humility rule of the deployment rejected a row (the message "
                         "names the row, the rule and the value)"},
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
    uploads: bool = False  # POST and DELETE /deployments/{id} (editor tokens only)
    max_requests: int = DEFAULT_MAX_REQUESTS  # at once in this process; past it, 503

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
    predictor = Predictor(models, config.max_payload, recorder,
                          Admission(config.max_requests))
    app.include_router(_common_routes(models))
    if config.single:
        app.include_router(_single_routes(predictor, models.names[0]))
    else:
        app.include_router(_deployment_routes(predictor))
        if config.uploads:
            app.include_router(_upload_routes(predictor, config))
    return app


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _editor(request: Request) -> None:
    """Raises ForbiddenError unless the request's token is an editor's."""
    caller = getattr(request.state, "caller", None)
    if caller is None or caller.role != "editor":
        who = f"consumer {caller.consumer!r}" if caller is not None else "this request"
        raise ForbiddenError(f"{who} may not change what is served: an editor token may")


def _upload_routes(predictor: Predictor, config: ServerConfig) -> APIRouter:
    router = APIRouter()
    models = predictor.models

    @router.post("/deployments/{deployment_id}", summary="Upload a package (editor)",
                 status_code=201, responses={400: {"description": "Not a package archive"},
                                             403: {"description": "Not an editor token"},
                                             409: {"description": "The package predicts "
                                                   "another target than the deployment"}})
    async def upload(request: Request, deployment_id: str) -> JSONResponse:
        _editor(request)
        if not _ID.match(deployment_id):
            raise QueryArgumentError(f"deployment id {deployment_id!r}: use 1-64 letters, "
                                     "digits, '.', '_' or '-'")
        body = await read_limited(request.stream(), config.max_payload)
        model = await run_in_threadpool(_deploy, deployment_id, body, config.max_payload)
        if predictor.recorder is not None:
            predictor.recorder.watch(model.name, await run_in_threadpool(watched, model))
        models.add(model)
        return JSONResponse(model_summary(model, loaded=False), status_code=201)

    @router.delete("/deployments/{deployment_id}", summary="Stop serving and delete (editor)")
    def delete(request: Request, deployment_id: str) -> JSONResponse:
        _editor(request)
        models.model(deployment_id)  # 404 naming the served ones
        DeploymentRegistry().remove(deployment_id)
        models.remove(deployment_id)
        return message_response(f"deployment {deployment_id!r} deleted", 200)

    return router


def watched(model: ServedModel, store: str | None = None) -> Watched:
    """How ``model``'s requests are recorded: its deployment's store (or ``store``), its
    package's baseline (none: health records only), and the association id its rows are
    logged under when the deployment tracks accuracy."""
    from batch.monitoring.baseline import read_baseline
    from batch.monitoring.stage import open_store, settings_of

    settings = settings_of(model.name)
    return Watched(model.name, model.package.digest, open_store(settings, store),
                   read_baseline(model.package),
                   association_id=settings.association_id if settings.tracks_accuracy else None,
                   manifest=model.package.manifest)


def _deploy(name: str, body: bytes, max_bytes: int) -> ServedModel:
    """Unpack the archive, store it as deployment ``name`` (replacing one), and serve it."""
    registry = DeploymentRegistry()
    with tempfile.TemporaryDirectory(prefix=".upload-") as folder:
        package = unpack_package(body, Path(folder), max_bytes=max_bytes)
        registry.create(name, package, replace=True)
    return with_fast_path(deployed(registry, name), registry.home / "onnx")


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

    @router.get("/ping", summary="Ready: every model loaded",
                responses={503: {"description": "Models are loading; see Retry-After"}})
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

    @router.get("/deployments/{deployment_id}/info", summary="A deployment's model",
                responses={404: {"description": "Unknown deployment"}})
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
