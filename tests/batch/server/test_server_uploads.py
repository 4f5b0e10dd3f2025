"""Uploading and deleting deployments over HTTP: editor tokens only, archives unpacked
safely, and the new model served at once."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from pathlib import Path

import batchpred_cli
import pyarrow.csv as pcsv
from server_harness import Credit, start_server, stop

CONSUMER = "consumer-token-0123456789"
EDITOR = "editor-token-9876543210ab"


def _tar(folder: Path, *, prefix: str = "pkg") -> bytes:
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w:gz") as archive:
        archive.add(folder, arcname=prefix)
    return sink.getvalue()


def _evil_zip() -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr("../outside.txt", "no")
    return sink.getvalue()


def test_an_editor_uploads_and_deletes_a_deployment(credit: Credit, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f"tokens:\n  - token: {CONSUMER}\n    consumer: app\n"
                      f"  - token: {EDITOR}\n    consumer: ops\n    role: editor\n")
    home = tmp_path / "home"
    assert batchpred_cli.run("deploy", "create", "first", "--model", str(credit.package),
                             home=home).returncode == 0
    server = start_server(home, "--tokens", str(tokens), "--allow-uploads", "--no-monitoring",
                          ready=lambda r: r.status_code == 200)
    sink = io.BytesIO()
    pcsv.write_csv(credit.table.slice(0, 5), sink)
    rows = sink.getvalue()
    as_app = {"Authorization": f"Bearer {CONSUMER}"}
    as_ops = {"Authorization": f"Bearer {EDITOR}"}
    try:
        with server.client() as client:
            archive = _tar(credit.package)
            denied = client.post("/deployments/second", content=archive, headers=as_app)
            assert denied.status_code == 403 and "editor" in denied.json()["message"]
            made = client.post("/deployments/second", content=archive, headers=as_ops)
            assert made.status_code == 201, made.text
            assert made.json()["id"] == "second"
            listed = client.get("/deployments", headers=as_app).json()["data"]
            assert sorted(d["id"] for d in listed) == ["first", "second"]
            deadline = time.monotonic() + 30
            while True:  # loading in the background: 503 with Retry-After until it is in
                scored = client.post("/deployments/second/predictions", content=rows,
                                     headers={"Content-Type": "text/csv", **as_app})
                if scored.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert scored.status_code == 200, scored.text
            for body, message in [(b"not an archive", "not a .tar"),
                                  (_evil_zip(), "would land outside the package"),
                                  (b"", "the body is empty")]:
                bad = client.post("/deployments/third", content=body, headers=as_ops)
                assert bad.status_code == 400 and message in bad.json()["message"], bad.text
            assert client.post("/deployments/bad%20id", content=archive,
                               headers=as_ops).status_code == 400
            assert client.delete("/deployments/second", headers=as_app).status_code == 403
            gone = client.delete("/deployments/second", headers=as_ops)
            assert gone.status_code == 200, gone.text
            after = client.post("/deployments/second/predictions", content=rows,
                                headers={"Content-Type": "text/csv", **as_app})
            assert after.status_code == 404
    finally:
        stop(server)
    assert not (tmp_path / "outside.txt").exists() and not (home / "outside.txt").exists()
    shown = batchpred_cli.run("deploy", "list", home=home).stdout
    assert "first" in shown and "second" not in shown


def test_uploads_need_tokens(credit: Credit, tmp_path: Path) -> None:
    result = batchpred_cli.run("serve", "--allow-uploads", home=tmp_path / "home", timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: --allow-uploads needs --tokens")
