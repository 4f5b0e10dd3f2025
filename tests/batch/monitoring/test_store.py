"""The monitoring store: exactly-once files, windows, compaction, and files it must skip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.errors import ConfigError
from batch.monitoring.baseline import Baseline, numeric_profile
from batch.monitoring.drift import merge_table
from batch.monitoring.records import ChunkFacts, Producer, health_table, stats_table
from batch.monitoring.stats import ChunkStats, _count
from batch.monitoring.store import MonitoringStore, parse_time

DAY = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    rng = np.random.default_rng(1)
    return Baseline(rows=5_000, features=(numeric_profile("x", rng.normal(0, 1, 5_000)),),
                    predictions=(numeric_profile("y_PREDICTION", rng.uniform(0, 1, 5_000)),),
                    prediction_source="training", importance={"x": 1.0},
                    importance_source="given", fingerprint="a" * 64)


def chunks_of(baseline: Baseline, *, n: int, at: datetime, seed: int) -> list[ChunkFacts]:
    """``n`` chunks of 1,000 rows, one a minute from ``at``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        columns = (_count(baseline.features[0], rng.normal(0.2, 1, 1_000)),
                   _count(baseline.predictions[0], rng.uniform(0, 1, 1_000)))
        stats = ChunkStats(baseline.fingerprint, 1_000, columns)
        out.append(ChunkFacts(i, 1_000, 3, 0.25, at + timedelta(minutes=i), stats))
    return out


def publish(store: MonitoringStore, baseline: Baseline, job: str, chunks: list[ChunkFacts]
            ) -> list[str]:
    producer = Producer("credit", "d" * 64, job)
    return store.publish("credit", job, {
        "stats": stats_table(producer, chunks, ["y_PREDICTION"]),
        "health": health_table(producer, chunks)})


def merged(store: MonitoringStore, **window: datetime) -> ChunkStats:
    (only,) = merge_table(store.read("credit", "stats", **window).table).values()
    return ChunkStats(only.fingerprint, only.rows, tuple(only.columns.values()))


