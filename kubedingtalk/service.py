"""The imperative shell's lifecycle: start the components, wait for a signal, stop them.

Components are threads with a ``start``/``stop``/``join`` life; the service
starts them in order, stops them in reverse order (so the sender, last to
start, is first to be told to flush), and reports the ones that did not stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Protocol

from kubedingtalk import __version__, log
from kubedingtalk.config import Settings

_log = log.get_logger("kubedingtalk.service")


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


class Service:
    """Runs components until ``stop`` is called (by a signal handler, or a test)."""

    def __init__(self, components: Sequence[Component], stop_timeout: float = 10.0) -> None:
        self.components = list(components)
        self.stop_timeout = stop_timeout
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        started: list[Component] = []
        try:
            for component in self.components:
                component.start()
                started.append(component)
            _log.info("service started", components=[c.name for c in started])
            self._stopping.wait()
        finally:
            for component in reversed(started):
                component.stop()
            stuck = []
            for component in reversed(started):
                component.join(self.stop_timeout)
                if component.is_alive():
                    stuck.append(component.name)
        if stuck:
            _log.error("components did not stop in time", components=stuck, timeout_s=self.stop_timeout)
            return 1
        _log.info("service stopped")
        return 0


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM (Kubernetes) and SIGINT (a person) both mean: stop cleanly."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("signal received, stopping", signal=signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def build_components(settings: Settings) -> list[Component]:
    """The pipeline's threads, cluster to robot. Informers, scanner and sender join here."""
    return []


def run(settings: Settings) -> int:
    _log.info("kube-dingtalk starting", version=__version__, settings=settings.redacted())
    service = Service(build_components(settings))
    install_signal_handlers(service.stop)
    return service.run()
