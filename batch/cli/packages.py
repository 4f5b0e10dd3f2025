"""``batchpred package``: create and inspect model packages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.models.kinds import TargetType

if TYPE_CHECKING:
    from batch.models.package import ModelPackage


@click.group()
def package() -> None:
    """Create and inspect model packages."""


@package.command("create")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--artifact", required=True, type=click.Path(path_type=Path),
              help="Model file (.joblib/.pkl, .onnx) or a directory with custom.py.")
@click.option("--training-data", required=True, help="Training data (CSV/Parquet/JSON lines).")
@click.option("--target", required=True, help="Target column in the training data.")
@click.option("--type", "target_type", type=click.Choice([t.value for t in TargetType]),
              help="Target type (default: inferred).")
@click.option("--positive-class", help="Binary positive class (default: the model's last).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--kind", help="Artifact kind: sklearn, onnx, python (default: from the file).")
@click.option("--name", help="Model name (default: the artifact's name).")
@click.option("--version", "model_version", default="1", show_default=True)
@click.option("--association-id", help="Column that identifies rows, to join actuals later.")
def package_create(directory: Path, **kw: Any) -> None:
    """Write a model package to DIRECTORY from an artifact and its training data."""
    from batch.models.builder import PackageSpec, create_package

    pkg = create_package(directory, PackageSpec(
        artifact=kw["artifact"], training_data=kw["training_data"], target=kw["target"],
        kind=kw["kind"], target_type=TargetType(kw["target_type"]) if kw["target_type"] else None,
        positive_class=kw["positive_class"], threshold=kw["threshold"], name=kw["name"],
        version=kw["model_version"], association_id=kw["association_id"],
    ))
    click.echo(f"created {pkg.label} at {pkg.path}")


@package.command("info")
@click.argument("directory", type=click.Path(path_type=Path))
def package_info(directory: Path) -> None:
    """Print a package's manifest and digest."""
    from batch.models.package import open_package

    echo_package(open_package(directory))


def echo_package(pkg: ModelPackage) -> None:
    click.echo(f"package: {pkg.path}")
    click.echo(f"digest:  {pkg.digest}")
    click.echo(pkg.manifest.to_yaml().rstrip())
