"""Which monitoring stages can run for a deployment, and why one cannot.

Drift, health and the deployment's history always can. Accuracy needs the
prediction log joined to actuals: a deployment without an association id, or
with accuracy off, has none. The challenger comparison needs challengers. A
stage that runs may still find nothing to judge (no predictions in the window,
no challenger rows): :func:`empty_reason` says so from its document. Callers
leave such a stage out with the reason (a note in the report, a log line in the
flow) instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from batch.deployments import Deployment

STAGES = ("drift", "accuracy", "challengers", "health", "history")


@dataclass(frozen=True, slots=True)
class StagePlan:
    """The stages to run, in :data:`STAGES` order, and the reason of each one left out."""

    run: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)


def stage_plan(deployment: Deployment, wanted: Iterable[str] = STAGES) -> StagePlan:
    """The stages of ``wanted`` that can run for ``deployment``.

    Raises:
        ValueError: a name in ``wanted`` is no stage.
    """
    asked = set(wanted)
    unknown = sorted(asked - set(STAGES))
    if unknown:
        raise ValueError(f"no stage {unknown[0]!r}; the stages are {', '.join(STAGES)}")
    left_out = {stage: why for stage in STAGES if stage in asked
                for why in [_cannot_run(deployment, stage)] if why is not None}
    return StagePlan(tuple(s for s in STAGES if s in asked and s not in left_out), left_out)


def _cannot_run(deployment: Deployment, stage: str) -> str | None:
    settings, name = deployment.settings, deployment.name
    if stage == "accuracy" and settings.association_id is None:
        return ("no association id, so no predictions are kept for actuals (batchpred "
                f"deploy settings {name} --association-id COLUMN)")
    if stage == "accuracy" and not settings.accuracy:
        return f"accuracy is off (batchpred deploy settings {name} --accuracy)"
    if stage == "challengers" and not deployment.challengers:
        return f"no challengers (batchpred deploy add-challenger {name} --model PKG)"
    return None


def empty_reason(doc: Mapping[str, Any]) -> str | None:
    """Why a stage's document has nothing to show (None: it has something)."""
    kind = doc.get("kind")
    if kind == "accuracy" and not doc.get("predictions"):
        return "no predictions logged in the window"
    if kind == "challengers" and not doc.get("challengers"):
        return "no challenger predictions in the window"
    return None
