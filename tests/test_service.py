"""The service's lifecycle with real threads: start in order, stop in reverse, report stuck ones."""

from __future__ import annotations

import threading

from kubedingtalk.service import Service
from tests.helpers import wait_for


class Worker:
    def __init__(self, name: str, events: list[str], stuck: bool = False) -> None:
        self.name = name
        self.events = events
        self.stuck = stuck
        self._stop = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._stop.wait()
        if self.stuck:
            self._release.wait()
        self.events.append(f"finished {self.name}")

    def start(self) -> None:
        self.events.append(f"start {self.name}")
        self._thread.start()

    def stop(self) -> None:
        self.events.append(f"stop {self.name}")
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def release(self) -> None:
        self._release.set()


def run_in_thread(service: Service) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(service.run()))
    thread.start()
    return thread, result


def test_components_start_in_order_and_stop_in_reverse() -> None:
    events: list[str] = []
    service = Service([Worker("informer", events), Worker("sender", events)])
    thread, result = run_in_thread(service)
    wait_for(lambda: len(events) == 2)
    service.stop()
    thread.join(10)
    assert result == [0]
    assert events == ["start informer", "start sender", "stop sender", "finished sender", "stop informer",
                      "finished informer"]


def test_each_component_finishes_before_the_one_before_it_is_stopped() -> None:
    events: list[str] = []
    scanner = Worker("scanner", events, stuck=True)  # its last pass takes a while
    service = Service([Worker("sender", events), scanner], stop_timeout=10)
    thread, result = run_in_thread(service)
    wait_for(lambda: len(events) == 2)
    service.stop()
    wait_for(lambda: "stop scanner" in events)
    assert "stop sender" not in events
    scanner.release()
    thread.join(10)
    assert result == [0]
    assert events[2:] == ["stop scanner", "finished scanner", "stop sender", "finished sender"]


def test_a_component_that_does_not_stop_makes_exit_code_1() -> None:
    events: list[str] = []
    stuck = Worker("scanner", events, stuck=True)
    service = Service([stuck], stop_timeout=0.2)
    thread, result = run_in_thread(service)
    wait_for(lambda: events == ["start scanner"])
    service.stop()
    thread.join(10)
    stuck.release()
    assert result == [1]
