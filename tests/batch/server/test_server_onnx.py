"""The server scores with the ONNX conversion a batch job checked, as the job did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import batchpred_cli
import pyarrow as pa
import pyarrow.csv as pcsv
from server_harness import start_server, stop


def test_a_checked_conversion_scores_as_in_the_batch_job(
        convertible_package: Any, scoring_frame: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "rows.csv"
    scoring_frame.head(400).to_csv(data, index=False)
    job = batchpred_cli.invoke("score", "--model", str(convertible_package.path), "--input",
                               str(data), "--output", str(tmp_path / "out.csv"), "--job-id", "j",
                               "--workers", "0", "--quiet", "--no-monitoring", home=home)
    assert job.returncode == 0, job.stderr
    report = json.loads(batchpred_cli.invoke("job", "show", "j", home=home).stdout)
    assert report["scorer"].startswith("onnxruntime")
    server = start_server(home, "--model", str(convertible_package.path), "--no-monitoring",
                          ready=lambda r: r.status_code == 200)
    try:
        with server.client() as client:
            info = client.get("/info").json()
            assert info["scorer"].startswith("onnxruntime")
            answer = client.post("/predictions", content=data.read_bytes(),
                                 headers={"Content-Type": "text/csv", "Accept": "text/csv"})
            assert answer.status_code == 200, answer.text
    finally:
        stop(server)
    served = pcsv.read_csv(pa.BufferReader(answer.content))
    assert served.equals(pcsv.read_csv(tmp_path / "out.csv"))
