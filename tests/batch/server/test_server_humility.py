"""Humility rules in the HTTP shim: flagged and overridden rows in the response, a
rejected row a 480 naming it, every firing counted in the records; the same statuses as a
batch job of the same deployment."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import batchpred_cli
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
import yaml
from server_harness import Credit, Server, start_server, stop

from batch.cli.sample_data import TARGET
from batch.models import open_package
from batch.monitoring.drift import merge_table
from batch.monitoring.store import MonitoringStore

FLAG = {"humility": [
    {"name": "unsure", "trigger": "uncertain_prediction", "lower": 0.2, "upper": 0.4},
    {"name": "big-loan", "trigger": "outlying_input", "feature": "loan_amount",
     "lower": 0, "upper": 20_000, "action": "override", "value": "yes"},
    {"name": "new-state", "trigger": "low_observation_region", "feature": "state"},
]}
STRICT = {"humility": [
    {"name": "unsure", "trigger": "uncertain_prediction", "lower": 0.2, "upper": 0.4,
     "action": "reject"},
]}


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pcsv.write_csv(table, sink)
    return sink.getvalue()


@pytest.fixture(scope="module")
def humble(tmp_path_factory: pytest.TempPathFactory, watched_credit: Path
           ) -> Iterator[tuple[Server, Path]]:
    """A server of two deployments of the credit model (with a baseline): "flag" flags
    and overrides, "strict" rejects. Its home is where the records go."""
    root = tmp_path_factory.mktemp("humble")
    pkg = watched_credit
    home = root / "home"
    for name, settings in (("flag", FLAG), ("strict", STRICT)):
        assert batchpred_cli.invoke("deploy", "create", name, "--model", str(pkg),
                                    home=home).returncode == 0
        (root / f"{name}.yaml").write_text(yaml.safe_dump(settings))
        done = batchpred_cli.invoke("deploy", "settings", name, "--from-file",
                                    str(root / f"{name}.yaml"), home=home)
        assert done.returncode == 0, done.stderr
    server = start_server(home, "--flush-seconds", "600", ready=lambda r: r.status_code == 200)
    yield server, root
    stop(server)


def _probabilities(pkg: Path, rows: pa.Table) -> np.ndarray:
    """The positive class's probability of each row, as the model gives it without rules."""
    from batch.models.cache import process_cache
    from batch.scoring.chunk import score_batch
    from batch.scoring.columns import ScoringOptions

    package = open_package(pkg)
    out = score_batch(rows.combine_chunks().to_batches()[0], package,
                      process_cache().get(package), ScoringOptions())
    return out.column(f"{TARGET}_yes_PREDICTION").to_numpy(zero_copy_only=False)


def test_flagged_and_overridden_rows_say_so_and_match_a_batch_job(
        humble, watched_credit: Path, credit: Credit) -> None:
    server, root = humble
    rows = credit.table.slice(0, 200)
    p = _probabilities(watched_credit, rows)
    amount = rows.column("loan_amount").to_numpy()
    with server.client() as client:
        answer = client.post("/deployments/flag/predictions", content=_csv(rows),
                             headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    unsure, big = (p >= 0.2) & (p <= 0.4), amount > 20_000
    assert unsure.any() and big.any() and (unsure & ~big).any()
    for i, row in enumerate(data):
        if big[i]:
            assert row["prediction"] == "yes"
            assert {v["label"]: v["value"] for v in row["predictionValues"]} == {
                "no": 0.0, "yes": 1.0}
        expected = ", ".join(
            [*(["unsure (flagged)"] if unsure[i] else []),
             *(["big-loan (overridden)"] if big[i] else [])])
        assert row.get("predictionStatus", "OK") == (
            f"OK; humility: {expected}" if expected else "OK"), i
    # the same deployment in a batch job: the same statuses and predictions
    pcsv.write_csv(rows, root / "rows.csv")
    done = batchpred_cli.invoke("score", "--model", "flag", "--input", str(root / "rows.csv"),
                                "--output", str(root / "scored.csv"), "--no-monitoring",
                                home=server.home)
    assert done.returncode == 0, done.stderr
    batch = pcsv.read_csv(root / "scored.csv")
    assert batch.column("prediction_status").to_pylist() == [
        row.get("predictionStatus", "OK") for row in data]
    assert batch.column(f"{TARGET}_PREDICTION").to_pylist() == [row["prediction"]
                                                               for row in data]


def test_a_rejected_row_is_a_480_naming_it_and_others_score(
        humble, watched_credit: Path, credit: Credit) -> None:
    server, _ = humble
    rows = credit.table.slice(0, 200)
    p = _probabilities(watched_credit, rows)
    unsure = (p >= 0.2) & (p <= 0.4)
    first = int(np.flatnonzero(unsure)[0])
    with server.client() as client:
        rejected = client.post("/deployments/strict/predictions", content=_csv(rows),
                               headers={"Content-Type": "text/csv"})
        sure = rows.filter(pa.array(~unsure))
        fine = client.post("/deployments/strict/predictions", content=_csv(sure),
                           headers={"Content-Type": "text/csv"})
    assert rejected.status_code == 480
    assert rejected.headers["content-type"] == "application/json"
    assert rejected.json()["message"] == (
        f"row {first}: rejected by humility rule 'unsure': prediction {p[first]:.6g} in "
        f"[0.2, 0.4] ({int(unsure.sum())} of 200 rows rejected)")
    assert fine.status_code == 200
    assert len(fine.json()["data"]) == sure.num_rows


def test_every_firing_is_counted_in_the_records(
        humble, watched_credit: Path, credit: Credit) -> None:
    """Runs last in the module: it stops the server, which flushes the records."""
    server, _ = humble
    rows = credit.table.slice(200, 100)
    p = _probabilities(watched_credit, rows)
    amount = rows.column("loan_amount").to_numpy()
    stats_before = MonitoringStore(str(server.home / "monitoring")).read("flag", "stats")
    assert stats_before.table.num_rows == 0  # nothing flushed while serving
    with server.client() as client:
        for part in range(2):
            answer = client.post("/deployments/flag/predictions",
                                 content=_csv(rows.slice(part * 50, 50)),
                                 headers={"Content-Type": "text/csv"})
            assert answer.status_code == 200
    stop(server)
    store = MonitoringStore(str(server.home / "monitoring"))
    (merged,) = merge_table(store.read("flag", "stats").table).values()
    # this test's rows and the first test's 200
    earlier = credit.table.slice(0, 200)
    p_all = np.concatenate([_probabilities(watched_credit, earlier), p])
    amount_all = np.concatenate([earlier.column("loan_amount").to_numpy(), amount])
    assert merged.humility["unsure/no_op"] == int(((p_all >= 0.2) & (p_all <= 0.4)).sum())
    assert merged.humility["big-loan/override"] == int((amount_all > 20_000).sum())
    assert merged.humility.get("new-state/no_op", 0) == 0
    assert merged.rows == 300
    # the rejected request's rows are counted as well (the other request fired nothing)
    (strict,) = merge_table(store.read("strict", "stats").table).values()
    assert strict.humility["unsure/reject"] == int(((p_all[:200] >= 0.2) &
                                                    (p_all[:200] <= 0.4)).sum())
    health = store.read("strict", "health").table.to_pylist()
    assert sum(h["requests"] for h in health) == 2
