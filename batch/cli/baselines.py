"""``batchpred baseline``: add (or replace) a package's training profile for monitoring.

``package create`` writes one too, from the same training data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from batch.models.package import ModelPackage

IMPORTANCE_HELP = ("Feature importance: 'auto' (permutation importance on a seeded sample "
                   "of 2,000 training rows) or a YAML/JSON file of feature: value.")
HOLDOUT_HELP = "Holdout data to profile the predictions on (default: a training sample)."


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--training-data", required=True, help="Training data (CSV/Parquet/JSON lines).")
@click.option("--holdout", help=HOLDOUT_HELP)
@click.option("--importance", default="auto", show_default=True, help=IMPORTANCE_HELP)
def baseline(directory: Path, training_data: str, holdout: str | None, importance: str) -> None:
    """Write the monitoring baseline of the package in DIRECTORY (replacing one there)."""
    from batch.models.package import open_package

    pkg = add_baseline(open_package(directory), training_data, holdout=holdout,
                       importance=importance)
    click.echo(f"baseline written to {pkg.path / str(pkg.manifest.baseline)} "
               f"(package digest now {pkg.short_id})")


def add_baseline(package: ModelPackage, training_data: str, *, holdout: str | None,
                 importance: str) -> ModelPackage:
    """Profile ``training_data`` (and ``holdout``) and write the baseline into ``package``.

    Raises:
        ConfigError: a bad ``--importance`` file.
        SchemaError, ConnectorError: the data cannot be read or lacks a feature.
    """
    from batch.models.builder import training_table
    from batch.monitoring.baseline import build_baseline, read_importance, write_baseline

    weights = None if importance == "auto" else read_importance(Path(importance))
    built = build_baseline(package, training_table(training_data),
                           holdout=training_table(holdout) if holdout else None,
                           importance=weights)
    return write_baseline(package, built)
