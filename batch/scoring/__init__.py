"""One chunk: Arrow batch in, predictions out, shared by batch jobs, the HTTP shim and
monitoring.

- :mod:`~batch.scoring.features`: feature checks and coercion to the model's types;
- :mod:`~batch.scoring.columns`: the Portable Prediction Server's output columns;
- :mod:`~batch.scoring.chunk`: :func:`score_batch`, one batch through a scorer.

The names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batch.lazy import lazy_names

if TYPE_CHECKING:
    from batch.scoring.chunk import score_batch
    from batch.scoring.columns import (
        STATUS_COLUMN,
        STATUS_OK,
        ScoringOptions,
        output_schema,
        prediction_fields,
    )
    from batch.scoring.features import FeatureFrame, check_schema, coerce_features

_LAZY = {
    "score_batch": "batch.scoring.chunk",
    "STATUS_COLUMN": "batch.scoring.columns",
    "STATUS_OK": "batch.scoring.columns",
    "ScoringOptions": "batch.scoring.columns",
    "output_schema": "batch.scoring.columns",
    "prediction_fields": "batch.scoring.columns",
    "FeatureFrame": "batch.scoring.features",
    "check_schema": "batch.scoring.features",
    "coerce_features": "batch.scoring.features",
}

__all__ = [
    "FeatureFrame",
    "STATUS_COLUMN",
    "STATUS_OK",
    "ScoringOptions",
    "check_schema",
    "coerce_features",
    "output_schema",
    "prediction_fields",
    "score_batch",
]

__getattr__ = lazy_names(__name__, _LAZY)
