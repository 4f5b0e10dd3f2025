"""``batchpred deploy``: name a package so jobs can use the name instead of a path."""

from __future__ import annotations

import click

from batch.cli.packages import echo_package


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
