"""``batchpred package``: create and inspect model packages."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batch.cli.baselines import HOLDOUT_HELP, IMPORTANCE_HELP, add_baseline
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
@click.option("--holdout", help=HOLDOUT_HELP)
@click.option("--importance", default="auto", show_default=True, help=IMPORTANCE_HELP)
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also write the monitoring baseline from the training data.")
def package_create(directory: Path, **kw: Any) -> None:
    """Write a model package to DIRECTORY from an artifact and its training data.

    The package also gets its monitoring baseline (`batchpred baseline` replaces it).
    A package that cannot get its baseline is removed again: nothing half-made stays.
    """
    from batch.models.builder import PackageSpec, create_package

    pkg = create_package(directory, PackageSpec(
        artifact=kw["artifact"], training_data=kw["training_data"], target=kw["target"],
        kind=kw["kind"], target_type=TargetType(kw["target_type"]) if kw["target_type"] else None,
        positive_class=kw["positive_class"], threshold=kw["threshold"], name=kw["name"],
        version=kw["model_version"], association_id=kw["association_id"],
    ))
    if kw["baseline"]:
        try:
            pkg = add_baseline(pkg, kw["training_data"], holdout=kw["holdout"],
                               importance=kw["importance"])
        except BaseException:
            shutil.rmtree(pkg.path, ignore_errors=True)
            raise
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
