"""The ledger with an injected clock: grouping, recovery, flood window, flapping, pruning, export/restore."""

from __future__ import annotations

import json

import pytest

from kubedingtalk.ledger import Announcement, IncidentKey, Ledger, LedgerSettings
from kubedingtalk.rules import Finding

WINDOW = LedgerSettings(flood_expire=60.0, retention=3600.0)


def finding(pod: str, reason: str = "ErrImagePull", kind: str = "waiting", workload: str = "web") -> Finding:
    return Finding("prod", pod, "Deployment", workload, kind, reason, "boom", container="app")


def failing(*pods: str, reason: str = "ErrImagePull") -> dict[str, Finding]:
    return {p: finding(p, reason) for p in pods}


KEY = IncidentKey("prod", "Deployment", "web", "waiting", "ImagePullBackOff")


def states(out: list[Announcement]) -> list[tuple[str, tuple[str, ...], int]]:
    return [(a.state, a.pods, a.flaps) for a in out]


def test_replicas_of_one_workload_are_one_incident() -> None:
    ledger = Ledger(WINDOW)
    pods = [f"web-{i}" for i in range(12)]
    out = ledger.update(KEY, failing(*pods), 0.0)
    assert states(out) == [("firing", tuple(sorted(pods)), 0)]
    assert out[0].key == KEY and out[0].finding.reason == "ErrImagePull"
    assert ledger.update(KEY, failing(*pods, reason="ImagePullBackOff"), 5.0) == []
    assert IncidentKey.of(finding("a", "ImagePullBackOff")) == IncidentKey.of(finding("a", "ErrImagePull")) == KEY


def test_different_workloads_and_reasons_are_different_incidents() -> None:
    assert IncidentKey.of(finding("a")) != IncidentKey.of(finding("a", workload="api"))
    assert IncidentKey.of(finding("a")) != IncidentKey.of(finding("a", "CrashLoopBackOff"))


def test_recovery_is_announced_once_every_pod_recovered_with_the_duration() -> None:
    ledger = Ledger(WINDOW)
    ledger.update(KEY, failing("web-1", "web-2"), 100.0)
    assert ledger.update(KEY, failing("web-2", "web-3"), 110.0) == []  # one recovers, another joins
    assert ledger.update(KEY, failing("web-3"), 120.0) == []
    out = ledger.update(KEY, {}, 400.0)
    assert states(out) == [("resolved", ("web-1", "web-2", "web-3"), 0)]
    assert out[0].duration == 300.0
    assert ledger.update(KEY, {}, 401.0) == []


def test_recovery_alert_off_sends_no_recovery() -> None:
    ledger = Ledger(LedgerSettings(recovery_alert=False))
    ledger.update(KEY, failing("web-1"), 0.0)
    assert ledger.update(KEY, {}, 10.0) == []


def test_a_flap_inside_the_window_is_counted_and_announced_when_the_window_ends() -> None:
    ledger = Ledger(WINDOW)
    ledger.update(KEY, failing("web-1"), 0.0)
    ledger.update(KEY, {}, 100.0)  # resolved; window until 160
    assert ledger.update(KEY, failing("web-1"), 120.0) == []
    assert ledger.due(159.0) == []
    assert ledger.next_due == 160.0
    out = ledger.due(160.0)
    assert states(out) == [("firing", ("web-1",), 1)]
    assert out[0].started == 120.0
    assert states(ledger.update(KEY, {}, 200.0)) == [("resolved", ("web-1",), 0)]


def test_flaps_that_settle_inside_the_window_are_shown_in_the_next_message() -> None:
    ledger = Ledger(WINDOW)
    ledger.update(KEY, failing("web-1"), 0.0)
    ledger.update(KEY, {}, 100.0)
    for t in (110.0, 130.0):
        assert ledger.update(KEY, failing("web-1"), t) == []
        assert ledger.update(KEY, {}, t + 5) == []
    assert ledger.due(200.0) == []
    assert states(ledger.update(KEY, failing("web-1"), 500.0)) == [("firing", ("web-1",), 2)]


def test_restarts_are_events_one_message_per_window_and_no_recovery() -> None:
    ledger = Ledger(WINDOW)
    oom = Finding("prod", "redis-0", "StatefulSet", "redis", "restart", "OOMKilled", "killed", container="redis")
    assert states(ledger.event(oom, 0.0)) == [("firing", ("redis-0",), 0)]
    assert ledger.event(oom, 30.0) == []
    assert ledger.event(oom, 50.0) == []
    assert ledger.due(60.0) == []  # recovered: the count waits for the next message
    assert states(ledger.event(oom, 90.0)) == [("firing", ("redis-0",), 2)]
    assert ledger.open_incidents == 0


def test_state_is_pruned_once_pods_are_gone_and_the_window_passed() -> None:
    ledger = Ledger(WINDOW)
    for i in range(50):
        key = IncidentKey("prod", "Deployment", f"w{i}", "waiting", "ImagePullBackOff")
        ledger.update(key, {"p": finding("p", workload=f"w{i}")}, 0.0)
        ledger.update(key, {}, 10.0)
    assert len(ledger) == 50
    ledger.due(70.0)
    assert len(ledger) == 0 and ledger.next_due is None


def test_unreported_flap_counts_are_kept_only_for_the_retention() -> None:
    ledger = Ledger(WINDOW)
    ledger.update(KEY, failing("web-1"), 0.0)
    ledger.update(KEY, {}, 10.0)
    ledger.update(KEY, failing("web-1"), 20.0)
    ledger.update(KEY, {}, 25.0)
    ledger.due(70.0)
    assert len(ledger) == 1
    ledger.due(25.0 + 3600.0)
    assert len(ledger) == 0


def test_export_and_restore_resume_without_repeating_or_losing() -> None:
    ledger = Ledger(WINDOW)
    ledger.update(KEY, failing("web-1", "web-2"), 0.0)
    other = IncidentKey("prod", "Deployment", "api", "waiting", "CrashLoopBackOff")
    ledger.update(other, {"api-1": finding("api-1", "CrashLoopBackOff", workload="api")}, 0.0)
    ledger.update(other, {}, 30.0)  # in its window
    state = json.loads(json.dumps(ledger.export()))
    restored = Ledger.restore(state, WINDOW)
    assert restored.open_keys() == [KEY]
    assert restored.update(KEY, failing("web-1", "web-2"), 40.0) == []  # still failing: not again
    assert restored.update(other, {"api-1": finding("api-1", "CrashLoopBackOff", workload="api")}, 50.0) == []
    out = restored.update(KEY, {}, 100.0)
    assert states(out) == [("resolved", ("web-1", "web-2"), 0)] and out[0].duration == 100.0
    assert restored.export()["incidents"][0]["finding"]["reason"] == "ErrImagePull"


@pytest.mark.parametrize("data", [{}, {"version": 99, "incidents": []}, {"version": 1, "incidents": "x"},
                                  {"version": 1, "incidents": [{"key": ["a"]}]}, []])
def test_restore_rejects_foreign_or_corrupt_state(data: object) -> None:
    with pytest.raises(ValueError):
        Ledger.restore(data, WINDOW)  # type: ignore[arg-type]
