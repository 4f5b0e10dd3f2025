"""Processes leave without a full garbage collection at exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batch.engine.pool.startup import start_processes

CHILD = """
import sys
from batch.engine.pool.process_exit import skip_final_collection

class Node:
    def __del__(self):
        sys.stdout.write("collected\\n")
        sys.stdout.flush()

def keep():
    node = Node()
    node.me = node  # a reference cycle: only the garbage collector frees it
    return node

kept = keep()
if sys.argv[1] == "skip":
    skip_final_collection()
print("done", flush=True)
"""


@pytest.mark.parametrize("mode", ["skip", "default"])
def test_objects_alive_at_exit_are_left_to_the_end_of_the_process(mode: str) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    # by default the interpreter's last collection finds the cycle; frozen, it is left
    assert out == (["done"] if mode == "skip" else ["done", "collected"])


def test_worker_processes_skip_it() -> None:
    started = start_processes(1, 1)
    try:
        flag = "__import__('batch.engine.pool.process_exit').engine.pool.process_exit._registered"
        assert started.executor.submit(eval, flag).result(timeout=60) is True
    finally:
        started.executor.shutdown()
