"""``batchpred actuals upload`` from an S3 object into a monitoring store on S3 (moto's
server), and ``actuals show`` reading the store there."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from batch.deployments import DeploymentRegistry
from batch.monitoring.store import MonitoringStore
from connectors.storage import StorageOptions

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import S3  # the fixture's type; several conftest modules exist


def test_actuals_from_s3_are_stored_on_s3_and_shown(
        s3: S3, logistic_package, batchpred, home: Path) -> None:  # type: ignore[no-untyped-def]
    DeploymentRegistry(home).create("credit", logistic_package.package)
    frame = logistic_package.data[["id", "default"]]
    s3.put("in/actuals.csv", frame.to_csv(index=False).encode())
    store = ["--store", s3.uri("monitoring"), "--store-option", f"endpoint_url={s3.endpoint}"]
    result = batchpred("actuals", "upload", "credit", "--input", s3.uri("in/actuals.csv"),
                       "--input-option", f"endpoint_url={s3.endpoint}",
                       "--association-id-column", "id", "--actual-column", "default",
                       "--chunk-rows", "1000", "--upload-id", "s3-1", *store)
    assert result.returncode == 0, result.stderr
    keys = s3.objects("monitoring/deployment=credit/")
    assert sum("/kind=actuals/" in k for k in keys) == 3, keys
    assert "monitoring/deployment=credit/state/actuals-s3-1.json" in keys
    found = MonitoringStore(s3.uri("monitoring"), StorageOptions(endpoint_url=s3.endpoint)
                            ).read("credit", "actuals")
    table = found.table.sort_by("seq")
    assert table.column("association_id").to_pylist() == [str(i) for i in frame["id"]]
    assert table.column("actual_label").to_pylist() == frame["default"].tolist()
    shown = batchpred("actuals", "show", "credit", "--format", "json", *store)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["stored"] == 3000 and [u["upload_id"] for u in doc["uploads"]] == ["s3-1"]
