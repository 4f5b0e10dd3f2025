"""``batchpred serve`` over real HTTP: two deployments, every route, input and error.

The references for the numbers: a batch job (``batchpred score``) on the same
rows, and scikit-learn's own ``predict_proba``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

import batchpred_cli
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from server_harness import MAX_PAYLOAD_MB, Credit, Server

CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}
PREDICT = "/deployments/credit/predictions"
PROBS = ["is_default_no_PREDICTION", "is_default_yes_PREDICTION"]


def csv_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def read_csv(data: bytes) -> pa.Table:
    return pcsv.read_csv(pa.py_buffer(data))


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    with server.client() as c:
        yield c


def post(client: httpx.Client, body: bytes, path: str = PREDICT, **kw: Any) -> httpx.Response:
    headers = {**CSV, **kw.pop("headers", {})}
    return client.post(path, content=body, headers=headers, **kw)


def assert_message(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["message"]
    for word in words:
        assert word in message


def test_csv_in_json_out_matches_scikit_learn(client: httpx.Client, credit: Credit) -> None:
    rows = credit.table.slice(0, 20)
    response = post(client, csv_bytes(rows))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()["data"]
    assert [r["rowId"] for r in data] == list(range(20))
    frame = rows.to_pandas()
    frame = frame.astype(object).where(frame.notna(), np.nan).infer_objects()
    reference = credit.estimator.predict_proba(frame)
    for row, probs in zip(data, reference, strict=True):
        assert [v["label"] for v in row["predictionValues"]] == ["no", "yes"]
        np.testing.assert_allclose([v["value"] for v in row["predictionValues"]], probs,
                                   rtol=0, atol=1e-12)
        assert row["prediction"] == ("yes" if probs[1] > 0.5 else "no")
        assert row["predictionThreshold"] == 0.5
        assert "passthroughValues" not in row and "predictionStatus" not in row


def test_same_predictions_as_a_batch_job(server: Server, client: httpx.Client,
                                         credit: Credit, tmp_path: Path) -> None:
    body = csv_bytes(credit.table)
    (tmp_path / "in.csv").write_bytes(body)
    job = batchpred_cli.invoke("score", "--model", "credit", "--input", str(tmp_path / "in.csv"),
                               "--output", str(tmp_path / "out.csv"), "--no-onnx", "--quiet",
                               "--no-monitoring", home=server.home)
    assert job.returncode == 0, job.stderr
    batch = read_csv((tmp_path / "out.csv").read_bytes())
    as_csv = post(client, body, headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    served = read_csv(as_csv.content)
    assert served.schema.names == batch.schema.names
    assert served.equals(batch)
    data = post(client, body).json()["data"]
    for j, column in enumerate(PROBS):
        assert [r["predictionValues"][j]["value"] for r in data] == \
            batch.column(column).to_pylist()
    assert [r["prediction"] for r in data] == batch.column("is_default_PREDICTION").to_pylist()


def test_json_records_score_as_csv_does(client: httpx.Client, credit: Credit) -> None:
    rows = credit.table.slice(0, 30)
    from_csv = post(client, csv_bytes(rows)).json()
    records = rows.to_pylist()
    as_list = client.post(PREDICT, content=json.dumps(records), headers=JSON)
    as_data = client.post(PREDICT, json={"data": records})
    assert as_list.status_code == as_data.status_code == 200, as_list.text
    assert as_list.json() == as_data.json() == from_csv


def test_gzip_crlf_and_charset(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 10))
    plain = post(client, body).json()
    zipped = post(client, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert zipped.status_code == 200, zipped.text
    assert zipped.json() == plain
    crlf = post(client, body.replace(b"\n", b"\r\n"),
                headers={"Content-Type": "text/csv; charset=UTF-8"})
    assert crlf.status_code == 200, crlf.text
    assert crlf.json() == plain


def test_passthrough_columns(client: httpx.Client, credit: Credit) -> None:
    rows = credit.table.slice(0, 5)
    named = post(client, csv_bytes(rows),
                 params=[("passthroughColumns", "loan_id"), ("passthroughColumns", "state")])
    assert named.status_code == 200, named.text
    assert [r["passthroughValues"] for r in named.json()["data"]] == [
        {"loan_id": r["loan_id"], "state": r["state"]} for r in rows.to_pylist()]
    every = post(client, csv_bytes(rows), params={"passthroughColumnsSet": "all"})
    assert every.status_code == 200, every.text
    assert [list(r["passthroughValues"]) for r in every.json()["data"]] == \
        [rows.schema.names] * 5
    both = post(client, csv_bytes(rows),
                params={"passthroughColumns": "loan_id", "passthroughColumnsSet": "all"})
    assert_message(both, 400, "passthroughColumns", "passthroughColumnsSet")
    absent = post(client, csv_bytes(rows), params={"passthroughColumns": "nope"})
    assert_message(absent, 422, "'nope'")


def test_decimals_number_rounds_values(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 10))
    exact = post(client, body).json()["data"]
    rounded = post(client, body, params={"decimalsNumber": "3"}).json()["data"]
    for e, r in zip(exact, rounded, strict=True):
        for ev, rv in zip(e["predictionValues"], r["predictionValues"], strict=True):
            assert rv["value"] == round(ev["value"], 3)
        assert r["prediction"] == e["prediction"]
    assert_message(post(client, body, params={"decimalsNumber": "x"}), 400, "decimalsNumber")


def test_pred_api_route_headers(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 5))
    response = post(client, body, "/predApi/v1.0/deployments/credit/predictions",
                    headers={"datarobot-key": "k", "Authorization": "Bearer t"})
    assert response.status_code == 200, response.text
    assert response.json() == post(client, body).json()
    assert int(response.headers["X-DataRobot-Execution-Time"]) >= 0
    assert response.headers["X-DataRobot-Model-Cache-Hit"] == "true"


def test_routes_by_deployment(client: httpx.Client, scoring_frame: Any) -> None:
    rows = pa.Table.from_pandas(scoring_frame[["income", "debt_ratio", "tenure", "purpose"]]
                                .head(8), preserve_index=False)
    response = post(client, csv_bytes(rows), "/deployments/segment/predictions")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 8
    for row in data:
        labels = [v["label"] for v in row["predictionValues"]]
        assert sorted(labels) == ["bronze", "gold", "silver"]
        assert row["prediction"] == labels[int(np.argmax([v["value"] for v in
                                                          row["predictionValues"]]))]
        assert "predictionThreshold" not in row
    assert_message(post(client, csv_bytes(rows), "/deployments/nope/predictions"), 404,
                   "'nope'", "credit", "segment")
    assert_message(client.get("/deployments/nope/info"), 404, "credit, segment")


def test_info_deployments_ping_openapi(client: httpx.Client, server: Server) -> None:
    assert client.get("/ping").json() == {"message": "OK"}
    assert f"serving on {server.url}\n" in server.log.read_text()
    info = client.get("/deployments/credit/info").json()
    assert info["id"] == "credit" and info["modelName"] == "credit-risk"
    assert info["targetName"] == "is_default" and info["targetType"] == "binary"
    assert info["classes"] == ["no", "yes"] and info["positiveClass"] == "yes"
    assert info["scorer"] == "scikit-learn" and info["loaded"] is True
    assert {"name": "credit_score", "type": "number", "required": True} in info["features"]
    stored = sorted((server.home / "packages").iterdir())
    assert info["modelDigest"] in [p.name for p in stored]
    listed = client.get("/deployments").json()["data"]
    assert [d["id"] for d in listed] == ["credit", "segment"]
    assert [d["targetType"] for d in listed] == ["binary", "multiclass"]
    spec = client.get("/openapi.json").json()
    assert "/predApi/v1.0/deployments/{deployment_id}/predictions" in spec["paths"]
    post_op = spec["paths"]["/deployments/{deployment_id}/predictions"]["post"]
    assert {"text/csv", "application/json"} <= set(post_op["requestBody"]["content"])
    assert_message(client.get("/predictions"), 404)


def test_payload_limit(client: httpx.Client, credit: Credit) -> None:
    big = csv_bytes(pa.concat_tables([credit.table] * 4))
    assert len(big) > MAX_PAYLOAD_MB * 2**20
    assert_message(post(client, big), 413, "payload limit")
    bomb = gzip.compress(big)
    assert len(bomb) < MAX_PAYLOAD_MB * 2**20
    assert_message(post(client, bomb, headers={"Content-Encoding": "gzip"}), 413,
                   "decompressed")


def test_bad_bodies(client: httpx.Client, credit: Credit) -> None:
    good = csv_bytes(credit.table.slice(0, 3))
    header = good.split(b"\n", 1)[0]
    assert_message(post(client, header + b"\n1,2\n"), 400, "malformed CSV")
    assert_message(client.post(PREDICT, content=b'[{"age": 1,', headers=JSON), 400,
                   "malformed JSON")
    assert_message(client.post(PREDICT, content=b'"rows"', headers=JSON), 400, "array")
    assert_message(post(client, b""), 400, "empty")
    assert_message(post(client, header + b"\n"), 400, "no rows")
    assert_message(post(client, b"not gzip", headers={"Content-Encoding": "gzip"}), 400, "gzip")
    assert_message(post(client, good, headers={"Content-Encoding": "br"}), 415, "'br'")
    assert_message(post(client, good, headers={"Content-Type": "application/xml"}), 415,
                   "text/csv")


def test_missing_column_is_422(client: httpx.Client, credit: Credit) -> None:
    rows = credit.table.slice(0, 3).drop_columns(["credit_score"])
    assert_message(post(client, csv_bytes(rows)), 422, "'credit_score'")


def test_bad_value_fails_its_row_only(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 3)).decode()
    lines = body.splitlines()
    col = lines[0].split(",").index('"income"')
    cells = lines[2].split(",")
    cells[col] = "abc"
    lines[2] = ",".join(cells)
    response = post(client, "\n".join(lines).encode())
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data[1]["prediction"] is None
    assert data[1]["predictionStatus"] == "column 'income' has 'abc' (expected a number)"
    assert [v["value"] for v in data[1]["predictionValues"]] == [None, None]
    assert data[0]["prediction"] in ("no", "yes") and "predictionStatus" not in data[0]
    assert data[2]["prediction"] in ("no", "yes")


def test_unknown_query_argument_is_ignored(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 3))
    response = post(client, body, params={"maxExplanations": "0"})
    assert response.status_code == 200, response.text
    assert response.json() == post(client, body).json()


def test_multipart(client: httpx.Client, credit: Credit) -> None:
    body = csv_bytes(credit.table.slice(0, 3))
    response = client.post(PREDICT, files={"file": ("rows.csv", body, "text/csv")})
    if importlib.util.find_spec("multipart") is None:
        assert_message(response, 415, "python-multipart")
    else:
        assert response.status_code == 200, response.text
        assert response.json() == post(client, body).json()
