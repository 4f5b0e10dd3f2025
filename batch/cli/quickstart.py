"""``batchpred quickstart``: sample data, a trained model, a deployment, a scored file.

The job runs through the runner the command line hands down (:mod:`batch.cli.context`):
in this process by default; the installed ``batchpred`` runs it as a Prefect flow.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batch.cli.context import CliContext, JobRunner

if TYPE_CHECKING:
    from batch.engine.report import JobReport

DEPLOYMENT = "credit-risk"


@click.command()
@click.option("--rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True,
              help="Rows of sample data to score.")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Where to put the sample data (default: <home>/quickstart).")
@click.option("--workers", type=click.IntRange(min=0), default=None)
@click.pass_obj
def quickstart(context: CliContext | None, rows: int, directory: Path | None,
               workers: int | None) -> None:
    """Make sample data, train and package a model, deploy it and score the data.

    The scoring runs as the command line's job runner says: the installed
    batchpred runs it as the batch-score Prefect flow (run history, artifacts).
    """
    with (context or CliContext()).job_runner() as run:
        run_quickstart(rows=rows, directory=directory, workers=workers, echo=click.echo,
                       run=run)


def run_quickstart(
    *,
    rows: int = 1_000_000,
    directory: Path | None = None,
    workers: int | None = None,
    echo: Callable[[str], object] = print,
    run: JobRunner | None = None,
) -> JobReport:
    """Build everything under ``directory`` (default ``<home>/quickstart``) and score.

    ``run`` scores the job: by default right here with a progress line.
    """
    import joblib
    import pyarrow.csv as pcsv

    from batch.cli.baselines import add_baseline
    from batch.cli.context import run_with_progress
    from batch.cli.progress import summary_line
    from batch.cli.sample_data import SEED, TARGET, TRAIN_ROWS, credit_table, train_model
    from batch.deployments import DeploymentRegistry
    from batch.engine.spec import JobSpec
    from batch.models.builder import PackageSpec, create_package
    from batch.settings import home_dir

    root = (directory or home_dir() / "quickstart").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train = credit_table(TRAIN_ROWS, seed=SEED + 1)
    pcsv.write_csv(train, root / "credit_train.csv")
    scoring = credit_table(rows).drop_columns([TARGET])
    pcsv.write_csv(scoring, root / "credit_score.csv")
    echo(f"sample data: {rows:,} rows in {root / 'credit_score.csv'} "
         f"({time.perf_counter() - started:.1f} s)")
    joblib.dump(train_model(train), root / "model.joblib")
    shutil.rmtree(root / "package", ignore_errors=True)
    package = create_package(root / "package", PackageSpec(
        artifact=root / "model.joblib", training_data=str(root / "credit_train.csv"),
        target=TARGET, positive_class="yes", name="credit-risk", association_id="loan_id",
    ))
    package = add_baseline(package, str(root / "credit_train.csv"), holdout=None,
                           importance="auto")
    echo(f"model package: {package.path} ({package.short_id}), with its monitoring baseline")
    DeploymentRegistry().create(DEPLOYMENT, package, replace=True)
    echo(f"deployment: {DEPLOYMENT}")
    output = root / "predictions.csv"
    spec = JobSpec(model=DEPLOYMENT, input=str(root / "credit_score.csv"), output=str(output),
                   passthrough=("loan_id",), workers=workers, overwrite=True)
    report = (run or run_with_progress)(spec)
    echo(summary_line(report))
    echo(f"try: batchpred score --model {DEPLOYMENT} --input {root / 'credit_score.csv'} "
         f"--output predictions.parquet --passthrough loan_id")
    echo(f"and: batchpred drift {DEPLOYMENT}   (its rows against the training data's)")
    return report
