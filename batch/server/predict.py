"""One prediction request: body in, scored rows out, as JSON or CSV.

Checks run in the order a client can fix them: the content type (415), the
size (413), the model's readiness (503), the body (400), its fit to the model (422).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from batch.scoring.chunk import ScoredRows, score_rows
from batch.scoring.columns import STATUS_COLUMN, failed_mask
from batch.scoring.features import FeatureFrame, coerce_features
from batch.server.admission import Admission
from batch.server.body import decoded, read_limited
from batch.server.errors import (
    HumilityRejectedError,
    PayloadFormatError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from batch.server.models import Loaded, ServedModels
from batch.server.payload import MULTIPART, MediaType, read_rows, unsupported
from batch.server.query import PredictionQuery
from batch.server.recorder import RequestRecorder, Segment
from batch.server.responses import csv_body, json_body, rounded
from batch.server.status import status_of

_SCORING = threading.Lock()
CSV = "text/csv"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Predictor:
    """Answers prediction requests for the served models, within ``max_payload`` bytes."""

    models: ServedModels
    max_payload: int
    recorder: RequestRecorder | None = None  # monitoring records of the requests
    admission: Admission = field(default_factory=Admission)  # 503 past its limit

    async def predict(self, request: Request, name: str, query: PredictionQuery) -> Response:
        """Score the request's rows with model ``name``; errors propagate to the handlers
        of :mod:`batch.server.status` (and are recorded as the request's health)."""
        started = time.perf_counter()
        try:
            with self.admission.admitted():
                return await self._predict(request, name, query, started)
        except HumilityRejectedError:
            raise  # recorded already, with its rows and the rules' counts
        except Exception as exc:
            if self.recorder is not None:
                self.recorder.failed(name, status_of(exc), time.perf_counter() - started,
                                     segment=segment_of(request))
            raise

    async def _predict(self, request: Request, name: str, query: PredictionQuery,
                       started: float) -> Response:
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
        answer = await run_in_threadpool(
            _scored_body, body, media, loaded, query, as_csv=_wants_csv(request))
        seconds = time.perf_counter() - started
        if self.recorder is not None:  # queued: counted off the request path
            rules = loaded.model.humility
            fired = () if rules is None else tuple(zip(rules.keys, answer.scored.humility,
                                                       strict=True))
            self.recorder.scored(name, answer.features, answer.scored.batch,
                                 failed=_failed_rows(answer.scored.batch), seconds=seconds,
                                 segment=segment_of(request), humility=fired,
                                 rows=answer.rows)
        rejected = answer.scored.rejected
        if rejected is not None:  # recorded as scored (with the rules' counts), then refused
            raise HumilityRejectedError(_rejection(answer.scored.batch, rejected))
        elapsed = round(seconds * 1000)
        return Response(answer.content, media_type=CSV if _wants_csv(request) else JSON, headers={
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


@dataclass(frozen=True, slots=True)
class _Answer:
    content: bytes  # the response body (empty when a row was rejected)
    features: FeatureFrame  # for the monitoring records: counted unrounded, as a batch
    scored: ScoredRows  # job counts them
    rows: pa.RecordBatch  # the request's rows (their association id, for the log)


def _scored_body(body: bytes, media: MediaType, loaded: Loaded, query: PredictionQuery, *,
                 as_csv: bool) -> _Answer:
    """The response body, and the features and scored rows."""
    package = loaded.model.package
    batch = read_rows(body, media, package.manifest.feature_names)
    options = query.scoring_options
    if loaded.model.humility is not None:
        options = replace(options, humility=loaded.model.humility)
    with _SCORING:
        features = coerce_features(batch, package.manifest)
        scored = score_rows(batch, package, loaded.scorer, options, features=features)
    if scored.rejected is not None:
        return _Answer(b"", features, scored, batch)
    shown = rounded(scored.batch, package.manifest, query.decimals)
    content = csv_body(shown) if as_csv else json_body(shown, package.manifest)
    return _Answer(content, features, scored, batch)


def _rejection(scored: pa.RecordBatch, rows: np.ndarray) -> str:
    """The 480's message: the first rejected row's reason, and how many were rejected."""
    first = int(rows[0])
    reason = scored.column(STATUS_COLUMN)[first].as_py()
    more = f" ({len(rows)} of {scored.num_rows} rows rejected)" if len(rows) > 1 else ""
    return f"row {first}: {reason}{more}"


def segment_of(request: Request) -> Segment:
    """Who sent ``request``: its token's consumer (when tokens are on) and address."""
    caller = getattr(request.state, "caller", None)
    return Segment(caller.consumer if caller is not None else None,
                   request.client.host if request.client is not None else None)


def _failed_rows(scored: pa.RecordBatch) -> int:
    if STATUS_COLUMN not in scored.schema.names:
        return 0
    return int(pc.sum(failed_mask(scored.column(STATUS_COLUMN))).as_py() or 0)


def _wants_csv(request: Request) -> bool:
    """``Accept`` names text/csv before (or without) application/json."""
    accept = request.headers.get("accept", "").lower()
    csv_at, json_at = accept.find(CSV), accept.find(JSON)
    return csv_at >= 0 and (json_at < 0 or csv_at < json_at)
