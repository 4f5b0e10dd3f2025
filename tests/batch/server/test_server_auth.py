"""API tokens: 401 without a known one, every way DataRobot clients send it, never logged."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import batchpred_cli
import pyarrow.csv as pcsv
from server_harness import Credit, start_server, stop

CONSUMER = "loan-app-0123456789abcdef"
EDITOR = "ml-team-fedcba9876543210"


def test_tokens_guard_every_request_but_ping(credit: Credit, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - token: {CONSUMER}\n    consumer: loan-app\n"
                      f"  - token: {EDITOR}\n    consumer: ml-team\n    role: editor\n")
    home = tmp_path / "home"
    server = start_server(home, "--model", str(credit.package), "--tokens", str(tokens),
                          "--no-monitoring", ready=lambda r: r.status_code == 200)
    sink = io.BytesIO()
    pcsv.write_csv(credit.table.slice(0, 5), sink)
    rows = sink.getvalue()
    basic = base64.b64encode(f"someone:{CONSUMER}".encode()).decode()
    try:
        with server.client() as client:
            def post(**headers: str) -> int:
                answer = client.post("/predictions", content=rows,
                                     headers={"Content-Type": "text/csv", **headers})
                return answer.status_code

            assert client.get("/ping").status_code == 200  # open: a load balancer's probe
            refused = client.post("/predictions", content=rows,
                                  headers={"Content-Type": "text/csv"})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["message"].startswith("this server needs an API token")
            assert post(Authorization="Bearer not-a-known-token-at-all") == 401
            assert post(Authorization=f"Bearer {CONSUMER}") == 200
            assert post(Authorization=f"Token {EDITOR}") == 200
            assert post(Authorization=f"Basic {basic}") == 200
            assert client.get("/info").status_code == 401
            assert client.get("/info", headers={"Authorization": f"Bearer {CONSUMER}"}
                              ).status_code == 200
    finally:
        stop(server)
    assert CONSUMER not in server.log.read_text() and EDITOR not in server.log.read_text()


def test_a_bad_token_file_is_one_line_without_the_token(credit: Credit, tmp_path: Path
                                                        ) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - token: short-secret\n    consumer: x\n")
    result = batchpred_cli.run("serve", "--model", str(credit.package), "--tokens",
                               str(tokens), home=tmp_path / "home", timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: --tokens {tokens}: tokens.0.token: String should")
    assert "short-secret" not in result.stderr and result.stderr.count("\n") == 1
