"""The ordered background writer the engine commits chunks with."""

from __future__ import annotations

import threading
import time

import pytest

from batch.engine.writer import OrderedWriter


def test_items_are_written_in_order_in_another_thread() -> None:
    written: list[tuple[int, str]] = []

    def write(item: int) -> None:
        time.sleep(0.001 * (item % 3))
        written.append((item, threading.current_thread().name))

    with OrderedWriter(write, depth=2) as writer:
        for i in range(50):
            writer.put(i)
    assert [i for i, _ in written] == list(range(50))
    assert {name for _, name in written} == {"chunk-writer"}


def test_a_failed_write_is_raised_and_stops_the_writing() -> None:
    written: list[int] = []
    failed = threading.Event()

    def write(item: int) -> None:
        if item == 3:
            failed.set()
            raise OSError("disk full")
        written.append(item)

    writer = OrderedWriter(write, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            writer.put(i)
            if failed.is_set():
                time.sleep(0.05)  # let the thread record the error
    writer.close()
    assert written == [0, 1, 2]


def test_the_error_is_raised_by_close_when_no_put_follows() -> None:
    def write(item: int) -> None:
        raise ValueError(f"bad {item}")

    writer = OrderedWriter(write)
    writer.put(7)
    with pytest.raises(ValueError, match="bad 7"):
        writer.close()


def test_a_failing_body_finishes_the_queued_writes_and_keeps_its_error() -> None:
    written: list[int] = []

    def write(item: int) -> None:
        time.sleep(0.01)
        written.append(item)

    with pytest.raises(KeyError), OrderedWriter(write, depth=4) as writer:
        for i in range(3):
            writer.put(i)
        raise KeyError("budget")
    assert written == [0, 1, 2]