def test_publishing_a_job_twice_writes_the_same_files(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    chunks = chunks_of(baseline, n=5, at=DAY, seed=1)
    first = publish(store, baseline, "job-1", chunks)
    again = publish(store, baseline, "job-1", chunks)  # a resumed job, a retried flow task
    assert first == again and len(first) == 2
    assert "deployment=credit/kind=stats/date=2026-11-20/job-job-1.parquet" in first[0]
    found = store.read("credit", "stats")
    assert found.table.num_rows == 10 and found.files == 1  # 5 chunks x 2 columns, once
    health = store.read("credit", "health").table
    assert health.column("rows_failed").to_pylist() == [3] * 5
    assert not list((tmp_path / "store").rglob("*.tmp*"))


def test_a_job_across_midnight_goes_to_both_days(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    late = datetime(2026, 11, 20, 23, 58, tzinfo=UTC)
    paths = publish(store, baseline, "night", chunks_of(baseline, n=4, at=late, seed=2))
    assert sorted(Path(p).parent.name for p in paths) == [
        "date=2026-11-20", "date=2026-11-20", "date=2026-11-21", "date=2026-11-21"]
    assert store.read("credit", "stats").table.num_rows == 8


def test_the_window_reads_only_its_days_and_rows(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    for day in range(5):
        publish(store, baseline, f"day-{day}",
                chunks_of(baseline, n=2, at=DAY + timedelta(days=day), seed=day))
    window = store.read("credit", "stats", since=DAY + timedelta(days=1),
                        until=DAY + timedelta(days=3, hours=-1))
    assert window.files == 3  # the days of the window: the 21st, 22nd and 23rd
    assert sorted(set(window.table.column("job_id").to_pylist())) == ["day-1", "day-2"]
    one = store.read("credit", "stats", job_id="day-4")
    assert set(one.table.column("job_id").to_pylist()) == {"day-4"}


def test_compaction_merges_a_day_and_counts_nothing_twice(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    for hour in range(6):
        publish(store, baseline, f"h{hour}",
                chunks_of(baseline, n=3, at=DAY + timedelta(hours=hour), seed=hour))
    before = merged(store)
    done = store.compact("credit")
    assert [replaced for _, replaced in done] == [6, 6]  # stats and health of the day
    day = tmp_path / "store" / "deployment=credit" / "kind=stats" / "date=2026-11-20"
    assert [p.name for p in day.iterdir()] == [Path(done[0][0]).name]
    after = store.read("credit", "stats")
    assert after.files == 1 and after.table.num_rows == 6 * 2  # a row per job, hour, column
    assert merged(store) == before  # exact: counts, extremes and exact sums
    health = store.read("credit", "health").table
    assert sum(health.column("rows_in").to_pylist()) == 6 * 3 * 1_000
    assert store.compact("credit") == []  # one file a day: nothing to do


def test_a_compaction_stopped_before_it_removed_its_inputs(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    for hour in range(3):
        publish(store, baseline, f"h{hour}",
                chunks_of(baseline, n=2, at=DAY + timedelta(hours=hour), seed=hour))
    before = merged(store)
    day = tmp_path / "store" / "deployment=credit" / "kind=stats" / "date=2026-11-20"
    kept = {p.name: p.read_bytes() for p in day.iterdir()}
    store.compact("credit")
    for name, data in kept.items():  # as if the process died before removing them
        (day / name).write_bytes(data)
    assert merged(store) == before  # the compacted file supersedes them
    store.compact("credit")  # and the next compaction removes them
    assert merged(store) == before and len(list(day.iterdir())) == 1


def test_corrupt_truncated_and_foreign_files_are_skipped_with_a_warning(
        baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    (path,) = [p for p in publish(store, baseline, "good", chunks_of(baseline, n=2, at=DAY,
                                                                   seed=1)) if "stats" in p]
    day = Path(path).parent
    (day / "job-corrupt.parquet").write_bytes(b"not parquet at all")
    (day / "job-cut.parquet").write_bytes(Path(path).read_bytes()[:200])
    pq.write_table(pa.table({"a": [1, 2]}), day / "job-foreign.parquet")
    (day / "_job-writing.parquet").write_bytes(b"half")  # being written: never read
    found = store.read("credit", "stats")
    assert found.table.num_rows == 4 and found.files == 1
    assert len(found.warnings) == 3
    assert all(w.startswith("skipped ") for w in found.warnings)
    assert any("job-foreign.parquet" in w and "not a stats record table" in w
               for w in found.warnings)


def test_ids_that_could_leave_the_store_are_refused(baseline, tmp_path: Path) -> None:
    store = MonitoringStore(str(tmp_path / "store"))
    with pytest.raises(ConfigError, match="deployment id '../x'"):
        store.read("../x", "stats")
    with pytest.raises(ConfigError, match="job id"):
        publish(store, baseline, "a/b", chunks_of(baseline, n=1, at=DAY, seed=1))


def test_times_are_iso_or_an_age() -> None:
    assert parse_time("2026-12-01", option="--since") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("2026-12-01T10:00+01:00", option="--since").utcoffset() == timedelta(
        hours=1)
    ago = datetime.now(UTC) - parse_time("24h", option="--since")
    assert timedelta(hours=23, minutes=59) < ago < timedelta(hours=24, minutes=1)
    with pytest.raises(ConfigError, match="--until 'yesterday' is not a time"):
        parse_time("yesterday", option="--until")


def _log(n: int, first: int) -> pa.RecordBatch:
    from batch.scoring.prediction_log import LOG_SCHEMA

    p = np.linspace(0.1, 0.9, n)
    return pa.RecordBatch.from_arrays(
        [pa.array([f"id-{first + i:05d}" for i in range(n)]), pa.array(np.arange(n)),
         pa.array(p), pa.array(np.where(p > 0.5, "yes", "no")),
         pa.array([[1 - v, v] for v in p], pa.list_(pa.float64()))], schema=LOG_SCHEMA)


def test_a_log_published_chunk_by_chunk_reads_back_as_plain_records(tmp_path: Path) -> None:
    from batch.monitoring.records import prediction_rows

    store = MonitoringStore(str(tmp_path / "store"))
    producer = Producer("credit", "d" * 64, "job-1")
    # three chunks, the last one after midnight: two files, one per day
    at = [DAY, DAY + timedelta(hours=5), DAY + timedelta(hours=14)]
    parts = [prediction_rows(producer, ChunkFacts(i, 100, 0, 0.5, t, None), _log(100, 100 * i))
             for i, t in enumerate(at)]
    assert pa.types.is_dictionary(parts[0].schema.field("model_id").type)  # encoded in memory
    written = store.publish_parts("credit", "job-1", "predictions", iter(parts))
    assert [Path(p).parent.name for p in written] == ["date=2026-11-20", "date=2026-11-21"]
    mine = store.publish_parts("credit", "job-1", "predictions", iter(parts[:1]), part="abc123")
    assert Path(mine[0]).name == "job-job-1~abc123.parquet"

    found = store.read("credit", "predictions")
    assert found.warnings == [] and found.files == 3
    table = found.table.sort_by([("hour", "ascending"), ("association_id", "ascending")])
    assert table.num_rows == 400
    assert table.schema.field("model_id").type == pa.string()  # plain for every reader
    from batch.monitoring.records import PREDICTIONS_SCHEMA

    expected = pa.concat_tables([*parts, parts[0]]).cast(PREDICTIONS_SCHEMA).sort_by(
        [("hour", "ascending"), ("association_id", "ascending")])
    for name in ("association_id", "row", "prediction", "label", "probabilities", "hour",
                 "model_id", "chunk_index"):
        assert table.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert pq.read_table(written[0]).schema.field("job_id").type == pa.string()


def test_a_log_publication_that_fails_leaves_no_file(tmp_path: Path) -> None:
    from batch.monitoring.records import prediction_rows

    store = MonitoringStore(str(tmp_path / "store"))
    producer = Producer("credit", "d" * 64, "job-1")
    before = prediction_rows(producer, ChunkFacts(0, 10, 0, 0.5, DAY, None), _log(10, 0))
    (path,) = store.publish_parts("credit", "job-1", "predictions", iter([before]))
    kept = Path(path).read_bytes()

    def parts():  # type: ignore[no-untyped-def]
        yield prediction_rows(producer, ChunkFacts(0, 100, 0, 0.5, DAY, None), _log(100, 0))
        raise RuntimeError("chunk 1's log is gone")

    with pytest.raises(RuntimeError, match="gone"):
        store.publish_parts("credit", "job-1", "predictions", parts())
    assert Path(path).read_bytes() == kept  # the earlier file, whole
    assert sorted(p.name for p in Path(path).parent.iterdir()) == [Path(path).name]
    with pytest.raises(ConfigError, match="part"):
        store.publish_parts("credit", "job-1", "predictions", iter([before]), part="../x")
