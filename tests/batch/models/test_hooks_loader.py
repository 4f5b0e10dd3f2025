"""Python hook packages: user code errors and output that breaks the contract."""

from __future__ import annotations

import sys

import joblib
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from batch.errors import ModelOutputError, PackageError, UserCodeError

HEADER = '''\
from pathlib import Path

import joblib
import numpy as np
import pandas as pd


def load_model(path):
    return joblib.load(Path(path) / "model.joblib")


def proba(frame, model):
    return pd.DataFrame(model.predict_proba(frame), columns=[str(c) for c in model.classes_])
'''

BAD_OUTPUTS = {
    "not summing to one": (
        "def score(frame, model, **kwargs):\n    return proba(frame, model) * 0.5\n",
        r"invalid probabilities \[0\.\d+, 0\.\d+\] .*sum to 1",
    ),
    "NaN": (
        "def score(frame, model, **kwargs):\n"
        "    out = proba(frame, model)\n"
        "    out.iloc[3, 1] = np.nan\n"
        "    return out\n",
        r"invalid probabilities \[.*nan\] for scored row 3 \(1 such rows\)",
    ),
    "wrong columns": (
        "def score(frame, model, **kwargs):\n"
        "    return proba(frame, model).set_axis(['N', 'Y'], axis=1)\n",
        r"columns \['no', 'yes'\]; got \d+ rows with \['N', 'Y'\]",
    ),
    "too few rows": (
        "def score(frame, model, **kwargs):\n    return proba(frame, model).iloc[1:]\n",
        r"must return 40 rows .*; got 39 rows",
    ),
    "not a DataFrame": (
        "def score(frame, model, **kwargs):\n    return model.predict_proba(frame)\n",
        r"score\(\) returned ndarray, expected a DataFrame",
    ),
}


@pytest.mark.parametrize("case", BAD_OUTPUTS, ids=list(BAD_OUTPUTS))
def test_bad_output_is_a_model_output_error_naming_the_package(
    make_hooks_package, scoring_frame, score_frame, case
):
    code, pattern = BAD_OUTPUTS[case]
    name = "hooks-" + case.replace(" ", "-").lower()
    trained = make_hooks_package(name, HEADER + code)
    with pytest.raises(ModelOutputError, match=pattern) as info:
        score_frame(trained, scoring_frame.head(40))
    assert f"package '{name}' v1 ({trained.package.short_id})" in str(info.value)


def test_score_raising_is_a_user_code_error(make_hooks_package, scoring_frame, score_frame):
    code = HEADER + (
        "def score(frame, model, **kwargs):\n"
        "    raise KeyError('credit_limit')\n"
    )
    trained = make_hooks_package("hooks-raises", code)
    with pytest.raises(UserCodeError, match=r"'hooks-raises'.*score\(\) raised KeyError: "
                                             r"'credit_limit'") as info:
        score_frame(trained, scoring_frame.head(5))
    assert isinstance(info.value.__cause__, KeyError)


def test_load_model_raising_is_a_user_code_error(make_hooks_package):
    code = "def load_model(path):\n    return 1 / 0\n\ndef score(frame, model):\n    pass\n"
    with pytest.raises(UserCodeError, match=r"load_model\(\) raised ZeroDivisionError"):
        make_hooks_package("hooks-load-fails", code)


def test_import_error_in_custom_py_is_a_user_code_error(make_hooks_package):
    with pytest.raises(UserCodeError, match=r"custom\.py: importing raised ModuleNotFoundError"):
        make_hooks_package("hooks-bad-import", "import not_a_module_anywhere\n")


def test_missing_hook_is_a_package_error(make_hooks_package):
    code = "def load_model(path):\n    return None\n"
    with pytest.raises(PackageError, match=r"custom\.py: defines no score\(\) hook"):
        make_hooks_package("hooks-no-score", code)


def test_each_package_imports_its_own_custom_module(
    hooks_package, make_hooks_package, scoring_frame, score_frame
):
    """Two packages, both with a ``custom.py``: neither shadows the other."""
    flipped = make_hooks_package("hooks-flipped", HEADER + (
        "def score(frame, model, **kwargs):\n"
        "    out = proba(frame, model)\n"
        "    return out.rename(columns={'no': 'yes', 'yes': 'no'})\n"
    ))
    path_before = list(sys.path)
    plain = score_frame(hooks_package, scoring_frame)
    swapped = score_frame(flipped, scoring_frame)
    again = score_frame(hooks_package, scoring_frame)
    assert sys.path == path_before
    ref = hooks_package.estimator.predict_proba(scoring_frame[list(hooks_package.features)])
    assert_allclose(plain["default_yes_PREDICTION"], ref[:, 1], rtol=0, atol=1e-9)
    assert_allclose(swapped["default_yes_PREDICTION"], ref[:, 0], rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(plain, again)
    assert "custom" not in sys.modules


def test_regression_hooks_return_predictions(
    regressor_package, build_package, tmp_path_factory, scoring_frame, score_frame
):
    src = tmp_path_factory.mktemp("hooks-regression") / "src"
    src.mkdir()
    (src / "custom.py").write_text(HEADER.replace("def proba", "def _unused") + (
        "def score(frame, model, **kwargs):\n"
        "    return pd.DataFrame({'Predictions': model.predict(frame)})\n"
    ))
    joblib.dump(regressor_package.estimator, src / "model.joblib")
    trained = build_package("amount-hooks", regressor_package.estimator,
                            regressor_package.data, "amount",
                            features=regressor_package.features, artifact=src)
    assert trained.package.manifest.target.type == "regression"  # a continuous target
    out = score_frame(trained, scoring_frame)
    expected = regressor_package.estimator.predict(scoring_frame[list(trained.features)])
    assert_allclose(out["amount_PREDICTION"], expected, rtol=0, atol=1e-9)

