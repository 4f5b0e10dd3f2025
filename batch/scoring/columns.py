"""The output columns of a scored chunk, and the options that shape them.

They follow the Portable Prediction Server:

- regression: ``<target>_PREDICTION``
- binary: ``<target>_<label>_PREDICTION`` per class, ``<target>_PREDICTION``,
  ``THRESHOLD``, ``POSITIVE_CLASS``
- multiclass: ``<target>_<label>_PREDICTION`` per class, ``<target>_PREDICTION``

Passthrough columns come first and ``prediction_status`` (``OK`` or the reason
a row could not be scored) last.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from batch.errors import SchemaError
from batch.models.manifest import ModelManifest, TargetType
from batch.scoring.features import check_schema
from batch.scoring.humility import Humility

STATUS_COLUMN = "prediction_status"
STATUS_OK = "OK"


@dataclass(frozen=True, slots=True)
class ScoringOptions:
    """What to carry through and what to add beside the predictions."""

    passthrough: tuple[str, ...] = ()
    passthrough_all: bool = False
    status_column: bool = True
    humility: Humility | None = None  # rules that flag, override or reject scored rows


def failed_mask(status: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Per row, whether it has no prediction: its status is not ``OK`` (a row a humility
    rule flagged or overrode is ``OK; humility: ...``)."""
    return pc.invert(pc.starts_with(status, STATUS_OK))


def prediction_fields(manifest: ModelManifest) -> list[pa.Field]:
    """The prediction columns a package produces, in output order."""
    target = manifest.target
    name = target.name
    if target.type is TargetType.REGRESSION:
        return [pa.field(f"{name}_PREDICTION", pa.float64())]
    fields = [pa.field(f"{name}_{label}_PREDICTION", pa.float64()) for label in target.classes]
    fields.append(pa.field(f"{name}_PREDICTION", pa.string()))
    if target.type is TargetType.BINARY:
        fields += [pa.field("THRESHOLD", pa.float64()), pa.field("POSITIVE_CLASS", pa.string())]
    return fields


def passthrough_columns(input_schema: pa.Schema, options: ScoringOptions) -> list[str]:
    if options.passthrough_all:
        return list(input_schema.names)
    missing = [c for c in options.passthrough if c not in input_schema.names]
    if missing:
        raise SchemaError(
            f"passthrough column {', '.join(map(repr, missing))} is not in the input; "
            f"it has: {', '.join(input_schema.names)}"
        )
    return list(dict.fromkeys(options.passthrough))


def output_schema(
    manifest: ModelManifest, input_schema: pa.Schema, options: ScoringOptions
) -> pa.Schema:
    """The schema :func:`score_batch` produces; checks the input first.

    Raises:
        SchemaError: a required feature or a passthrough column is missing, or a
            passthrough column has the name of a prediction column.
    """
    check_schema(manifest, input_schema)
    fields = [input_schema.field(c) for c in passthrough_columns(input_schema, options)]
    predicted = prediction_fields(manifest)
    if options.status_column:
        predicted.append(pa.field(STATUS_COLUMN, pa.string()))
    clash = sorted({f.name for f in fields} & {f.name for f in predicted})
    if clash:
        raise SchemaError(
            f"passthrough column {', '.join(map(repr, clash))} has the name of an output "
            "column; drop it from the passthrough or rename it in the input"
        )
    return pa.schema(fields + predicted)
