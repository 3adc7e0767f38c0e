"""SIGINT and SIGTERM during training: raise, so that the trainer can save and stop.

Inside :func:`stop_on_signals` either signal raises :class:`TrainingInterrupted` in the
main thread; the previous handlers come back at the first signal (a second Ctrl-C then
stops at once) and when the block ends. Outside the main thread nothing is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from hamnet.errors import TrainingInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def handler(signum, frame) -> None:
        restore()
        raise TrainingInterrupted(signal.Signals(signum).name, signum)

    for signum in SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        restore()
