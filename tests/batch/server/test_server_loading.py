"""``batchpred serve --model PKG`` (single-model mode) while its model loads, and after."""

from __future__ import annotations

import time

from server_harness import RELEASE, Server

ROWS = b"income,debt_ratio,tenure,purpose\n52000.5,0.3,4,car\n,0.1,10,\n"


def test_not_ready_until_loaded_then_scores(slow_server: Server) -> None:
    with slow_server.client() as client:
        ping = client.get("/ping")
        assert ping.status_code == 503, ping.text
        assert ping.json() == {"message": "models are loading"}
        assert ping.headers["Retry-After"].isdigit()
        early = client.post("/predictions", content=ROWS, headers={"Content-Type": "text/csv"})
        assert early.status_code == 503, early.text
        assert "loading" in early.json()["message"]
        assert int(early.headers["Retry-After"]) >= 1
        assert client.get("/ping").status_code == 503  # still: the load waits for the test
        (slow_server.home / RELEASE).touch()
        deadline = time.monotonic() + 30
        while client.get("/ping").status_code != 200:
            assert time.monotonic() < deadline, "the model never finished loading"
            time.sleep(0.2)
        response = client.post("/predictions", content=ROWS,
                               headers={"Content-Type": "text/csv"})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert len(data) == 2
        for row in data:
            assert abs(sum(v["value"] for v in row["predictionValues"]) - 1) < 1e-9
        info = client.get("/info").json()
        assert info["modelName"] == "credit-slow"
        assert info["artifactKind"] == "python" and info["loaded"] is True
        assert client.get("/deployments").status_code == 404
