"""Humility rules in score_rows: which rows fire, what each action does, what is counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from batch.errors import ConfigError
from batch.scoring.chunk import score_rows
from batch.scoring.columns import STATUS_COLUMN, ScoringOptions, failed_mask
from batch.scoring.humility import HumilityRule, resolve


def _rule(**kw) -> HumilityRule:
    return HumilityRule.model_validate({"name": "r", **kw})


@pytest.fixture
def scored(model_cache, scoring_frame):
    """``scored(trained, rules, **resolve_kw) -> (frame, fired counts, plain frame)``."""

    def run(trained, rules, frame=None, **resolve_kw):
        frame = scoring_frame if frame is None else frame
        package = trained.package
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        humility = resolve(rules, package.manifest, **resolve_kw)
        scorer = model_cache.get(package)
        out = score_rows(batch, package, scorer, ScoringOptions(humility=humility))
        plain = score_rows(batch, package, scorer, ScoringOptions())
        return out.batch.to_pandas(), out.humility, plain.batch.to_pandas()

    return run


def test_uncertain_no_op_flags_the_band_and_changes_nothing(logistic_package, scored):
    out, fired, plain = scored(logistic_package, [_rule(
        trigger="uncertain_prediction", lower=0.4, upper=0.6)])
    p = plain["default_yes_PREDICTION"].to_numpy()
    band = (p >= 0.4) & (p <= 0.6)
    assert 0 < band.sum() < len(p)
    assert fired == (int(band.sum()),)
    assert (out[STATUS_COLUMN][band] == "OK; humility: r (flagged)").all()
    assert (out[STATUS_COLUMN][~band & (plain[STATUS_COLUMN] == "OK")] == "OK").all()
    pd.testing.assert_frame_equal(out.drop(columns=STATUS_COLUMN),
                                  plain.drop(columns=STATUS_COLUMN))
    assert not failed_mask(pa.array(out[STATUS_COLUMN])).to_numpy(zero_copy_only=False)[
        band].any()  # a flagged row is not a failed row


def test_uncertain_override_sets_the_class_and_its_probability(logistic_package, scored):
    out, fired, plain = scored(logistic_package, [_rule(
        trigger="uncertain_prediction", lower=0.4, upper=0.6, action="override", value="no")])
    p = plain["default_yes_PREDICTION"].to_numpy()
    band = (p >= 0.4) & (p <= 0.6)
    assert (out["default_PREDICTION"][band] == "no").all()
    assert (out["default_no_PREDICTION"][band] == 1.0).all()
    assert (out["default_yes_PREDICTION"][band] == 0.0).all()
    assert (out[STATUS_COLUMN][band] == "OK; humility: r (overridden)").all()
    pd.testing.assert_frame_equal(out[~band], plain[~band])


def test_reject_gives_no_prediction_and_names_the_rule_and_value(logistic_package, scored):
    out, fired, plain = scored(logistic_package, [_rule(
        trigger="uncertain_prediction", lower=0.4, upper=0.6, action="reject")])
    p = plain["default_yes_PREDICTION"].to_numpy()
    band = (p >= 0.4) & (p <= 0.6)
    assert out["default_PREDICTION"][band].isna().all()
    assert out["default_yes_PREDICTION"][band].isna().all()
    first = int(np.flatnonzero(band)[0])
    assert out[STATUS_COLUMN][first] == (f"rejected by humility rule 'r': prediction "
                                         f"{p[first]:.6g} in [0.4, 0.6]")
    failed = failed_mask(pa.array(out[STATUS_COLUMN])).to_numpy(zero_copy_only=False)
    assert failed[band].all()
    pd.testing.assert_frame_equal(out[~band], plain[~band])


def test_outlying_input_defaults_to_the_training_range(hgb_package, scored, scoring_frame):
    frame = scoring_frame.reset_index(drop=True)
    frame.loc[:4, "income"] = [1e9, -1e9, np.nan, 50_000.0, 200_000.0]
    out, fired, _ = scored(hgb_package, [_rule(trigger="outlying_input", feature="income")],
                           frame, ranges={"income": (0.0, 100_000.0)})
    x = frame["income"].to_numpy()
    outside = (x < 0) | (x > 100_000)  # NaN is neither
    assert fired == (int(outside.sum()),)
    assert out[STATUS_COLUMN][:5].tolist() == ["OK; humility: r (flagged)"] * 2 + ["OK"] * 2 + [
        "OK; humility: r (flagged)"]


def test_outlying_input_without_a_range_needs_bounds(hgb_package):
    with pytest.raises(ConfigError, match="'income' has no training range"):
        resolve([_rule(trigger="outlying_input", feature="income")],
                hgb_package.package.manifest)
    explicit = resolve([_rule(trigger="outlying_input", lower=0, upper=1)],
                       hgb_package.package.manifest)
    assert explicit is not None
    assert [b[0] for b in explicit.rules[0].bounds] == ["income", "debt_ratio", "tenure"]


def test_low_observation_region_flags_unseen_levels_not_missing(logistic_package, scored,
                                                                 scoring_frame):
    frame = scoring_frame.reset_index(drop=True)
    frame.loc[:2, "purpose"] = ["boat", None, "car"]
    out, fired, _ = scored(logistic_package, [_rule(
        trigger="low_observation_region", action="override", value="yes")], frame,
        levels={"purpose": ("car", "home", "education", "travel")})
    unseen = frame["purpose"].notna() & ~frame["purpose"].isin(["car", "home", "education",
                                                                "travel"])
    assert fired == (int(unseen.sum()),)  # the frame holds a few unseen levels of its own
    assert (out["default_PREDICTION"][unseen] == "yes").all()
    assert out[STATUS_COLUMN][:3].tolist() == ["OK; humility: r (overridden)", "OK", "OK"]


def test_regression_override_and_several_rules(regressor_package, scored):
    rules = [_rule(name="low", trigger="uncertain_prediction", lower=-1e12, upper=4_000,
                   action="override", value=4000),
             _rule(name="mid", trigger="uncertain_prediction", lower=3_000, upper=5_000),
             _rule(name="out", trigger="uncertain_prediction", lower=-1e12, upper=1_000,
                   action="reject")]
    out, fired, plain = scored(regressor_package, rules)
    y = plain["amount_PREDICTION"].to_numpy()
    ok = plain[STATUS_COLUMN].to_numpy() == "OK"
    assert fired == (int((y <= 4000).sum()), int(((y >= 3000) & (y <= 5000)).sum()),
                     int((y <= 1000).sum()))
    rejected, low, mid = y <= 1000, (y > 1000) & (y <= 4000), (y >= 3000) & (y <= 5000)
    assert out["amount_PREDICTION"][rejected & ok].isna().all()
    assert (out["amount_PREDICTION"][low & ok] == 4000).all()
    both = low & mid & ok
    assert both.any()
    assert (out[STATUS_COLUMN][both] == "OK; humility: low (overridden), mid (flagged)").all()


@pytest.mark.parametrize(("rule", "message"), [
    (dict(trigger="uncertain_prediction", lower=0.4), "needs lower and upper"),
    (dict(trigger="uncertain_prediction", lower=0.6, upper=0.4), "is above upper"),
    (dict(trigger="uncertain_prediction", lower=0, upper=1, action="override"),
     "override needs one"),
    (dict(trigger="outlying_input", levels=["a"]), "only low_observation_region"),
    (dict(trigger="low_observation_region", lower=1), "takes levels, not bounds"),
    (dict(trigger="no_such", lower=1), "trigger"),
])
def test_bad_rules_are_refused(rule, message):
    with pytest.raises(ValidationError, match=message):
        _rule(**rule)


@pytest.mark.parametrize(("fixture", "rule", "message"), [
    ("multiclass_package", dict(trigger="uncertain_prediction", lower=0, upper=1),
     "multiclass"),
    ("logistic_package", dict(trigger="outlying_input", feature="nope", lower=0, upper=1),
     "no feature 'nope'"),
    ("logistic_package", dict(trigger="outlying_input", feature="purpose", lower=0, upper=1),
     "not numeric"),
    ("logistic_package", dict(trigger="uncertain_prediction", lower=0, upper=1,
                              action="override", value="maybe"), "not a class"),
    ("regressor_package", dict(trigger="uncertain_prediction", lower=0, upper=1,
                               action="override", value="high"), "not a number"),
])
def test_rules_that_do_not_fit_the_model_are_refused(request, fixture, rule, message):
    manifest = request.getfixturevalue(fixture).package.manifest
    with pytest.raises(ConfigError, match=message):
        resolve([_rule(**rule)], manifest, ranges={}, levels={})


def test_rule_names_are_unique(logistic_package):
    rule = _rule(trigger="uncertain_prediction", lower=0, upper=1)
    with pytest.raises(ConfigError, match="given twice"):
        resolve([rule, rule], logistic_package.package.manifest)
