"""``batchpred actuals upload`` from a Snowflake query, through the real connector."""

from __future__ import annotations

from pathlib import Path

import batchpred_cli
import pytest

from batch.deployments import DeploymentRegistry
from batch.monitoring.store import MonitoringStore

# fakesnow's server warns about its own DuckDB call (an extra copy of each result)
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")


def test_actuals_from_a_query_are_checked_and_stored(
        logistic_package, endpoint, base_uri: str, sql, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    DeploymentRegistry(home).create("credit", logistic_package.package)
    sql("CREATE TABLE OUTCOMES (LOAN NUMBER(38,0), OUTCOME VARCHAR, CLOSED TIMESTAMP_NTZ)")
    sql("INSERT INTO OUTCOMES SELECT range, CASE range % 3 WHEN 0 THEN 'yes' WHEN 1 THEN 'no' "
        "ELSE 'unknown' END, TIMESTAMP '2026-11-01 10:00:00' FROM range(900)")
    options = [x for k, v in endpoint.options().items() for x in ("--input-option", f"{k}={v}")]
    res = batchpred_cli.run(
        "actuals", "upload", "credit", "--input", base_uri, "--input-query",
        "SELECT * FROM OUTCOMES ORDER BY LOAN", *options, "--association-id-column", "LOAN",
        "--actual-column", "OUTCOME", "--timestamp-column", "CLOSED", "--chunk-rows", "250",
        home=home)
    assert res.returncode == 0, res.stderr
    assert "stored 600 of 900 rows in 4 chunk(s)" in res.stdout
    assert "not a class of the target: 300 (row 3: 'unknown'" in res.stdout
    table = MonitoringStore(str(home / "monitoring")).read("credit", "actuals").table
    table = table.sort_by("seq")
    assert table.column("association_id").to_pylist() == [str(i) for i in range(900)
                                                          if i % 3 != 2]
    assert table.column("actual_label").to_pylist() == ["yes", "no"] * 300
    assert {t.isoformat() for t in table.column("timestamp").to_pylist()} == {
        "2026-11-01T10:00:00+00:00"}
