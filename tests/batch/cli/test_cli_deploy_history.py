"""A deployment's history, challengers, replacement and promotion through the command line.

The packages are Python hooks scoring a fixed formula (nothing to train), so
each one is a distinct digest and its predictions can be computed here
independently. They differ from the champion only where a test needs them to:
the target's name, type, classes or positive class, or one more feature. The
commands run in this process (what they print and record is what is tested).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from batchpred_cli import Batchpred

from batch.cli.sample_data import TARGET, credit_table
from batch.models.builder import PackageSpec, create_package
from batch.models.kinds import TargetType

FEATURES = ["credit_score", "loan_amount", "income"]
HOOKS = '''
import os

import numpy as np
import pandas as pd

CENTER = {center}


def load_model(path):
    return {{"center": CENTER, "scale": 45.0}}


def score(frame, model, **kwargs):
    loan = os.environ.get("BP_TEST_FAIL_LOAN")
    if loan and int(loan) in set(frame["loan_id"].astype("int64")):
        raise RuntimeError(f"refusing loan {{loan}}")
    z = (frame["credit_score"].fillna(model["center"]) - model["center"]) / model["scale"]
    p = 1.0 / (1.0 + np.exp(z.to_numpy(dtype=float)))
    return pd.DataFrame({{"{negative}": 1.0 - p, "{positive}": p}})
'''


@dataclass(frozen=True)
class Packages:
    champion: Path  # binary is_default no/yes, features loan_id + FEATURES, centre 680
    challengers: tuple[Path, ...]  # the same but for the centre: six distinct digests
    wider: Path  # also needs "age"
    other_target: dict[str, Path]  # what differs -> a package differing only in that
    csv: Path  # rows to score
    table: pa.Table


def _package(root: Path, name: str, train: pa.Table, *, center: float = 680.0,
             target: str = TARGET, labels: tuple[str, str] = ("no", "yes"),
             positive: str = "yes", target_type: TargetType = TargetType.BINARY) -> Path:
    hooks = root / f"{name}-hooks"
    hooks.mkdir()
    (hooks / "custom.py").write_text(textwrap.dedent(HOOKS.format(
        center=center, negative=labels[0], positive=labels[1])), encoding="utf-8")
    pcsv.write_csv(train, root / f"{name}.csv")
    return create_package(root / name, PackageSpec(
        artifact=hooks, training_data=str(root / f"{name}.csv"), target=target,
        target_type=target_type, positive_class=None if target_type is TargetType.REGRESSION
        else positive, name=name)).path


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The commands in this process: these tests are of what they print and record."""
    return Batchpred(home, in_process=True)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    root = tmp_path_factory.mktemp("deploy-history")
    train = credit_table(400, seed=5).select(["loan_id", *FEATURES, TARGET])
    renamed = train.rename_columns(["loan_id", *FEATURES, "defaulted"])
    as_yn = train.set_column(4, TARGET, pc.if_else(pc.equal(train[TARGET], "yes"), "Y", "N"))
    as_amount = train.set_column(4, TARGET, pc.cast(train["loan_amount"], pa.float64()))
    wider = credit_table(400, seed=5).select(["loan_id", *FEATURES, "age", TARGET])
    table = credit_table(2000, seed=6).drop_columns([TARGET])
    pcsv.write_csv(table, root / "score.csv")
    return Packages(
        champion=_package(root, "hooked", train),
        challengers=tuple(_package(root, f"hooked-{k}", train, center=600.0 + 10 * k)
                          for k in range(1, 7)),
        wider=_package(root, "hooked-wider", wider, center=650.0),
        other_target={
            "target name": _package(root, "renamed", renamed, target="defaulted"),
            "target type": _package(root, "amount", as_amount,
                                    target_type=TargetType.REGRESSION),
            "classes": _package(root, "yn", as_yn, labels=("N", "Y"), positive="Y"),
            "positive class": _package(root, "negative", train, positive="no"),
        },
        csv=root / "score.csv",
        table=table,
    )


def _history(batchpred) -> list[dict]:  # type: ignore[no-untyped-def]
    res = batchpred("deploy", "history", "credit", "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def _digest(path: Path) -> str:
    from batch.models import open_package

    return open_package(path).digest


def _files(home: Path) -> dict[str, bytes]:
    """Every file under the home, with its bytes: what "nothing changed" compares."""
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file()}


