"""Shared fixtures: small real models trained on a deterministic synthetic dataset.

Every model fixture is session-scoped and returns a :class:`TrainedPackage`: the
package directory written by ``batch.models.builder.create_package``, the fitted
estimator (the independent reference tests compare against) and the rows it
was trained on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import resolve_check
from batchpred_cli import Batchpred
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from batch.models import ModelCache, ModelPackage, open_package
from batch.models.builder import PackageSpec, create_package
from batch.scoring.chunk import score_batch
from batch.scoring.columns import ScoringOptions

NUMERIC = ("income", "debt_ratio", "tenure")
CATEGORICAL = ("purpose",)
FEATURES = NUMERIC + CATEGORICAL
PURPOSES = ("car", "home", "education", "travel")
TRAIN_ROWS = 3000


def pytest_collection_finish(session: pytest.Session) -> None:
    """The slow network check of ``test_project`` starts now, if it is selected, and runs
    while the other tests do (see :mod:`resolve_check`)."""
    if not session.config.option.collectonly:
        resolve_check.start_if_selected(item.name for item in session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    resolve_check.stop()  # started, but its test did not run


@dataclass(frozen=True, slots=True)
class TrainedPackage:
    """A package built from a real fitted model, with what it was built from."""

    path: Path
    estimator: Any
    data: pd.DataFrame  # id, features and target, as trained on
    target: str
    features: tuple[str, ...]

    @property
    def package(self) -> ModelPackage:
        return open_package(self.path)


def synthetic_frame(n: int, seed: int) -> pd.DataFrame:
    """``id``, numeric and categorical features with missing values, and three targets.

    ``default`` (binary "no"/"yes"), ``segment`` (3 classes) and ``amount``
    (continuous) all depend on the features, so the models learn something.
    """
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, n).round(2)
    debt_ratio = rng.beta(2, 5, n)
    tenure = rng.integers(0, 30, n)
    purpose = rng.choice(np.array(PURPOSES, dtype=object), n)
    effect = pd.Series(purpose).map({"car": 0.3, "home": -0.6, "education": 0.8, "travel": 0.1})
    z = (income - 50_000) / 15_000 - 4 * (debt_ratio - 0.3) + 0.03 * tenure + effect.to_numpy()
    scores = np.stack([-z, 0.5 * rng.normal(size=n), z], axis=1) + rng.normal(size=(n, 3))
    frame = pd.DataFrame({
        "id": np.arange(1, n + 1),
        "income": income,
        "debt_ratio": debt_ratio,
        "tenure": tenure,
        "purpose": purpose,
        "default": np.where(z + rng.normal(scale=0.8, size=n) > 0, "yes", "no"),
        "segment": np.array(["bronze", "silver", "gold"], dtype=object)[scores.argmax(axis=1)],
        "amount": 0.1 * income - 2_000 * debt_ratio + 50 * tenure + rng.normal(0, 300, n),
    })
    frame.loc[rng.random(n) < 0.08, "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "debt_ratio"] = np.nan
    frame.loc[rng.random(n) < 0.10, "purpose"] = np.nan
    return frame


def _preprocessor(*, categorical_missing: Any = np.nan) -> ColumnTransformer:
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(missing_values=categorical_missing, strategy="constant",
                      fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    return ColumnTransformer([("num", numeric, list(NUMERIC)),
                              ("cat", categorical, list(CATEGORICAL))])


def _logistic(**kwargs: Any) -> Pipeline:
    return Pipeline([("pre", _preprocessor(**kwargs)), ("clf", LogisticRegression(max_iter=500))])


@pytest.fixture(scope="session")
def training_frame() -> pd.DataFrame:
    return synthetic_frame(TRAIN_ROWS, seed=0)


@pytest.fixture(scope="session")
def scoring_frame() -> pd.DataFrame:
    """Fresh rows (not trained on), including a category the models never saw."""
    frame = synthetic_frame(600, seed=1)
    frame.loc[frame.index % 97 == 5, "purpose"] = "boat"
    return frame


@pytest.fixture(scope="session")
def write_table(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``write_table(frame, name, fmt="parquet") -> path``: the rows as CSV or Parquet."""
    root = tmp_path_factory.mktemp("tables")

    def write(frame: pd.DataFrame, name: str, fmt: str = "parquet") -> str:
        path = root / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            raise ValueError(f"unknown format {fmt!r}")
        return str(path)

    return write


