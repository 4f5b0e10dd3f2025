"""DataRobot's ``drum server`` as the outside peer of ``batchpred serve`` in realtime.py.

DRUM pins its own releases of pandas, Flask and the rest against the project's, so it
runs from a venv of its own, ``benchmarks/.cache/drum-venv``, made with pip on first
use: ``datarobot-drum`` and this project's scikit-learn release (DRUM does not depend
on scikit-learn, and its built-in predictor needs it to unpickle the model; the same
release reads the pickle as it was written). ``--drum-python PATH`` takes another
interpreter that has both instead.

What DRUM 1.18 does, read in its source (``datarobot_drum/drum``):

* the code dir must hold exactly one artifact; ``*.pkl`` goes to the built-in
  scikit-learn predictor, which reads it with ``pickle.load``; a joblib file writes
  its numpy arrays into the stream as raw bytes, which pickle cannot read (the
  packages' files fail with "UnpicklingError: STACK_GLOBAL requires str"), so the
  fitted model is written with :mod:`pickle` as ``model.pkl``;
* ``POST /predict/`` takes the CSV as the raw body with ``Content-Type: text/csv``
  (or as a multipart field ``X``), reads it with ``pd.read_csv`` and gives the whole
  frame to ``predict_proba``: every column goes in, and scikit-learn refuses columns
  it was not fitted on, so a request carries the model's features only, in fit order;
* it answers ``{"predictions": [{"no": 0.25, "yes": 0.75}, ...]}``, the
  probabilities rounded to 10 digits (``DataFrame.to_json``);
* ``drum server`` runs gunicorn (its default since 1.17.19) with sync workers and
  keep-alive off, so every answer closes its connection; gunicorn's config takes the
  worker count from ``MAX_WORKERS`` in the environment, not from ``--max-workers``
  (both are set here); ``--production`` is deprecated and only concerns the older
  werkzeug server;
* ``GET /ping/`` answers 200 once a worker is up, and a worker loads the model before
  it accepts a connection.

Failure modes: :func:`find_drum` never raises for a missing or broken DRUM; it gives
``None`` and one line saying why, and the benchmark goes on without the peer.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from throughput import CACHE

from batch.engine.pool.startup import thread_limits, threads_per_worker

DRUM_VENV = CACHE / "drum-venv"
PREDICT_PATH = "/predict/"
READY_PATH = "/ping/"
ARTIFACT = "model.pkl"
PIP_TIMEOUT = 900.0  # seconds for the whole install; it took ~60 s with a local index
PROBE = ("from importlib.metadata import version; import datarobot_drum, sklearn; "
         "print(version('datarobot-drum'), sklearn.__version__)")


@dataclass(frozen=True, slots=True)
class Drum:
    """A usable DRUM: the words that start ``drum`` and the releases it runs."""

    command: tuple[str, ...]
    drum_version: str
    sklearn_version: str


@dataclass(frozen=True, slots=True)
class Labels:
    """A binary target's class labels, as the package's model.yaml names them."""

    positive: str
    negative: str


def find_drum(python: Path | None) -> tuple[Drum | None, str]:
    """DRUM from ``python``, else from the benchmark's venv (made on first use).

    Returns the DRUM, or ``None`` and why it cannot run (never raises for that).
    """
    ours = python is None
    python = python or DRUM_VENV / "bin" / "python"
    versions, error = _probe(python)
    # our venv, made before this project moved to another scikit-learn, is brought along
    if ours and (not versions or versions.split()[1] != sklearn.__version__):
        reason = _install(python)
        if reason:
            return None, reason
        versions, error = _probe(python)
    if not versions:
        return None, f"{python} cannot import datarobot_drum and sklearn: {error}"
    script = python.parent / "drum"
    command = (str(script),) if script.exists() else (
        str(python), "-m", "datarobot_drum.drum.entry_point")
    drum_version, sklearn_version = versions.split()
    return Drum(command, drum_version, sklearn_version), ""


def _probe(python: Path) -> tuple[str, str]:
    """The DRUM and scikit-learn releases ``python`` imports, or "" and why not."""
    if not python.exists():
        return "", "no such interpreter"
    try:
        done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        return "", "importing them took over 120 s"
    if done.returncode:
        return "", last_line(done.stderr)
    return done.stdout.strip(), ""


def _install(python: Path) -> str:
    """Make :data:`DRUM_VENV` (if needed) and pip-install DRUM into it; "" or why not."""
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(DRUM_VENV)],
                              capture_output=True, text=True)
        if made.returncode:
            return f"python -m venv {DRUM_VENV} failed: {last_line(made.stderr)}"
    requirements = ["datarobot-drum", f"scikit-learn=={sklearn.__version__}"]
    print(f"installing {' '.join(requirements)} into {DRUM_VENV} (once) ...", flush=True)
    try:
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements],
                             capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"pip install {' '.join(requirements)} took over {PIP_TIMEOUT:g} s"
    if pip.returncode:
        return f"pip install {' '.join(requirements)}: {last_line(pip.stderr)}"
    return ""


def last_line(text: str) -> str:
    """The last line of a process's output that says something (pip's index noise aside)."""
    lines = [line for line in text.splitlines()
             if line.strip() and "is ignored: it is neither" not in line]
    return lines[-1].strip()[:300] if lines else "(no output)"


def write_code_dir(model: Any, directory: Path) -> Path:
    """``directory`` as DRUM's code dir: ``model`` pickled as its one artifact."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ARTIFACT).open("wb") as file:
        pickle.dump(model, file, protocol=pickle.HIGHEST_PROTOCOL)
    return directory


def server_command(drum: Drum, code_dir: Path, labels: Labels, *, port: int,
                   workers: int) -> list[str]:
    """``drum server`` for a binary model on ``127.0.0.1:port`` with ``workers`` workers."""
    return [*drum.command, "server", "--code-dir", str(code_dir), "--target-type", "binary",
            "--positive-class-label", labels.positive,
            "--negative-class-label", labels.negative,
            "--address", f"127.0.0.1:{port}", "--max-workers", str(workers)]


def server_env(workers: int) -> dict[str, str]:
    """The environment of ``drum server``: this one, less what would mix the two venvs.

    Pins the gunicorn server (DRUM's default, named so a changed default shows) and
    its worker count. With several workers, their native thread pools get the share
    of the cores that ``batchpred serve --workers`` gives its own (unless the caller
    set them), so the two are compared at the same thread budget.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["MAX_WORKERS"] = str(workers)
    env["MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE"] = json.dumps(
        {"type": "string", "payload": "gunicorn"})
    if workers > 1:
        env = {**thread_limits(threads_per_worker(workers)), **env}
    return env


def prediction_marker(labels: Labels) -> bytes:
    """Bytes found once per predicted row in DRUM's answer: the positive label's key."""
    return json.dumps(labels.positive).encode() + b":"


def positive_probabilities(body: bytes, labels: Labels) -> np.ndarray:
    """The positive class's probability of each row of DRUM's answer ``body``."""
    return np.array([row[labels.positive] for row in json.loads(body)["predictions"]],
                    dtype=float)