def _one_error_line(res) -> str:  # type: ignore[no-untyped-def]
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), \
        res.stderr
    return str(lines[0])


def test_every_change_is_in_the_history_with_its_actor(
        packages: Packages, batchpred, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BATCHPRED_ACTOR", raising=False)
    champion, first, second = (packages.champion, *packages.challengers[:2])
    made = batchpred("deploy", "create", "credit", "--model", str(champion),
                     "--association-id", "loan_id", "--actor", "ana", "--reason", "launch")
    assert made.returncode == 0, made.stderr
    assert batchpred("deploy", "settings", "credit", "--no-accuracy", "--slo-p95-ms", "250",
                     BATCHPRED_ACTOR="bo").returncode == 0
    added = batchpred("deploy", "add-challenger", "credit", "--model", str(first),
                      LOGNAME="os-user", USER="os-user")
    assert added.returncode == 0, added.stderr
    assert "challenger 'c1' -> hooked-1 v1" in added.stdout
    assert batchpred("deploy", "add-challenger", "credit", "--model", str(second),
                     "--id", "fast", "--actor", "ana").returncode == 0
    assert batchpred("deploy", "remove-challenger", "credit", "--challenger", "fast",
                     "--actor", "ana").returncode == 0
    replaced = batchpred("deploy", "replace", "credit", "--model", str(second), "--reason",
                         "data_drift", "--keep-as-challenger", "--actor", "cy")
    assert replaced.returncode == 0, replaced.stderr
    assert "the old champion hooked v1" in replaced.stdout
    assert replaced.stdout.strip().endswith("is now challenger 'c2'")
    promoted = batchpred("deploy", "promote", "credit", "--challenger", "c1", "--reason",
                         "accuracy", "--actor", "cy")
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip().endswith("is retired")

    events = _history(batchpred)
    assert [e["event"] for e in events] == [
        "created", "settings_changed", "challenger_added", "challenger_added",
        "challenger_removed", "replaced", "promoted"]
    assert [e["actor"] for e in events] == ["ana", "bo", "os-user", "ana", "ana", "cy", "cy"]
    assert [e["reason"] for e in events] == ["launch", None, None, None, None, "data_drift",
                                             "accuracy"]
    d0, d1, d2 = _digest(champion), _digest(first), _digest(second)
    created, settings, add1, add2, removed, replace, promote = events
    assert created["before"] is None and created["after"] == {"champion": d0,
                                                              "challengers": {}}
    assert settings["changes"] == {"accuracy": {"old": True, "new": False},
                                   "slo_p95_ms": {"old": 1000.0, "new": 250.0}}
    assert add1["challenger"] == "c1" and add1["after"]["challengers"] == {"c1": d1}
    assert add2["after"]["challengers"] == {"c1": d1, "fast": d2}
    assert removed["before"]["challengers"] == {"c1": d1, "fast": d2}
    assert removed["after"]["challengers"] == {"c1": d1}
    assert replace["before"] == {"champion": d0, "challengers": {"c1": d1}}
    assert replace["after"] == {"champion": d2, "challengers": {"c1": d1, "c2": d0}}
    assert replace["kept_as"] == "c2"
    assert promote["challenger"] == "c1" and promote["kept_as"] is None
    assert promote["after"] == {"champion": d1, "challengers": {"c2": d0}}
    for event in events:
        assert event["time"].endswith("Z") and event["deployment"] == "credit"

    kept = json.loads(batchpred("deploy", "settings", "credit").stdout)
    assert (kept["association_id"], kept["accuracy"], kept["slo_p95_ms"]) == (
        "loan_id", False, 250.0)  # the settings survived the replacement and the promotion
    shown = batchpred("deploy", "show", "credit").stdout
    assert "association id: loan_id (accuracy off)" in shown
    assert "challengers: 1\n  c2\thooked v1\t" + d0[:12] in shown
    table = batchpred("deploy", "history", "credit").stdout.strip().splitlines()
    assert len(table) == 7 and table[5].split("\t")[1:5] == [
        "replaced", "cy", "data_drift", f"{d0[:12]} -> {d2[:12]}"]


def test_a_removed_deployment_keeps_its_history_and_a_new_one_continues_it(
        packages: Packages, batchpred, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model", str(packages.champion),
                     "--actor", "ana").returncode == 0
    gone = batchpred("deploy", "remove", "credit", "--actor", "bo", "--reason", "retired")
    assert gone.returncode == 0, gone.stderr
    assert "no deployments yet" in batchpred("deploy", "list").stdout
    assert [e["event"] for e in _history(batchpred)] == ["created", "removed"]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.challengers[0])).returncode == 0
    events = _history(batchpred)
    assert [e["event"] for e in events] == ["created", "removed", "created"]
    assert events[1]["after"] is None and events[1]["reason"] == "retired"
    assert events[2]["before"] is None
    unknown = batchpred("deploy", "history", "nobody")
    assert "no deployment named 'nobody'" in _one_error_line(unknown)


