"""The scanner: cache changes and timers in, announcements out, work proportional to what changed."""

from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubedingtalk.cache import PodCache
from kubedingtalk.config import Settings
from kubedingtalk.informer import Informer, InformerOptions
from kubedingtalk.kube_client import load
from kubedingtalk.ledger import Announcement, Ledger, LedgerSettings
from kubedingtalk.records import from_pod
from kubedingtalk.rules import RuleSettings
from kubedingtalk.scanner import Scanner, ScannerSettings
from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[PodCache, Scanner, Clock]:
    cache, clock = PodCache(), Clock()
    cache.replace("prod", [])
    settings = ScannerSettings(rules=RuleSettings(not_ready_min_time=60.0))
    scanner = Scanner(cache, Ledger(LedgerSettings(flood_expire=60.0)), queue.Queue(), settings, clock)
    return cache, scanner, clock


def web(i: int) -> dict[str, Any]:
    """Replica ``i`` of Deployment ``web``, created an hour before the test starts."""
    return pods.pod(f"web-abc-{i}", "prod", workload="web", created=START - timedelta(hours=1), now=START)


def summary(out: list[Announcement]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(a.state, a.key.workload_name, a.finding.reason, a.pods) for a in out]


def test_failing_replicas_become_one_firing_then_one_resolved() -> None:
    cache, scanner, clock = setup()
    for i in range(3):
        cache.upsert(from_pod(pods.err_image_pull(web(i), since=START)))
    out = scanner.scan()
    assert summary(out) == [("firing", "web", "ErrImagePull", ("web-abc-0", "web-abc-1", "web-abc-2"))]
    assert scanner.out.get_nowait() == out[0]
    clock.now += 30
    for i in range(3):
        cache.upsert(from_pod(pods.healthy(web(i))))
    assert summary(scanner.scan()) == [("resolved", "web", "ErrImagePull", ("web-abc-0", "web-abc-1", "web-abc-2"))]


def test_a_deleted_pod_counts_as_recovered() -> None:
    cache, scanner, clock = setup()
    cache.upsert(from_pod(pods.crash_loop(web(0), since=START)))
    assert [a.state for a in scanner.scan()] == ["firing"]
    cache.delete(("prod", "web-abc-0"))
    clock.now += 5
    assert [a.state for a in scanner.scan()] == ["resolved"]


def test_not_ready_fires_when_its_timer_falls_due_without_any_change() -> None:
    cache, scanner, clock = setup()
    cache.upsert(from_pod(pods.readiness_failing(web(0), since=START)))
    assert scanner.scan() == []
    clock.now += 59
    assert scanner.scan() == []
    clock.now += 1
    evaluated = scanner.evaluated
    assert summary(scanner.scan()) == [("firing", "web", "ContainersNotReady", ("web-abc-0",))]
    assert scanner.evaluated == evaluated + 1


def test_a_rolling_update_is_not_an_incident() -> None:
    cache, scanner, clock = setup()
    cache.upsert(from_pod(pods.terminating(web(0), now=START)))
    cache.upsert(from_pod(pods.waiting(web(1), "ContainerCreating", "", since=START)))
    assert scanner.scan() == []
    clock.now += 120
    cache.delete(("prod", "web-abc-0"))
    cache.upsert(from_pod(pods.healthy(web(1))))
    assert scanner.scan() == []


def test_a_restart_after_an_oom_kill_is_announced_once() -> None:
    cache, scanner, clock = setup()
    cache.upsert(from_pod(web(0)))
    assert scanner.scan() == []
    clock.now += 10
    cache.upsert(from_pod(pods.oom_killed(web(0), restarts=1, now=datetime.fromtimestamp(clock.now, UTC))))
    assert summary(scanner.scan()) == [("firing", "web", "OOMKilled", ("web-abc-0",))]
    clock.now += 10
    assert scanner.scan() == []


def test_namespaces_are_evaluated_only_once_synced() -> None:
    cache, scanner, _ = setup()
    cache.upsert(from_pod(pods.err_image_pull(pods.pod("api", "staging"), since=START)))
    assert scanner.scan() == []
    cache.replace("staging", [from_pod(pods.err_image_pull(pods.pod("api", "staging"), since=START))])
    assert [a.key.namespace for a in scanner.scan()] == ["staging"]


def test_a_pass_evaluates_only_what_changed() -> None:
    cache, scanner, _ = setup()
    cache.replace("prod", [from_pod(web(i)) for i in range(1000)])
    scanner.scan()
    assert scanner.evaluated == 1000
    for _ in range(5):
        scanner.scan()
    assert scanner.evaluated == 1000
    cache.upsert(from_pod(pods.crash_loop(web(7), since=START)))
    assert [a.state for a in scanner.scan()] == ["firing"]
    assert scanner.evaluated == 1001


