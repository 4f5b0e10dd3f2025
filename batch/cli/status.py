"""``batchpred status``: the deployments inventory, each with its stages' colours.

Per deployment: its champion, challengers and association id, and the colour
(with its rule) of drift over the last day, accuracy over the last 30 days, the
challenger comparison over the last 30 days (``comparison``: yellow when a
challenger is recommended for promotion) and service health over the last day,
each from its own stage. A stage that cannot run for a deployment (no baseline,
no challengers, a store that cannot be read) is grey with the reason; it never
stops the others.
"""

from __future__ import annotations

import json
from typing import Any

import click

from batch.errors import BatchPredError

_SEVERITY = {"red": 0, "yellow": 1, "green": 2, "grey": 3}
STAGES = ("drift", "accuracy", "comparison", "health")  # "challengers" is their count


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or a JSON list.")
def status(fmt: str) -> None:
    """Every deployment with its drift, accuracy, challenger comparison and health
    colours."""
    from batch.deployments import DeploymentRegistry

    rows = [_deployment(d) for d in DeploymentRegistry().list()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True, allow_nan=False))
        return
    if not rows:
        click.echo("no deployments yet (batchpred deploy create NAME --model PKG)")
        return
    header = ("deployment", "model", "challengers", *STAGES)
    table = [(r["deployment"], f"{r['model']} ({r['champion'][:12]})", str(r["challengers"]),
              *(r[stage]["colour"] for stage in STAGES))
             for r in sorted(rows, key=_worst)]
    widths = [max(len(c) for c in column) for column in zip(header, *table, strict=True)]
    for line in (header, *table):
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    notes = [f"{r['deployment']} {stage}: {r[stage]['rule']}" for r in rows
             for stage in STAGES if r[stage]["colour"] != "green"]
    if notes:
        click.echo("")
        for note in notes:
            click.echo(note)


def _worst(row: dict[str, Any]) -> tuple[int, str]:
    return min(_SEVERITY.get(row[s]["colour"], 4) for s in STAGES), row["deployment"]


def _deployment(deployment: Any) -> dict[str, Any]:
    from batch.cli.monitoring import health_of
    from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
    from batch.monitoring.challengers import ChallengersRequest, run_challengers
    from batch.monitoring.plan import stage_plan
    from batch.monitoring.stage import DriftRequest, run_drift

    name = deployment.name
    # no challengers: grey with the plan's reason, without reading 30 days of predictions
    why = stage_plan(deployment, ("challengers",)).left_out.get("challengers")
    return {
        "deployment": name, "model": f"{deployment.model_name} v{deployment.model_version}",
        "champion": deployment.package_digest, "challengers": len(deployment.challengers),
        "association_id": deployment.settings.association_id,
        "drift": _colour(lambda: run_drift(DriftRequest(name))["status"]),
        "accuracy": _colour(lambda: run_accuracy(AccuracyRequest(name))["status"]),
        "comparison": {"colour": "grey", "rule": why} if why is not None else _colour(
            lambda: run_challengers(ChallengersRequest(name))["status"]),
        "health": _colour(lambda: health_of(name)["status"]),
    }


def _colour(stage: Any) -> dict[str, Any]:
    from connectors.errors import ConnectorError

    try:
        found = stage()
    except (BatchPredError, ConnectorError) as exc:  # the stage cannot run: say why
        return {"colour": "grey", "rule": str(exc).splitlines()[0]}
    return {"colour": found["colour"], "rule": found["rule"]}