def test_a_torn_last_line_is_skipped_and_the_next_event_still_lands(
        packages: Packages, batchpred, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.champion)).returncode == 0
    log = home / "deployments" / "credit.history.jsonl"
    whole = log.read_bytes()
    torn = whole[:-1] + b"\n" + whole[: len(whole) // 2]  # a crash in the middle of a line
    log.write_bytes(torn)
    assert [e["event"] for e in _history(batchpred)] == ["created"]
    assert batchpred("deploy", "settings", "credit", "--slo-p95-ms", "500").returncode == 0
    assert [e["event"] for e in _history(batchpred)] == ["created", "settings_changed"]
    assert log.read_bytes().startswith(torn + b"\n{")


def test_secrets_never_reach_the_history(packages: Packages, tmp_path: Path) -> None:
    """The command line refuses secret-like store options; the registry, which takes any
    settings from Python, masks them in the history, and keeps env:NAME webhooks."""
    from batch.deployments import DeploymentRegistry, DeploymentSettings
    from batch.models import open_package

    registry = DeploymentRegistry(tmp_path / "home")
    registry.create("credit", open_package(packages.champion))
    registry.update_settings("credit", DeploymentSettings(
        monitoring_store_options={"region": "eu-west-1", "session_token": "s3cr3t",
                                  "endpoint_url": "http://user:pw0rd@minio:9000"},
        alert_webhook="env:DRIFT_HOOK"))
    log = (tmp_path / "home" / "deployments" / "credit.history.jsonl").read_text()
    assert "s3cr3t" not in log and "pw0rd" not in log
    (changed,) = [e for e in registry.history("credit") if e.event == "settings_changed"]
    assert {k: c.new for k, c in changed.changes.items()} == {
        "alert_webhook": "env:DRIFT_HOOK",
        "monitoring_store_options.endpoint_url": "http://user:***@minio:9000",
        "monitoring_store_options.region": "eu-west-1",
        "monitoring_store_options.session_token": "***"}


@pytest.mark.parametrize("difference", ["target name", "target type", "classes",
                                        "positive class"])
def test_another_target_is_refused_and_nothing_changes(
        packages: Packages, batchpred, home: Path, difference: str) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.champion)).returncode == 0
    before = _files(home)
    other = str(packages.other_target[difference])
    for args in (["add-challenger", "credit", "--model", other],
                 ["replace", "credit", "--model", other, "--reason", "other", "--force"],
                 ["create", "credit", "--model", other, "--replace", "--force"]):
        line = _one_error_line(batchpred("deploy", *args))
        assert "predicts another target than the champion" in line and difference in line
        assert _files(home) == before, args


def test_a_new_required_feature_needs_force(packages: Packages, batchpred) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.champion)).returncode == 0
    refused = batchpred("deploy", "replace", "credit", "--model", str(packages.wider),
                        "--reason", "accuracy")
    line = _one_error_line(refused)
    assert "needs features the champion" in line and "age" in line and "--force" in line
    added = batchpred("deploy", "add-challenger", "credit", "--model", str(packages.wider))
    assert added.returncode == 0 and "needs features the champion does not: age" in added.stderr
    refused = batchpred("deploy", "promote", "credit", "--challenger", "c1")
    assert "age" in _one_error_line(refused)
    forced = batchpred("deploy", "promote", "credit", "--challenger", "c1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.strip() == ("warning: forced: the new champion needs features the "
                                     "old one did not: age")
    (promoted,) = [e for e in _history(batchpred) if e["event"] == "promoted"]
    assert promoted["forced_features"] == ["age"]
    assert batchpred("deploy", "list").stdout.startswith("credit\thooked-wider v1\t")


