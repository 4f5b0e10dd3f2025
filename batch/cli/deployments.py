"""``batchpred deploy``: name a package so jobs can use the name instead of a path; its
settings, its history, and (``batch.cli.challengers``) its challengers and champion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.cli.challengers import COMMANDS, actor_option, echo_replacement
from batch.cli.packages import echo_package
from batch.cli.score import pairs

if TYPE_CHECKING:
    from batch.deployments import HistoryEvent


@click.group()
def deploy() -> None:
    """Name a package so jobs can use the name instead of a path."""


@deploy.command("create")
@click.argument("name")
@click.option("--model", required=True, help="Model package directory.")
@click.option("--association-id", metavar="COLUMN", help="The input column that identifies "
              "a row, to join actuals later (default: the package's; '' for none).")
@click.option("--replace", is_flag=True, help="Point an existing deployment at this package "
              "(as `deploy replace` does; the old champion is retired).")
@click.option("--force", is_flag=True, help="With --replace: also when the package needs "
              "features the champion did not.")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@actor_option
def deploy_create(name: str, model: str, replace: bool, **kw: Any) -> None:
    """Create deployment NAME for a package."""
    from batch.deployments import DeploymentRegistry
    from batch.models.package import open_package

    registry = DeploymentRegistry()
    package = open_package(model)
    if replace and kw["association_id"] is None and registry.find(name) is not None:
        echo_replacement(registry.replace(name, package, force=kw["force"],
                                          actor=kw["actor"], reason=kw["reason"]))
        return
    d = registry.create(name, package, replace=replace, force=kw["force"],
                        association_id=kw["association_id"], actor=kw["actor"],
                        reason=kw["reason"])
    click.echo(f"deployment {d.name!r} -> {d.model_name} v{d.model_version} "
               f"({d.package_digest[:12]})")


@deploy.command("list")
def deploy_list() -> None:
    """List deployments."""
    from batch.deployments import DeploymentRegistry

    deployments = DeploymentRegistry().list()
    if not deployments:
        click.echo("no deployments yet (batchpred deploy create NAME --model PKG)")
    for d in deployments:
        click.echo(f"{d.name}\t{d.model_name} v{d.model_version}\t{d.package_digest[:12]}\t"
                   f"{d.created_at:%Y-%m-%d %H:%M}")


@deploy.command("show")
@click.argument("name")
def deploy_show(name: str) -> None:
    """Show deployment NAME and its package."""
    from batch.deployments import DeploymentRegistry

    registry = DeploymentRegistry()
    d = registry.get(name)
    click.echo(f"deployment: {d.name}\ncreated:    {d.created_at:%Y-%m-%d %H:%M:%S %Z}")
    accuracy = "on" if d.settings.tracks_accuracy else "off"
    click.echo(f"association id: {d.settings.association_id or '(none)'} "
               f"(accuracy {accuracy})")
    click.echo(f"challengers: {len(d.challengers) or 'none'}")
    for c in d.challengers:
        click.echo(f"  {c.id}\t{c.model_name} v{c.model_version}\t{c.package_digest[:12]}\t"
                   f"added {c.added_at:%Y-%m-%d %H:%M}\t{c.package_path}")
    echo_package(registry.package(name))


@deploy.command("settings")
@click.argument("name")
@click.option("--monitoring-store", metavar="URI", help="Where the deployment's jobs write "
              "monitoring records (a directory or URL; '' for the home's default).")
@click.option("--monitoring-store-option", multiple=True, metavar="KEY=VALUE",
              help="Storage option of that store (endpoint_url, profile, region, ...).")
@click.option("--drift-threshold", multiple=True, metavar="KEY=VALUE",
              help="A drift threshold, such as psi_red=0.3 or min_rows=1000 (see "
              "docs/monitoring.md for the keys).")
@click.option("--star", multiple=True, metavar="FEATURE", help="Count FEATURE as "
              "high-importance whatever its importance.")
@click.option("--alert-webhook", metavar="URL", help="POST drift status changes here "
              "('' for none).")
@click.option("--alert-block", metavar="NAME", help="A Prefect notification block to tell "
              "of drift status changes ('' for none).")
@click.option("--association-id", metavar="COLUMN", help="The input column that identifies "
              "a row, to join actuals later ('' for none).")
@click.option("--accuracy/--no-accuracy", default=None, help="Track accuracy (on by default "
              "when there is an association id).")
@click.option("--slo-p95-ms", type=click.FloatRange(min=0, min_open=True), metavar="MS",
              help="Service health: the p95 latency objective (default 1000).")
@click.option("--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A YAML or JSON file of settings (the keys `deploy settings NAME` prints).")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@actor_option
def deploy_settings(name: str, reason: str | None, actor: str | None, **kw: Any) -> None:
    """Show or change the settings of deployment NAME (monitoring store, drift thresholds,
    association id, accuracy, latency objective)."""
    from batch.deployments import DeploymentRegistry

    registry = DeploymentRegistry()
    current = registry.get(name).settings
    changed = _changed_settings(current.model_dump(mode="json"), kw)
    if changed is not None:
        current = registry.update_settings(name, _validated(changed), actor=actor,
                                           reason=reason).settings
    click.echo(json.dumps(current.model_dump(mode="json"), indent=2, sort_keys=True))


def _changed_settings(data: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any] | None:
    """The settings with the options applied; None when no option changes anything."""
    import yaml

    from batch.errors import ConfigError, yaml_message

    touched = False
    if kw["from_file"] is not None:
        try:
            loaded = yaml.safe_load(kw["from_file"].read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"--from-file {kw['from_file']}: not valid YAML: "
                              f"{yaml_message(exc)}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--from-file {kw['from_file']}: expected a mapping of settings")
        drift = {**data["drift"], **(loaded.pop("drift", None) or {})}
        data = {**data, **loaded, "drift": drift}
        touched = True
    if kw["monitoring_store"] is not None:
        data["monitoring_store"] = kw["monitoring_store"] or None
        touched = True
    if kw["monitoring_store_option"]:
        data["monitoring_store_options"] = pairs(kw["monitoring_store_option"],
                                                 "--monitoring-store-option")
        touched = True
    for key in ("alert_webhook", "alert_block", "association_id"):
        if kw[key] is not None:
            data[key] = kw[key] or None
            touched = True
    for key in ("accuracy", "slo_p95_ms"):
        if kw[key] is not None:
            data[key] = kw[key]
            touched = True
    thresholds = pairs(kw["drift_threshold"], "--drift-threshold")
    if thresholds or kw["star"]:
        data["drift"] = {**data["drift"], **thresholds}
        if kw["star"]:
            data["drift"]["starred"] = sorted(set(kw["star"]))
        touched = True
    return data if touched else None


def _validated(data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from batch.deployments import DeploymentSettings
    from batch.errors import ConfigError, validation_message
    from batch.monitoring.stage import store_options

    try:
        settings = DeploymentSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("deployment settings: " + validation_message(exc, first=True)
                          ) from exc
    store_options(settings.monitoring_store_options)  # a bad key fails here, not in a job
    if settings.monitoring_store is not None:
        from connectors import check_uri

        check_uri(settings.monitoring_store)
    return settings


@deploy.command("remove")
@click.argument("name")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@actor_option
def deploy_remove(name: str, reason: str | None, actor: str | None) -> None:
    """Delete deployment NAME. Its packages stay in the home's store (running jobs keep
    theirs) and its history stays: a deployment created again as NAME continues it."""
    from batch.deployments import DeploymentRegistry

    d = DeploymentRegistry().remove(name, actor=actor, reason=reason)
    click.echo(f"deployment {d.name!r} removed ({d.model_name} v{d.model_version}, "
               f"{len(d.challengers)} challengers)")


@deploy.command("history")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Tab-separated lines, or a JSON array of the events.")
def deploy_history(name: str, fmt: str) -> None:
    """Show what changed in deployment NAME: when, who, why, and the packages before and
    after (one line per event, oldest first)."""
    from batch.deployments import DeploymentRegistry

    events = DeploymentRegistry().history(name)
    if fmt == "json":
        click.echo(json.dumps([e.model_dump(mode="json") for e in events], indent=2))
        return
    for e in events:
        before = e.before.champion[:12] if e.before else "-"
        after = e.after.champion[:12] if e.after else "-"
        click.echo(f"{e.time:%Y-%m-%d %H:%M:%S}Z\t{e.event}\t{e.actor}\t{e.reason or '-'}\t"
                   f"{before} -> {after}\t{_details(e)}")


def _details(event: HistoryEvent) -> str:
    """What else an event says, for the table: the challenger, the old champion's fate,
    the forced features, the settings that changed."""
    parts = [f"challenger {event.challenger}"] if event.challenger else []
    if event.event in ("replaced", "promoted"):
        parts.append(f"old champion kept as {event.kept_as}" if event.kept_as
                     else "old champion retired")
    if event.forced_features:
        parts.append(f"forced: {', '.join(event.forced_features)}")
    parts += [f"{key}: {json.dumps(c.old)} -> {json.dumps(c.new)}"
              for key, c in event.changes.items()]
    return "; ".join(parts) or "-"


for _command in COMMANDS:
    deploy.add_command(_command)
