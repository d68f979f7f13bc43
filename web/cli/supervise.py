"""`traject run`'s supervisor: child processes kept alive, stopped together.

A child that dies is started again after a pause that doubles (1 s up to 30 s); one that dies
more than `max_restarts` times within `window` seconds is broken, not unlucky: then every child is
stopped and the supervisor exits 1, so that systemd, a container runtime or the operator sees it.
SIGTERM and SIGINT are passed on to every child; each gets `grace` seconds to finish (gunicorn
its requests in flight, the worker its running pass) before it is killed; then the exit is 0.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger("web.run")


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    deaths: deque = field(default_factory=deque)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv)
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def supervise(children: list[Child], *, max_restarts: int = 5, window: float = 60.0, grace: float = 30.0,
              poll: float = 0.2, pause: float = 1.0) -> int:
    """Run the children until a signal (exit 0) or until one of them keeps dying (exit 1)."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            child.start()
        broken = _watch(children, stop, max_restarts, window, poll, pause)
    finally:
        _stop_all(children, received[0] if received else signal.SIGTERM, grace)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if broken else 0


def _watch(children: list[Child], stop: threading.Event, max_restarts: int, window: float, poll: float,
           first_pause: float) -> bool:
    """Restart dead children until stopped; True when one died too often."""
    while not stop.wait(poll):
        for child in children:
            code = child.proc.poll()
            if code is None:
                continue
            now = time.monotonic()
            child.deaths.append(now)
            while child.deaths and child.deaths[0] < now - window:
                child.deaths.popleft()
            if len(child.deaths) > max_restarts:
                log.error("%s exited %d times within %.0f s (last exit status %s): stopping everything",
                          child.name, len(child.deaths), window, code)
                return True
            pause = min(30.0, first_pause * 2.0 ** (len(child.deaths) - 1))
            log.warning("%s exited with status %s; starting it again in %.0f s", child.name, code, pause)
            if stop.wait(pause):
                return False
            child.start()
    return False


def _stop_all(children: list[Child], signum: int, grace: float) -> None:
    for child in children:
        if child.alive():
            child.proc.send_signal(signum)
    deadline = time.monotonic() + grace
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0f s: killed", child.name, grace)
            child.proc.kill()
            child.proc.wait()