def test_challengers_are_capped_and_distinct(packages: Packages, batchpred, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.champion)).returncode == 0
    same = batchpred("deploy", "add-challenger", "credit", "--model", str(packages.champion))
    assert "is the champion already" in _one_error_line(same)
    for k, package in enumerate(packages.challengers[:5], 1):
        res = batchpred("deploy", "add-challenger", "credit", "--model", str(package))
        assert res.returncode == 0 and f"challenger 'c{k}'" in res.stdout, res.stderr
    again = batchpred("deploy", "add-challenger", "credit", "--model",
                      str(packages.challengers[0]))
    assert "is challenger 'c1' already" in _one_error_line(again)
    before = _files(home)
    sixth = batchpred("deploy", "add-challenger", "credit", "--model",
                      str(packages.challengers[5]))
    assert "has 5 challengers, the most it may have" in _one_error_line(sixth)
    kept = batchpred("deploy", "replace", "credit", "--model", str(packages.challengers[5]),
                     "--reason", "scheduled_refresh", "--keep-as-challenger")
    assert "the old champion cannot stay as one" in _one_error_line(kept)
    assert _files(home) == before
    promoted = batchpred("deploy", "promote", "credit", "--challenger", "c3",
                         "--keep-as-challenger")
    assert promoted.returncode == 0 and "is now challenger 'c6'" in promoted.stdout


def _expected_yes(table: pa.Table, center: float) -> np.ndarray:
    """The hooks' formula, computed here: P(yes) from the credit score alone."""
    score = table["credit_score"].to_numpy(zero_copy_only=False).astype(float)
    score = np.where(np.isnan(score), center, score)
    return 1.0 / (1.0 + np.exp((score - center) / 45.0))  # type: ignore[no-any-return]


def test_a_job_started_before_a_replacement_resumes_with_its_own_package(
        packages: Packages, batchpred, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert batchpred("deploy", "create", "credit", "--model",
                     str(packages.champion)).returncode == 0
    out = tmp_path / "out.csv"
    job = ["score", "--model", "credit", "--input", str(packages.csv), "--output", str(out),
           "--chunk-rows", "500", "--workers", "0", "--job-id", "nightly", "--quiet",
           "--no-monitoring", "--passthrough", "loan_id", "--preflight-rows", "0"]
    failed = batchpred(*job, BP_TEST_FAIL_LOAN="1200")  # the third chunk fails
    assert failed.returncode == 1 and "refusing loan 1200" in failed.stderr
    newer = packages.challengers[0]
    assert batchpred("deploy", "replace", "credit", "--model", str(newer), "--reason",
                     "scheduled_refresh").returncode == 0

    resumed = batchpred(*job, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((home / "jobs" / "nightly" / "report.json").read_text())
    assert report["model_digest"] == _digest(packages.champion)
    assert report["resumed_chunks"] == 2
    scored = pcsv.read_csv(out)
    assert scored["loan_id"].to_pylist() == packages.table["loan_id"].to_pylist()
    got = scored[f"{TARGET}_yes_PREDICTION"].to_numpy()
    np.testing.assert_allclose(got, _expected_yes(packages.table, 680.0), rtol=1e-9)
    assert not np.allclose(got, _expected_yes(packages.table, 610.0))
    fresh = batchpred("score", "--model", "credit", "--input", str(packages.csv), "--output",
                      str(tmp_path / "new.csv"), "--workers", "0", "--quiet", "--no-monitoring")
    assert fresh.returncode == 0, fresh.stderr  # a new job scores with the new champion
    np.testing.assert_allclose(
        pcsv.read_csv(tmp_path / "new.csv")[f"{TARGET}_yes_PREDICTION"].to_numpy(),
        _expected_yes(packages.table, 610.0), rtol=1e-9)
