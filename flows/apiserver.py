"""The local Prefect API server: ``python -m flows.apiserver --fd FD --port N --parent PID``.

Started by :class:`flows.api.LocalServer`, which binds the loopback socket and
passes it as ``--fd``. It runs Prefect's server app under uvicorn on that
socket and exits on its own when the process that
started it goes away, however that process ended (``kill -9`` included), so no
server outlives the command that needed it.

Without ``--services`` it is Prefect's ephemeral mode (no scheduler, no UI):
enough to record flow runs. ``--services`` adds the background services (the
scheduler creates the runs of scheduled deployments) and the UI; the worker
uses that.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

_GRACE_SECONDS = 10.0


def _watch_parent(parent: int) -> None:
    """Stop this server once ``parent`` has exited (we are re-parented then)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
    time.sleep(_GRACE_SECONDS)
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.apiserver")
    parser.add_argument("--fd", type=int, required=True, help="A bound TCP socket to serve.")
    parser.add_argument("--port", type=int, required=True, help="Its port (for the UI).")
    parser.add_argument("--parent", type=int, required=True, help="Exit when PID exits.")
    parser.add_argument("--services", action="store_true", help="Run the scheduler and UI.")
    args = parser.parse_args(argv)
    threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()
    os.environ.update({
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(args.port),
        "PREFECT_UI_ENABLED": "1" if args.services else "0",
    })
    if not args.services:
        os.environ["PREFECT__SERVER_EPHEMERAL"] = "1"
    import uvicorn

    uvicorn.run("prefect.server.api.server:create_app", factory=True, fd=args.fd,
                log_level="error", lifespan="on")


if __name__ == "__main__":
    main()
