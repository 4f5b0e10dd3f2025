"""One prediction request: body in, scored rows out, as JSON or CSV.

Checks run in the order a client can fix them: the content type (415), the
size (413), the model's readiness (503), the body (400), its fit to the model (422).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from batch.scoring.chunk import score_batch
from batch.server.body import decoded, read_limited
from batch.server.errors import PayloadFormatError, PayloadTooLargeError, UnsupportedMediaTypeError
from batch.server.models import Loaded, ServedModels
from batch.server.payload import MULTIPART, MediaType, read_rows, unsupported
from batch.server.query import PredictionQuery
from batch.server.responses import csv_body, json_body, rounded

CSV = "text/csv"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Predictor:
    """Answers prediction requests for the served models, within ``max_payload`` bytes."""

    models: ServedModels
    max_payload: int

    async def predict(self, request: Request, name: str, query: PredictionQuery) -> Response:
        """Score the request's rows with model ``name``; errors propagate to the handlers
        of :mod:`batch.server.status`."""
        started = time.perf_counter()
        self.models.model(name)
        header = request.headers.get("content-type")
        media = MediaType.parse(header)
        if media.type == MULTIPART:
            body, media = await self._multipart(request)
        elif media.is_csv or media.is_json:
            body = await self._body(request)
        else:
            raise unsupported(header)
        loaded = await run_in_threadpool(self.models.loaded, name)
        content = await run_in_threadpool(_scored_body, body, media, loaded, query,
                                          as_csv=_wants_csv(request))
        elapsed = round((time.perf_counter() - started) * 1000)
        return Response(content, media_type=CSV if _wants_csv(request) else JSON, headers={
            "X-DataRobot-Execution-Time": str(elapsed),
            "X-DataRobot-Model-Cache-Hit": "true" if loaded.cache_hit else "false",
        })

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_payload:
            raise PayloadTooLargeError(f"Content-Length {int(declared):,} is over the payload "
                                       f"limit of {self.max_payload:,} bytes")
        raw = await read_limited(request.stream(), self.max_payload)
        return decoded(raw, request.headers.get("content-encoding"), self.max_payload)

    async def _multipart(self, request: Request) -> tuple[bytes, MediaType]:
        """The form field ``file``: read with python-multipart, when it is installed."""
        if importlib.util.find_spec("multipart") is None:
            raise UnsupportedMediaTypeError(
                "multipart/form-data needs python-multipart, which this server does not "
                "have; send the file as the raw body with Content-Type: text/csv")
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > self.max_payload:
            raise PayloadTooLargeError(f"a multipart body needs a Content-Length within the "
                                       f"payload limit of {self.max_payload:,} bytes")
        form = await request.form(max_files=1, max_part_size=self.max_payload)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise PayloadFormatError("the multipart body has no file field named 'file'")
        data = await upload.read()
        filename = (upload.filename or "").lower()
        media = MediaType.parse(upload.content_type) if upload.content_type else MediaType(CSV)
        if not (media.is_csv or media.is_json):
            media = MediaType(JSON if filename.endswith(".json") else CSV)
        return data, media


def _scored_body(body: bytes, media: MediaType, loaded: Loaded, query: PredictionQuery, *,
                 as_csv: bool) -> bytes:
    package = loaded.model.package
    batch = read_rows(body, media, package.manifest.feature_names)
    scored = score_batch(batch, package, loaded.scorer, query.scoring_options)
    scored = rounded(scored, package.manifest, query.decimals)
    return csv_body(scored) if as_csv else json_body(scored, package.manifest)


def _wants_csv(request: Request) -> bool:
    """``Accept`` names text/csv before (or without) application/json."""
    accept = request.headers.get("accept", "").lower()
    csv_at, json_at = accept.find(CSV), accept.find(JSON)
    return csv_at >= 0 and (json_at < 0 or csv_at < json_at)
