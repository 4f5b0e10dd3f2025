"""Humility rules in a batch job: the deployment's rules, fixed at the job's start, applied
to every chunk; rejected rows fail (and are quarantined); each firing counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pytest

from batch.cli.sample_data import TARGET
from batch.deployments import DeploymentRegistry
from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobStore
from batch.errors import ConfigError
from batch.models import open_package
from batch.monitoring.drift import merge_table
from batch.monitoring.stage import DriftRequest, run_drift
from batch.monitoring.store import MonitoringStore
from batch.scoring.humility import HumilityRule

RULES = (
    HumilityRule(name="unsure", trigger="uncertain_prediction", lower=0.45, upper=0.55,
                 action="reject"),
    HumilityRule(name="income", trigger="outlying_input", feature="income",
                 action="override", value="no"),
    HumilityRule(name="any-outlier", trigger="outlying_input"),
)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _expected(watched: Path, workload) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Which input rows each rule fires on, from the package scored without rules."""
    from batch.models.cache import process_cache
    from batch.monitoring.baseline import read_baseline
    from batch.scoring.chunk import score_batch
    from batch.scoring.columns import ScoringOptions

    package = open_package(watched)
    batch = workload.table.combine_chunks().to_batches()[0]
    plain = score_batch(batch, package, process_cache().get(package), ScoringOptions())
    p = plain.column(f"{TARGET}_yes_PREDICTION").to_numpy(zero_copy_only=False)
    baseline = read_baseline(package)
    assert baseline is not None
    fired = {}
    for profile in baseline.features:
        x = batch.column(profile.name).to_numpy(zero_copy_only=False).astype(float)
        with np.errstate(invalid="ignore"):
            fired[profile.name] = (x < profile.min) | (x > profile.max)
    fired["positive"] = p  # type: ignore[assignment]
    return fired


def test_a_deployments_rules_apply_to_its_jobs_exactly_once(watched, workload, home, tmp_path
                                                           ) -> None:  # type: ignore[no-untyped-def]
    registry = DeploymentRegistry()
    registry.create("scored", open_package(watched))
    settings = registry.get("scored").settings.model_copy(update={"humility": RULES})
    registry.update_settings("scored", settings)
    out = tmp_path / "out.csv"
    report = run_job(JobSpec(model="scored", input=str(workload.csv), output=str(out),
                             chunk_rows=7_000, quarantine=str(tmp_path / "q.csv"),
                             max_error_rate=1.0, job_id="humble"))
    scored = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(
        strings_can_be_null=True)).to_pandas()
    status = scored["prediction_status"]
    target, positive = f"{TARGET}_PREDICTION", f"{TARGET}_yes_PREDICTION"
    rejected = status.str.startswith("rejected by humility rule 'unsure'")
    overridden = status.str.contains("income (overridden)", regex=False)
    assert rejected.sum() > 0 and overridden.sum() > 0
    assert scored[target][rejected].isna().all()
    assert (scored[target][overridden & ~rejected] == "no").all()
    assert (scored[positive][overridden & ~rejected] == 0.0).all()
    assert report.rows_failed == int(rejected.sum())
    assert pcsv.read_csv(tmp_path / "q.csv").num_rows == int(rejected.sum())
    # the rules are the job's: recorded when it started
    record = JobStore().load("humble")
    assert record is not None and record.humility == RULES
    # each firing counted once, in the stats records, and shown by the drift stage
    table = MonitoringStore(str(home / "monitoring")).read("scored", "stats").table
    (merged,) = merge_table(table).values()
    assert merged.humility["unsure/reject"] == int(rejected.sum())
    assert merged.humility["income/override"] == int(_expected(watched, workload)[
        "income"].sum())  # rejected rows too: a rule fires whatever another one does
    assert merged.rows == workload.table.num_rows  # the rules' rows are not a column
    doc = run_drift(DriftRequest("scored", since=_EPOCH))
    rules = {(r["rule"], r["action"]): r["rows"] for r in doc["humility"]}
    assert rules[("unsure", "reject")] == int(rejected.sum())
    assert set(rules) == {("unsure", "reject"), ("income", "override"),
                          ("any-outlier", "no_op")}


def test_the_same_rows_fire_however_the_job_is_chunked(watched, workload, home, tmp_path
                                                      ) -> None:  # type: ignore[no-untyped-def]
    counts = []
    for rows in (60_000, 4_999):
        run_job(JobSpec(model=str(watched), input=str(workload.csv),
                        output=str(tmp_path / f"{rows}.csv"), chunk_rows=rows,
                        humility=RULES, max_error_rate=1.0, job_id=f"c{rows}"))
        table = MonitoringStore(str(home / "monitoring")).read(
            "hooked", "stats", job_id=f"c{rows}").table
        (merged,) = merge_table(table).values()
        counts.append(dict(merged.humility))
    assert counts[0] == counts[1]
    fired = _expected(watched, workload)
    assert counts[0]["income/override"] == int(fired["income"].sum())
    any_outlier = np.logical_or.reduce([v for k, v in fired.items() if k != "positive"])
    assert counts[0]["any-outlier/no_op"] == int(any_outlier.sum())


def test_a_rule_that_does_not_fit_the_model_fails_before_any_record(watched, workload, home,
                                                                    tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = (HumilityRule(name="x", trigger="outlying_input", feature="nope", lower=0, upper=1),)
    with pytest.raises(ConfigError, match="humility rule 'x': model .* has no feature 'nope'"):
        run_job(JobSpec(model=str(watched), input=str(workload.csv),
                        output=str(tmp_path / "o.csv"), humility=bad, job_id="bad"))
    assert not (tmp_path / "o.csv").exists()
    assert JobStore().load("bad") is None