def test_a_reader_that_fell_behind_rereads_everything_and_misses_nothing() -> None:
    cache, scanner, clock = setup()
    cache._max_tombstones = 2
    cache.upsert(from_pod(pods.crash_loop(web(0), since=START)))
    assert [a.state for a in scanner.scan()] == ["firing"]
    for i in range(1, 8):
        cache.upsert(from_pod(web(i)))
        cache.delete(("prod", f"web-abc-{i}"))
    cache.delete(("prod", "web-abc-0"))
    clock.now += 5
    assert [a.state for a in scanner.scan()] == ["resolved"]


def test_end_to_end_from_the_emulator_to_the_queue(kube_api: KubeApiServer, tmp_path: Path) -> None:
    client = load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(kube_api.write_kubeconfig(tmp_path / "k"))})
    cache = PodCache()
    informer = Informer(client, cache, "default", InformerOptions())
    out: queue.Queue[Announcement] = queue.Queue()
    scanner = Scanner(cache, Ledger(), out, ScannerSettings(tick=15.0, min_interval=0.2))
    kube_api.create(pods.pod("web"))
    informer.start()
    scanner.start()
    try:
        wait_for(lambda: informer.health.synced and scanner.passes >= 1)
        kube_api.apply(pods.err_image_pull(pods.pod("web")))
        firing = out.get(timeout=5)
        assert (firing.state, firing.key.workload_name, firing.finding.reason) == ("firing", "web", "ErrImagePull")
        kube_api.apply(pods.healthy(pods.pod("web")))
        resolved = out.get(timeout=5)
        assert (resolved.state, resolved.key.workload_name) == ("resolved", "web")
        assert out.empty()
    finally:
        scanner.stop()
        informer.stop()
        scanner.join(2)
        informer.join(2)
    assert not scanner.is_alive() and not informer.is_alive()


def test_restarts_before_the_scanner_started_are_history_not_news() -> None:
    cache, scanner, clock = setup()
    born = datetime.fromtimestamp(clock.now, UTC)
    old = pods.oom_killed(web(0), restarts=3, now=born - timedelta(seconds=5))
    cache.upsert(from_pod(old))
    assert scanner.scan() == []
    young = pods.pod("late-abc-0", "prod", workload="late", created=born + timedelta(seconds=1), now=born)
    clock.now += 10
    cache.upsert(from_pod(pods.oom_killed(young, restarts=1, now=born + timedelta(seconds=9))))
    assert summary(scanner.scan()) == [("firing", "late", "OOMKilled", ("late-abc-0",))]


def adopting(restored: Ledger | None) -> tuple[PodCache, Scanner, Clock, list[int]]:
    cache, scanner, clock = setup()
    loads = []

    def load() -> Ledger | None:
        loads.append(1)
        return restored

    scanner.load_state = load
    return cache, scanner, clock, loads


def persisted(*failing: int) -> Ledger:
    """What an earlier instance left: web-abc-<i> announced as failing in CrashLoopBackOff."""
    cache, earlier, _ = setup()
    for i in failing:
        cache.upsert(from_pod(pods.crash_loop(web(i), since=START)))
    earlier.scan()
    return Ledger.restore(earlier.ledger.export(), LedgerSettings(flood_expire=60.0))


def test_adopted_state_keeps_still_failing_incidents_quiet_and_resolves_recovered_ones() -> None:
    cache, scanner, clock, loads = adopting(persisted(0))
    cache.upsert(from_pod(pods.crash_loop(web(0), since=START)))
    assert scanner.scan() == [] and loads == [1]
    clock.now += 10
    cache.upsert(from_pod(pods.healthy(pods.crash_loop(web(0), since=START))))
    assert [a.state for a in scanner.scan()] == ["resolved"]


def test_adopted_state_whose_pods_recovered_meanwhile_gets_its_recovery() -> None:
    cache, scanner, _, _ = adopting(persisted(0))
    cache.upsert(from_pod(web(0)))  # healthy by the time this instance looks
    assert summary(scanner.scan()) == [("resolved", "web", "CrashLoopBackOff", ("web-abc-0",))]


def test_a_standby_stays_quiet_and_adopts_on_each_new_term() -> None:
    cache, scanner, clock, loads = adopting(None)
    leading, term = [False], [0]
    scanner.may_announce, scanner.term = (lambda: leading[0]), (lambda: term[0])
    cache.upsert(from_pod(pods.crash_loop(web(0), since=START)))
    assert len(scanner.scan()) == 1 and scanner.out.empty() and scanner.standby_skipped == 1
    assert loads == []
    leading[0], term[0] = True, 1
    clock.now += 1
    assert scanner.scan() == [] and loads == [1]  # its own ledger carries on: no repeat
    cache.upsert(from_pod(pods.err_image_pull(web(1), since=START)))
    assert [a.key.reason for a in scanner.scan()] == ["ImagePullBackOff"]
    assert scanner.out.qsize() == 1
