"""The embedded default: commands start a temporary Prefect server and never leave it behind."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pcsv
from batchpred_cli import command as batchpred
from batchpred_cli import environment as clean_env
from processes import api_servers, wait_until_gone

HOLD_A_SERVER = """
import time
from flows.api import prefect_api
with prefect_api() as url:
    print(url, flush=True)
    time.sleep(300)
"""


def test_temporary_servers_stop_on_success_failure_and_kill(
        tmp_path: Path, seed_home: Callable[[Path], Path]) -> None:
    def start(*args: str, home: str) -> subprocess.Popen[str]:
        return subprocess.Popen(args, env=clean_env(seed_home(tmp_path / home)), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # all three at once, each on its own home with no Prefect API configured
    quickstart = start(*batchpred("quickstart", "--rows", "5000", "--workers", "0"), home="q")
    failing = start(*batchpred("job", "status", "no-such-job"), home="f")
    holder = start(sys.executable, "-c", HOLD_A_SERVER, home="k")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().startswith("http://127.0.0.1:")
        assert len(api_servers(holder.pid)) == 1
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait()
        assert not wait_until_gone(holder.pid), "the server outlived a killed process"

        out, err = failing.communicate(timeout=120)
        assert failing.returncode == 1
        assert err.startswith("error: no job 'no-such-job': no flow run of batch-score")
        assert len(err.strip().splitlines()) == 1
        assert not api_servers(failing.pid)

        out, err = quickstart.communicate(timeout=240)
        assert quickstart.returncode == 0, err
        assert "deployment: credit-risk" in out
        assert "scored 5,000 rows (0 failed) in" in out  # the same summary line as before
        assert "Beginning flow run" in err and "for flow 'batch-score'" in err
        assert (tmp_path / "q" / "prefect" / "prefect.db").exists()  # under the home
        scored = pcsv.read_csv(tmp_path / "q" / "quickstart" / "predictions.csv")
        assert scored.column("loan_id").to_pylist() == list(range(1, 5001))  # in order
        assert not api_servers(quickstart.pid)
    finally:
        for proc in (quickstart, failing, holder):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
