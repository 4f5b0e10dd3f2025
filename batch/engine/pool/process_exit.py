"""Leaving a process quickly: no full garbage collection at interpreter exit.

At exit, CPython collects the garbage among every object still alive. With
pandas, pyarrow and onnxruntime loaded that takes a tenth of a second or more
per process, and frees nothing the end of the process would not. Freezing the
objects first (:func:`gc.freeze`) skips it; ``atexit`` handlers, buffered
writes and the deallocation of objects that are not in reference cycles still
happen as usual.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collection() -> None:
    """Freeze this process's objects when it exits, before the interpreter shuts down."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
