"""``batchpred deploy add-challenger | remove-challenger | replace | promote``: the models
of a deployment, with the guardrails of ``batch.models.compatibility``.

``deploy`` (``batch.cli.deployments``) adds :data:`COMMANDS` to itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from batch.deployments import Replacement

F = TypeVar("F", bound=Callable[..., Any])
# why a champion is replaced: the history records one of these (the registry takes any text)
REASONS = ("accuracy", "data_drift", "errors", "scheduled_refresh", "scoring_speed", "other")


def actor_option(command: F) -> F:
    """``--actor``: who makes the change, for the deployment's history."""
    return click.option("--actor", help="Who makes the change, for the history (default: "
                        "BATCHPRED_ACTOR, else the OS user).")(command)


def _replacing(command: F) -> F:
    for option in reversed([
        click.option("--keep-as-challenger", is_flag=True, help="Keep the old champion as "
                     "a challenger (within the cap of 5) instead of retiring it."),
        click.option("--force", is_flag=True, help="Also when the new champion needs "
                     "features the old one did not (inputs may lack them)."),
        actor_option,
    ]):
        command = option(command)
    return command


@click.command("add-challenger")
@click.argument("name")
@click.option("--model", required=True, help="Model package directory.")
@click.option("--id", "challenger_id", metavar="ID", help="Its short name (default: c1, "
              "c2, ...).")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@actor_option
def add_challenger(name: str, model: str, *, challenger_id: str | None, reason: str | None,
                   actor: str | None) -> None:
    """Score a package beside the champion of deployment NAME, to compare them.

    Refused when it predicts another target (name, type, classes, positive class).
    """
    from batch.deployments import DeploymentRegistry
    from batch.models.compatibility import added_features
    from batch.models.package import open_package

    registry = DeploymentRegistry()
    package = open_package(model)
    c = registry.add_challenger(name, package, challenger_id=challenger_id, actor=actor,
                                reason=reason)
    click.echo(f"deployment {name!r}: challenger {c.id!r} -> {c.model_name} "
               f"v{c.model_version} ({c.package_digest[:12]})")
    added = added_features(registry.package(name).manifest, package.manifest)
    if added:
        click.echo(f"warning: challenger {c.id!r} needs features the champion does not: "
                   f"{', '.join(added)} (rows without them fail its scoring)", err=True)


@click.command("remove-challenger")
@click.argument("name")
@click.option("--challenger", "challenger_id", required=True, metavar="ID",
              help="The challenger to remove.")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@actor_option
def remove_challenger(name: str, challenger_id: str, *, reason: str | None,
                      actor: str | None) -> None:
    """Stop scoring challenger ID beside the champion of deployment NAME."""
    from batch.deployments import DeploymentRegistry

    c = DeploymentRegistry().remove_challenger(name, challenger_id, actor=actor,
                                               reason=reason)
    click.echo(f"deployment {name!r}: challenger {c.id!r} ({c.model_name} "
               f"v{c.model_version}) removed")


@click.command("replace")
@click.argument("name")
@click.option("--model", required=True, help="Model package directory: the new champion.")
@click.option("--reason", required=True, type=click.Choice(REASONS), help="Why.")
@_replacing
def replace(name: str, model: str, reason: str, **kw: Any) -> None:
    """Make a package the champion of deployment NAME; its settings stay.

    Refused when it predicts another target than the champion (name, type, classes,
    positive class), or needs features the champion does not (unless --force).
    Running jobs keep the package they started with.
    """
    from batch.deployments import DeploymentRegistry
    from batch.models.package import open_package

    echo_replacement(DeploymentRegistry().replace(name, open_package(model), reason=reason,
                                                  **kw))


@click.command("promote")
@click.argument("name")
@click.option("--challenger", "challenger_id", required=True, metavar="ID",
              help="The challenger to make the champion.")
@click.option("--reason", type=click.Choice(REASONS), help="Why.")
@_replacing
def promote(name: str, challenger_id: str, reason: str | None, **kw: Any) -> None:
    """Make challenger ID the champion of deployment NAME, with the guardrails of
    `deploy replace`."""
    from batch.deployments import DeploymentRegistry

    echo_replacement(DeploymentRegistry().promote(name, challenger_id, reason=reason, **kw))


def echo_replacement(done: Replacement) -> None:
    """Say what a replacement did: the new champion, and what became of the old one."""
    old, new = done.before, done.after
    if not done.changed:
        click.echo(f"deployment {new.name!r}: {new.model_name} v{new.model_version} "
                   f"({new.package_digest[:12]}) is the champion already; nothing changed")
        return
    if done.forced_features:
        click.echo(f"warning: forced: the new champion needs features the old one did not: "
                   f"{', '.join(done.forced_features)}", err=True)
    fate = f"now challenger {done.kept_as!r}" if done.kept_as else "retired"
    click.echo(f"deployment {new.name!r} -> {new.model_name} v{new.model_version} "
               f"({new.package_digest[:12]}); the old champion {old.model_name} "
               f"v{old.model_version} ({old.package_digest[:12]}) is {fate}")


COMMANDS: tuple[click.Command, ...] = (add_challenger, remove_challenger, replace, promote)