@pytest.fixture(scope="session")
def build_package(
    tmp_path_factory: pytest.TempPathFactory, write_table: Callable[..., str]
) -> Callable[..., TrainedPackage]:
    """Dump ``estimator``, write its training rows and run ``create_package``."""

    def build(name: str, estimator: Any, data: pd.DataFrame, target: str, *,
              features: tuple[str, ...], artifact: Path | None = None,
              **spec: Any) -> TrainedPackage:
        if artifact is None:
            artifact = tmp_path_factory.mktemp(f"{name}-artifact") / "model.joblib"
            joblib.dump(estimator, artifact)
        columns = ["id", *features, target]
        spec.setdefault("association_id", "id")
        path = tmp_path_factory.mktemp(name) / "package"
        create_package(path, PackageSpec(
            artifact=artifact, training_data=write_table(data[columns], name), target=target,
            name=name, **spec,
        ))
        return TrainedPackage(path, estimator, data[columns], target, features)

    return build


@pytest.fixture(scope="session")
def logistic_package(
    training_frame: pd.DataFrame, build_package: Callable[..., TrainedPackage]
) -> TrainedPackage:
    """Binary "no"/"yes": LogisticRegression after impute/scale/one-hot."""
    model = _logistic().fit(training_frame[list(FEATURES)], training_frame["default"])
    return build_package("credit-logistic", model, training_frame, "default", features=FEATURES)


@pytest.fixture(scope="session")
def hgb_package(
    training_frame: pd.DataFrame, build_package: Callable[..., TrainedPackage]
) -> TrainedPackage:
    """Binary 0/1 (integer labels): gradient boosting on the numeric features."""
    data = training_frame.assign(defaulted=(training_frame["default"] == "yes").astype(int))
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    model.fit(data[list(NUMERIC)], data["defaulted"])
    return build_package("credit-hgb", model, data, "defaulted", features=NUMERIC)


@pytest.fixture(scope="session")
def regressor_package(
    training_frame: pd.DataFrame, build_package: Callable[..., TrainedPackage]
) -> TrainedPackage:
    model = Pipeline([("pre", _preprocessor()), ("reg", Ridge(alpha=1.0))])
    model.fit(training_frame[list(FEATURES)], training_frame["amount"])
    return build_package("loan-amount", model, training_frame, "amount", features=FEATURES)


@pytest.fixture(scope="session")
def multiclass_package(
    training_frame: pd.DataFrame, build_package: Callable[..., TrainedPackage]
) -> TrainedPackage:
    """Three string classes: bronze / gold / silver."""
    model = _logistic().fit(training_frame[list(FEATURES)], training_frame["segment"])
    return build_package("segment", model, training_frame, "segment", features=FEATURES)


