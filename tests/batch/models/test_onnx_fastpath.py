"""The ONNX fast path: used only where skl2onnx's conversion matches scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose

from batch.engine.run import run_job
from batch.engine.spec import JobSpec
from batch.engine.store import JobStore
from batch.models import ModelCache, configure_process_cache, process_cache
from batch.models.onnx_fastpath import TOLERANCE, build_fast_path, model_path, verdict_path
from batch.scoring.features import coerce_features

PROBA = ["default_no_PREDICTION", "default_yes_PREDICTION"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("BATCHPRED_HOME", str(home))
    return home


def _score(trained, frame: pd.DataFrame, tmp_path: Path, name: str, **kw):  # type: ignore[no-untyped-def]
    src = tmp_path / f"{name}-in.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / f"{name}.csv"
    report = run_job(JobSpec(model=str(trained.path), input=str(src), output=str(out),
                             passthrough=("id",), job_id=name, **kw))
    return report, pcsv.read_csv(out).to_pandas()


def _reference(trained, frame: pd.DataFrame) -> np.ndarray:  # type: ignore[no-untyped-def]
    return trained.estimator.predict_proba(frame[list(trained.features)])


def test_an_exact_conversion_scores_with_onnxruntime(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    report, out = _score(convertible_package, scoring_frame, tmp_path, "fast",
                         chunk_rows=100, workers=2)
    assert report.scorer.startswith("onnxruntime (max |diff|"), report.scorer
    assert model_path(home / "onnx", convertible_package.package).exists()
    ref = _reference(convertible_package, scoring_frame)
    got = out[PROBA].to_numpy()
    assert_allclose(got, ref, rtol=0, atol=TOLERANCE)
    assert np.abs(got - ref).max() > 0  # float32 in onnxruntime: not bit-identical
    # rows missing the category go to scikit-learn: exact there
    missing = scoring_frame["purpose"].isna().to_numpy()
    assert missing.sum() > 10
    assert_allclose(got[missing], ref[missing], rtol=0, atol=1e-12)
    labels = convertible_package.estimator.predict(
        scoring_frame[list(convertible_package.features)])
    assert out["default_PREDICTION"].tolist() == list(labels)
    assert set(report.model_loads.values()) == {1}  # the ONNX model, once per process


def test_no_onnx_scores_with_scikit_learn(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    report, out = _score(convertible_package, scoring_frame, tmp_path, "plain", onnx=False)
    assert report.scorer == "sklearn"
    assert_allclose(out[PROBA].to_numpy(), _reference(convertible_package, scoring_frame),
                    rtol=0, atol=1e-9)


def test_a_model_skl2onnx_cannot_convert_scores_with_scikit_learn(
    logistic_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    report, out = _score(logistic_package, scoring_frame, tmp_path, "first")
    assert report.scorer.startswith("scikit-learn: no ONNX conversion"), report.scorer
    assert "missing values are string" in report.scorer
    assert_allclose(out[PROBA].to_numpy(), _reference(logistic_package, scoring_frame),
                    rtol=0, atol=1e-9)
    failed = verdict_path(home / "onnx", logistic_package.package)
    assert failed.read_text() == report.scorer
    again, _ = _score(logistic_package, scoring_frame, tmp_path, "second")
    assert again.scorer == report.scorer  # the failed conversion is not tried again


class _Shifted:
    """A reference that disagrees with the model by ``shift``."""

    def __init__(self, scorer, shift: float) -> None:  # type: ignore[no-untyped-def]
        self.scorer, self.shift = scorer, shift

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.scorer.predict(frame) + self.shift


def _scorer_and_sample(trained, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    """The package's scikit-learn scorer, and ``frame``'s valid rows as features."""
    package = trained.package
    batch = pa.Table.from_pandas(frame, preserve_index=False).to_batches()[0]
    features = coerce_features(batch, package.manifest)
    return ModelCache().get(package), features.frame.loc[features.valid].reset_index(drop=True)


@pytest.mark.parametrize(("shift", "used"), [(5e-7, True), (5e-6, False)])
def test_the_conversion_is_used_only_within_the_tolerance(
    convertible_package, scoring_frame, shift: float, used: bool
) -> None:
    package = convertible_package.package
    scorer, sample = _scorer_and_sample(convertible_package, scoring_frame)
    fast = build_fast_path(package, convertible_package.estimator, _Shifted(scorer, shift),
                           sample)
    assert (fast.model is not None) is used, fast.note
    if not used:
        assert fast.note.startswith("scikit-learn: ONNX differs by ")
        assert f"on {len(sample):,} sample rows" in fast.note


def test_the_fast_path_is_per_job_and_the_store_is_shared(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    first, _ = _score(convertible_package, scoring_frame, tmp_path, "a")
    cached = model_path(home / "onnx", convertible_package.package)
    stamp = cached.stat().st_mtime_ns
    second, _ = _score(convertible_package, scoring_frame, tmp_path, "b")
    assert first.scorer == second.scorer and cached.stat().st_mtime_ns == stamp
    assert JobStore(home).report("b")["scorer"] == second.scorer


def test_a_home_that_cannot_keep_the_conversion_scores_with_scikit_learn(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    home.mkdir(parents=True)
    (home / "onnx").write_text("not a directory")
    report, out = _score(convertible_package, scoring_frame, tmp_path, "unkept", workers=2,
                         chunk_rows=200)
    assert report.scorer == f"scikit-learn: {home / 'onnx'} cannot be written"
    assert_allclose(out[PROBA].to_numpy(), _reference(convertible_package, scoring_frame),
                    rtol=0, atol=1e-9)


@pytest.mark.slow
def test_a_remote_dask_cluster_scores_with_scikit_learn(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        report, out = _score(convertible_package, scoring_frame, tmp_path, "remote",
                             executor="dask", dask_address=cluster.scheduler_address,
                             chunk_rows=200)
    assert report.scorer == "sklearn"  # its workers could not read this home's file
    assert_allclose(out[PROBA].to_numpy(), _reference(convertible_package, scoring_frame),
                    rtol=0, atol=1e-9)


def test_a_gradient_boosting_model_scores_with_onnxruntime(
    hgb_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    frame = scoring_frame
    report, out = _score(hgb_package, frame, tmp_path, "hgb", chunk_rows=150, workers=2)
    assert report.scorer.startswith("onnxruntime (max |diff|"), report.scorer
    names = [f"defaulted_{c}_PREDICTION" for c in (0, 1)]
    ref = hgb_package.estimator.predict_proba(frame[list(hgb_package.features)])
    assert np.isnan(frame[list(hgb_package.features)].to_numpy(dtype=float)).any()
    assert_allclose(out[names].to_numpy(), ref, rtol=0, atol=TOLERANCE)


def test_a_kept_conversion_scores_without_loading_scikit_learn(
    convertible_package, scoring_frame, home: Path, tmp_path: Path
) -> None:
    frame = scoring_frame.dropna(subset=["purpose"])  # no row needs scikit-learn's fallback
    digest = convertible_package.package.digest
    first, _ = _score(convertible_package, frame, tmp_path, "convert", workers=1)
    assert digest in process_cache()  # the conversion was checked against scikit-learn
    configure_process_cache()
    try:
        second, out = _score(convertible_package, frame, tmp_path, "kept", workers=1)
        assert second.scorer == first.scorer
        assert second.scorer.endswith("rows when converted)"), second.scorer
        assert digest not in process_cache()
        assert_allclose(out[PROBA].to_numpy(), _reference(convertible_package, frame),
                        rtol=0, atol=TOLERANCE)
    finally:
        configure_process_cache()


def test_a_conversion_that_differs_is_not_tried_again(
    convertible_package, scoring_frame, home: Path
) -> None:
    package = convertible_package.package
    scorer, sample = _scorer_and_sample(convertible_package, scoring_frame)
    cache = home / "onnx"
    differs = build_fast_path(package, convertible_package.estimator, _Shifted(scorer, 1e-3),
                              sample, cache=cache)
    assert differs.model is None and not model_path(cache, package).exists()
    again = build_fast_path(package, convertible_package.estimator, scorer, sample, cache=cache)
    assert again == differs
    assert verdict_path(cache, package).read_text() == differs.note


def test_parquet_categories_stream_dictionary_encoded_and_score_the_same(
    convertible_package, scoring_frame, home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors import IntakeRequest, row_groups
    from connectors.files import FileIntake

    monkeypatch.setattr(row_groups, "MAX_GROUP_ROWS", 10)  # the file streams, in chunks
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(scoring_frame, preserve_index=False), src)
    intake = FileIntake(IntakeRequest(uri=str(src), chunk_rows=100,
                                      dictionary_columns=("purpose", "absent")))
    assert pa.types.is_dictionary(next(intake.batches()).schema.field("purpose").type)
    intake.close()

    def run(name: str, passthrough: tuple[str, ...]) -> pa.Table:
        out = tmp_path / f"{name}.parquet"
        run_job(JobSpec(model=str(convertible_package.path), input=str(src), output=str(out),
                        passthrough=passthrough, job_id=name, chunk_rows=100, workers=2))
        return pq.read_table(out)

    encoded = run("encoded", ("id",))  # purpose reaches only the model: read encoded
    plain = run("plain", ("id", "purpose"))  # passed through: read as it is
    assert plain.schema.field("purpose").type == pa.string()
    assert plain.column("purpose").to_pylist() == [
        None if pd.isna(v) else v for v in scoring_frame["purpose"]]
    assert encoded.equals(plain.drop_columns(["purpose"]))
