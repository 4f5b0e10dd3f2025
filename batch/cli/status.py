"""``batchpred status``: the deployments inventory, each with its stages' colours.

Per deployment: its champion, challengers and association id, and the colour
(with its rule) of drift over the last day, accuracy over the last 30 days and
service health over the last day, each from its own stage. A stage that cannot
run for a deployment (no baseline, a store that cannot be read) is grey with
the reason; it never stops the others.
"""

from __future__ import annotations

import json
from typing import Any

import click

from batch.errors import BatchPredError

_SEVERITY = {"red": 0, "yellow": 1, "green": 2, "grey": 3}


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table for people, or a JSON list.")
def status(fmt: str) -> None:
    """Every deployment with its drift, accuracy and health colours."""
    from batch.deployments import DeploymentRegistry

    rows = [_deployment(d) for d in DeploymentRegistry().list()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True, allow_nan=False))
        return
    if not rows:
        click.echo("no deployments yet (batchpred deploy create NAME --model PKG)")
        return
    header = ("deployment", "model", "challengers", "drift", "accuracy", "health")
    table = [(r["deployment"], f"{r['model']} ({r['champion'][:12]})", str(r["challengers"]),
              r["drift"]["colour"], r["accuracy"]["colour"], r["health"]["colour"])
             for r in sorted(rows, key=_worst)]
    widths = [max(len(c) for c in column) for column in zip(header, *table, strict=True)]
    for line in (header, *table):
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    notes = [f"{r['deployment']} {stage}: {r[stage]['rule']}" for r in rows
             for stage in ("drift", "accuracy", "health") if r[stage]["colour"] != "green"]
    if notes:
        click.echo("")
        for note in notes:
            click.echo(note)


def _worst(row: dict[str, Any]) -> tuple[int, str]:
    return min(_SEVERITY.get(row[s]["colour"], 4) for s in ("drift", "accuracy", "health")), \
        row["deployment"]


def _deployment(deployment: Any) -> dict[str, Any]:
    from batch.cli.monitoring import health_of
    from batch.monitoring.accuracy_stage import AccuracyRequest, run_accuracy
    from batch.monitoring.stage import DriftRequest, run_drift

    name = deployment.name
    return {
        "deployment": name, "model": f"{deployment.model_name} v{deployment.model_version}",
        "champion": deployment.package_digest, "challengers": len(deployment.challengers),
        "association_id": deployment.settings.association_id,
        "drift": _colour(lambda: run_drift(DriftRequest(name))["status"]),
        "accuracy": _colour(lambda: run_accuracy(AccuracyRequest(name))["status"]),
        "health": _colour(lambda: health_of(name)["status"]),
    }


def _colour(stage: Any) -> dict[str, Any]:
    from connectors.errors import ConnectorError

    try:
        found = stage()
    except (BatchPredError, ConnectorError) as exc:  # the stage cannot run: say why
        return {"colour": "grey", "rule": str(exc).splitlines()[0]}
    return {"colour": found["colour"], "rule": found["rule"]}
