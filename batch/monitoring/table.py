"""The stages' documents (drift, accuracy, challengers) as plain-text tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_SEVERITY = {"red": 0, "yellow": 1, "green": 2, "grey": 3}


def drift_table(doc: Mapping[str, Any]) -> str:
    """The status line, then one row per feature (worst first), predictions, findings."""
    status = doc["status"]
    window = doc["window"]
    lines = [
        f"deployment {doc['deployment']}: drift {status['colour'].upper()} ({status['rule']}: "
        f"{status['value']}, threshold {status['threshold']})",
        f"window {window['since']} .. {window['until']}"
        + (f", job {window['job_id']}" if window["job_id"] else "")
        + f"; {doc['rows']:,} rows from {len(doc['jobs'])} job(s); against {doc['against']}",
        "",
    ]
    header = ("feature", "imp", "psi", "js", "tail", "ks", "mean d", "missing", "range/new",
              "status")
    rows = [_feature_row(f) for f in sorted(doc["features"], key=_order)]
    lines += _aligned(header, rows)
    if doc["predictions"]:
        lines += ["", *(_aligned(("prediction", "psi", "js", "status"), [
            (p["name"], _num(p.get("psi")), _num(p.get("js")), p["status"])
            for p in doc["predictions"]]))]
        lines.append(f"prediction drift: {doc['prediction_status'].upper()}")
    if doc["data_quality"]:
        lines += ["", "data quality:"]
        lines += [f"  {q['feature']}: {q['finding']} ({q['value']:.1%}, threshold "
                  f"{q['threshold']:.1%})" for q in doc["data_quality"]]
    if doc.get("humility"):
        lines += ["", "humility rules:"]
        lines += [f"  {h['rule']} ({h['action']}): fired on {h['rows']:,} rows"
                  + (f" ({h['share']:.1%})" if h["share"] is not None else "")
                  for h in doc["humility"]]
    for item in doc["excluded"]:
        lines.append(f"left out: job {item['job_id']} ({item['rows']:,} rows): {item['reason']}")
    return "\n".join(lines)


def _order(feature: Mapping[str, Any]) -> tuple[int, float]:
    return _SEVERITY.get(feature["status"], 4), -(feature.get("psi") or 0.0)


def _feature_row(f: Mapping[str, Any]) -> tuple[str, ...]:
    tail = f.get("tail") or {}
    share = f.get("out_of_range_share", f.get("new_level_share"))
    name = f["name"] + ("*" if f.get("starred") else "")
    return (name, _num(f.get("importance"), 2), _num(f.get("psi")), _num(f.get("js")),
            _num(tail.get("wasserstein_std")), _num(tail.get("ks")),
            _num(f.get("mean_difference_std"), 3), _pct(f.get("missing_share")), _pct(share),
            f["status"])


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]
    return out


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


# the metrics each target type shows (the accuracy table, the HTML report)
SHOWN = {"binary": ("logloss", "auc", "accuracy", "f1", "ks", "rate_top10"),
         "regression": ("rmse", "mae", "r2", "mape"),
         "multiclass": ("logloss", "accuracy", "macro_f1")}


def accuracy_table(doc: Mapping[str, Any]) -> str:
    """The status line, the figures per model, then per time bucket (estimated beside
    realised for a binary model)."""
    status = doc["status"]
    window = doc["window"]
    kind = doc["target"]["type"]
    shown = SHOWN[kind]
    lines = [
        f"deployment {doc['deployment']}: accuracy {status['colour'].upper()} "
        f"({status['rule']})",
        f"window {window['since']} .. {window['until']}; {doc['predictions']:,} predictions, "
        f"{doc['matched']:,} with actuals ({doc['actuals']['ids']:,} ids have actuals)", ""]
    estimated = kind == "binary"
    header = ("model", "rows", "matched", *shown, *(("est. acc", "est. auc") if estimated
                                                    else ()))
    rows = [_accuracy_row(model[:12] + ("*" if model == doc["champion"] else ""), f, shown,
                          estimated=estimated) for model, f in doc["models"].items()]
    holdout = doc.get("holdout") or {}
    if holdout:
        rows.append(("holdout", "-", "-", *(_num(holdout.get(m)) for m in shown),
                     *(("-", "-") if estimated else ())))
    lines += _aligned(header, rows)
    if doc["over_time"]:
        lines += ["", *_aligned(("start", "rows", "matched", *shown, *(
            ("est. acc", "est. auc") if estimated else ())), [
            _accuracy_row(b["start"], b, shown, estimated=estimated)
            for b in doc["over_time"]])]
    lines += [f"warning: {w}" for w in doc["warnings"]]
    return "\n".join(lines)


def _accuracy_row(name: str, f: Mapping[str, Any], shown: Sequence[str], *,
                  estimated: bool) -> tuple[str, ...]:
    metrics = f.get("metrics") or {}
    guess = f.get("estimated") or {}
    return (name, f"{f['predictions']:,}", f"{f['matched']:,}",
            *(_num(metrics.get(m)) for m in shown),
            *((_num(guess.get("accuracy")), _num(guess.get("auc"))) if estimated else ()))


def challengers_table(doc: Mapping[str, Any]) -> str:
    """The status line, then one row per challenger: agreement, difference, accuracy, the
    paired difference of the primary metric and its interval, latency, and the
    recommendation."""
    metric, status = doc["primary_metric"], doc["status"]
    lines = [f"deployment {doc['deployment']}: challengers {status['colour'].upper()} "
             f"({status['rule']})",
             f"{len(doc['challengers'])} challenger(s) against champion "
             f"{doc['champion'][:12]} ({doc['champion_rows']:,} rows); window "
             f"{doc['window']['since']} .. {doc['window']['until']}", ""]
    if not doc["challengers"]:
        return "\n".join([*lines, "no challenger predictions in the window (batchpred deploy "
                           "add-challenger NAME --model PKG)"])
    header = ("challenger", "rows", "agree", "mean diff", "matched", f"champ {metric}",
              f"chal {metric}", "paired (95%)", "p95 x", "recommendation")
    rows = []
    for c in doc["challengers"]:
        paired = c["paired"]
        interval = "-" if paired["low"] is None else (
            f"{paired['mean']:+.4f} [{paired['low']:+.4f}, {paired['high']:+.4f}]")
        rows.append((c["id"], f"{c['rows']:,}", _pct(c["agreement"]),
                     _num(c["difference"]["mean"]), f"{c['matched']:,}",
                     _num(c["champion_metrics"].get(metric)),
                     _num(c["challenger_metrics"].get(metric)), interval,
                     _num(c["latency_ratio"], 2), c["recommendation"]["action"]))
    lines += _aligned(header, rows)
    lines += ["", *(f"{c['id']}: {c['recommendation']['action']}: "
                    f"{c['recommendation']['why']}" for c in doc["challengers"])]
    return "\n".join(lines)
