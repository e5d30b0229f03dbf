"""Stopping promptly: a server asked to stop tells the long work it runs in threads.

The server (uvicorn) answers SIGTERM and SIGINT by finishing the requests in hand before it
exits, so a request running a long import in a thread would hold the shutdown for as long
as the import takes. While the app runs, :func:`watch_stop_signals` chains a handler in
front of the server's own: it sets an event (``AppContext.stopping``) that imports check
between rows, so they give up at once (nothing of them is published) and the server exits.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def watch_stop_signals(event: threading.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``event``, then do what they did before; returns the
    function that puts the previous handlers back. Signals belong to the main thread: run
    elsewhere (an app served in a test's thread), this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        event.set()
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before in (signal.SIG_DFL, None):  # the default: end the process
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in STOP_SIGNALS:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return restore
