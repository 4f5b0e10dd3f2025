"""A scored batch (the columns :func:`~batch.scoring.chunk.score_batch` gives) as the
response body: the Portable Prediction Server's JSON, or the batch CSV layout.

JSON, per row in request order::

    {"rowId": 0, "prediction": "yes",
     "predictionValues": [{"label": "no", "value": 0.2}, {"label": "yes", "value": 0.8}],
     "predictionThreshold": 0.5,            # binary targets only
     "passthroughValues": {"loan_id": 7},   # only when passthrough columns were asked
     "predictionStatus": "column 'income' has 'abc' (expected a number)"}  # failed rows only

A regression row has one prediction value, labelled with the target's name.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batch.models.manifest import ModelManifest, TargetType
from batch.scoring.columns import STATUS_COLUMN, STATUS_OK, prediction_fields
from connectors.formats import FileOptions, encode_chunk

THRESHOLD_COLUMN = "THRESHOLD"


def rounded(scored: pa.RecordBatch, manifest: ModelManifest, decimals: int | None) -> \
        pa.RecordBatch:
    """``scored`` with its predicted values (not the threshold, not passthrough columns)
    rounded to ``decimals`` places; as it is when ``decimals`` is None."""
    if decimals is None:
        return scored
    names = {f.name for f in prediction_fields(manifest)
             if pa.types.is_floating(f.type) and f.name != THRESHOLD_COLUMN}
    first = _passthrough_count(scored, manifest)
    columns = [pc.round(col, decimals) if i >= first and scored.schema.names[i] in names
               else col for i, col in enumerate(scored.columns)]
    return pa.RecordBatch.from_arrays(columns, schema=scored.schema)


def csv_body(scored: pa.RecordBatch) -> bytes:
    """The batch column layout as CSV with a header, written as a batch job writes it."""
    return encode_chunk(scored, "csv", FileOptions(), gz=False, header=True)


def json_body(scored: pa.RecordBatch, manifest: ModelManifest) -> bytes:
    """The PPS JSON document of ``scored``."""
    return json.dumps({"data": json_rows(scored, manifest)}, allow_nan=False,
                      default=str).encode("utf-8")


def json_rows(scored: pa.RecordBatch, manifest: ModelManifest) -> list[dict[str, Any]]:
    target = manifest.target
    first = _passthrough_count(scored, manifest)
    passthrough = {name: _finite(scored.column(i).to_pylist())
                   for i, name in enumerate(scored.schema.names[:first])}
    status = scored.column(STATUS_COLUMN).to_pylist()
    labelled = _prediction_values(scored, manifest)
    predicted = scored.column(f"{target.name}_PREDICTION").to_pylist()
    rows = []
    for i in range(scored.num_rows):
        row: dict[str, Any] = {"rowId": i, "prediction": predicted[i],
                               "predictionValues": [{"label": label, "value": values[i]}
                                                    for label, values in labelled]}
        if target.type is TargetType.BINARY:
            row["predictionThreshold"] = target.threshold
        if first:
            row["passthroughValues"] = {name: values[i] for name, values in passthrough.items()}
        if status[i] != STATUS_OK:
            row["predictionStatus"] = status[i]
        rows.append(row)
    return rows


def _prediction_values(scored: pa.RecordBatch, manifest: ModelManifest) -> \
        list[tuple[str, list[float | None]]]:
    target = manifest.target
    if target.type is TargetType.REGRESSION:
        return [(target.name, scored.column(f"{target.name}_PREDICTION").to_pylist())]
    return [(label, scored.column(f"{target.name}_{label}_PREDICTION").to_pylist())
            for label in target.classes]


def _passthrough_count(scored: pa.RecordBatch, manifest: ModelManifest) -> int:
    """How many leading columns are passthrough: all but the predictions and the status."""
    return scored.num_columns - len(prediction_fields(manifest)) - 1


def _finite(values: list[Any]) -> list[Any]:
    """JSON has no NaN or infinity: they become null."""
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
