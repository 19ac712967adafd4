"""One daemon thread with the service's component life: ``start``, ``stop``, ``join``, ``is_alive``.

The pipeline's threads (informers, scanner, sender, leader elector, state
persister) all live this way; each subclass writes only ``_run``, which ends
once ``_stop`` is set, and extends ``stop`` when a blocked call needs cutting.
"""

from __future__ import annotations

import threading


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()
