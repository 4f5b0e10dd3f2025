"""``batchpred deploy``: name a package so jobs can use the name instead of a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from batch.cli.packages import echo_package
from batch.cli.score import pairs


@click.group()
def deploy() -> None:
    """Name a package so jobs can use the name instead of a path."""


@deploy.command("create")
@click.argument("name")
@click.option("--model", required=True, help="Model package directory.")
@click.option("--replace", is_flag=True, help="Point an existing deployment at this package.")
def deploy_create(name: str, model: str, replace: bool) -> None:
    """Create deployment NAME for a package."""
    from batch.deployments import DeploymentRegistry
    from batch.models.package import open_package

    d = DeploymentRegistry().create(name, open_package(model), replace=replace)
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
@click.option("--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A YAML or JSON file of settings (the keys `deploy settings NAME` prints).")
def deploy_settings(name: str, **kw: Any) -> None:
    """Show or change the settings of deployment NAME (monitoring store, drift thresholds)."""
    import json

    from batch.deployments import DeploymentRegistry

    registry = DeploymentRegistry()
    current = registry.get(name).settings
    changed = _changed_settings(current.model_dump(mode="json"), kw)
    if changed is not None:
        current = registry.update_settings(name, _validated(changed)).settings
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
    for key in ("alert_webhook", "alert_block"):
        if kw[key] is not None:
            data[key] = kw[key] or None
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