def _missing_as_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as the ONNX loader feeds them: a missing category becomes ""."""
    return frame.assign(purpose=frame["purpose"].fillna(""))


@pytest.fixture(scope="session")
def convertible_package(
    training_frame: pd.DataFrame, build_package: Callable[..., TrainedPackage]
) -> TrainedPackage:
    """A logistic pipeline that skl2onnx converts exactly: the categories go straight
    to a one-hot encoder (skl2onnx refuses a NaN imputer), trained with missing ones
    spelled "missing", so a missing category at scoring time is an unknown value."""
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), list(NUMERIC)),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
    ])
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])
    train = training_frame.assign(purpose=training_frame["purpose"].fillna("missing"))
    model.fit(train[list(FEATURES)], train["default"])
    return build_package("credit-convertible", model, training_frame, "default",
                         features=FEATURES)


@pytest.fixture(scope="session")
def onnx_package(
    tmp_path_factory: pytest.TempPathFactory,
    training_frame: pd.DataFrame,
    build_package: Callable[..., TrainedPackage],
) -> TrainedPackage:
    """The logistic pipeline converted with skl2onnx, one input per column.

    skl2onnx converts a string imputer only for a string missing value, and the
    onnx loader feeds a missing category as "", so this variant imputes "".
    ``estimator`` is that scikit-learn pipeline; give it "" for a missing category.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    model = _logistic(categorical_missing="")
    model.fit(_missing_as_empty(training_frame)[list(FEATURES)], training_frame["default"])
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    types += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    onx = convert_sklearn(model, initial_types=types,
                          options={id(model.named_steps["clf"]): {"zipmap": False}})
    artifact = tmp_path_factory.mktemp("onnx-artifact") / "model.onnx"
    artifact.write_bytes(onx.SerializeToString())
    return build_package("credit-onnx", model, training_frame, "default", features=FEATURES,
                         artifact=artifact)


HOOKS_CODE = '''\
"""Custom-model hooks around a joblib pipeline."""
from pathlib import Path

import joblib
import pandas as pd


def load_model(path):
    return joblib.load(Path(path) / "model.joblib")


def score(frame, model, **kwargs):
    return pd.DataFrame(model.predict_proba(frame), columns=[str(c) for c in model.classes_])
'''


@pytest.fixture(scope="session")
def make_hooks_package(
    tmp_path_factory: pytest.TempPathFactory,
    logistic_package: TrainedPackage,
    build_package: Callable[..., TrainedPackage],
) -> Callable[[str, str], TrainedPackage]:
    """``make_hooks_package(name, code)``: a ``python`` package of the logistic pipeline.

    ``code`` becomes its ``custom.py``; ``model.joblib`` sits beside it.
    """

    def make(name: str, code: str) -> TrainedPackage:
        model = logistic_package.estimator
        artifact = tmp_path_factory.mktemp(f"{name}-artifact") / "src"
        artifact.mkdir()
        (artifact / "custom.py").write_text(textwrap.dedent(code), encoding="utf-8")
        joblib.dump(model, artifact / "model.joblib")
        return build_package(name, model, logistic_package.data, "default", features=FEATURES,
                             artifact=artifact)

    return make


@pytest.fixture(scope="session")
def hooks_package(make_hooks_package: Callable[[str, str], TrainedPackage]) -> TrainedPackage:
    """Kind ``python``: ``custom.py`` scoring the logistic pipeline."""
    return make_hooks_package("credit-hooks", HOOKS_CODE)


@pytest.fixture(scope="session")
def model_cache() -> ModelCache:
    """One cache for the session, so each package loads once across tests."""
    return ModelCache(maxsize=32)


@pytest.fixture(scope="session")
def score_frame(model_cache: ModelCache) -> Callable[..., pd.DataFrame]:
    """``score_frame(package, frame, options=None) -> DataFrame`` via ``score_batch``."""

    def score(package: TrainedPackage | ModelPackage, frame: pd.DataFrame | pa.RecordBatch,
              options: ScoringOptions | None = None) -> pd.DataFrame:
        pkg = package.package if isinstance(package, TrainedPackage) else package
        batch = frame if isinstance(frame, pa.RecordBatch) else \
            pa.RecordBatch.from_pandas(frame, preserve_index=False)
        out = score_batch(batch, pkg, model_cache.get(pkg), options or ScoringOptions())
        return out.to_pandas()

    return score


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The batchpred home of a test's commands (jobs, deployments, conversions)."""
    return tmp_path / "home"


@pytest.fixture
def batchpred(home: Path) -> Batchpred:
    """The installed ``batchpred`` console script, run in a subprocess with ``home``."""
    return Batchpred(home)


@pytest.fixture
def batchpred_here(home: Path) -> Batchpred:
    """``batchpred`` in this process with ``home`` (see :func:`batchpred_cli.invoke`)."""
    return Batchpred(home, in_process=True)
