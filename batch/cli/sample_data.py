"""The quickstart's sample data and model: credit-risk-like rows and a logistic pipeline.

Everything is generated here, deterministically; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

TARGET = "is_default"
TRAIN_ROWS = 50_000
SEED = 20260101
_PURPOSES = ["car", "home", "education", "business", "medical", "debt", "other"]
_HOMES = ["rent", "own", "mortgage"]
_STATES = ["CA", "TX", "NY", "FL", "IL", "PA", "OH", "GA", "NC", "MI"]


def credit_table(rows: int, *, seed: int = SEED) -> pa.Table:
    """A credit-risk-like table: id, numeric and categorical features, some missing."""
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 75, rows)
    income = np.round(rng.lognormal(10.8, 0.5, rows), 2)
    amount = np.round(rng.gamma(2.0, 6000.0, rows), 2)
    term = rng.choice([36, 60], rows, p=[0.7, 0.3])
    score = np.clip(rng.normal(680, 60, rows), 300, 850).round()
    years = np.clip(rng.exponential(6.0, rows), 0, 40).round(1)
    purpose = rng.choice(_PURPOSES, rows)
    home = rng.choice(_HOMES, rows, p=[0.4, 0.2, 0.4])
    state = rng.choice(_STATES, rows)
    logit = (-1.2 - 0.012 * (score - 680) + 1.6 * amount / income - 0.02 * years
             + 0.5 * (term == 60) + 0.4 * (purpose == "business") - 0.3 * (home == "own"))
    default = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pa.table({
        "loan_id": np.arange(1, rows + 1),
        "age": age,
        "income": _with_missing(rng, income, 0.02),
        "loan_amount": amount,
        "term_months": term,
        "credit_score": _with_missing(rng, score, 0.03),
        "employment_years": _with_missing(rng, years, 0.05),
        "purpose": _with_missing(rng, purpose.astype(object), 0.01),
        "home_ownership": home,
        "state": state,
        TARGET: np.where(default, "yes", "no"),
    })


def _with_missing(rng: np.random.Generator, values: np.ndarray, share: float) -> pa.Array:
    return pa.array(values, mask=rng.random(len(values)) < share)


def train_model(table: pa.Table) -> object:
    """A logistic ColumnTransformer pipeline on raw numeric and string columns."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = table.to_pandas()
    # missing text as pandas.read_csv gives it (NaN, not None), as scoring passes it
    frame = frame.astype(object).where(frame.notna(), np.nan).infer_objects()
    numeric = ["age", "income", "loan_amount", "term_months", "credit_score", "employment_years"]
    categorical = ["purpose", "home_ownership", "state"]
    model = make_pipeline(
        make_column_transformer(
            (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                           OneHotEncoder(handle_unknown="ignore")), categorical),
        ),
        LogisticRegression(max_iter=500),
    )
    model.fit(frame[numeric + categorical], frame[TARGET])
    return model
