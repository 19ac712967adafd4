"""Detection rules over realistic pod JSON: every failure, and every healthy or benign case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubedingtalk.records import from_pod
from kubedingtalk.rules import RuleSettings, evaluate
from kubedingtalk.testing import pods

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MIN = RuleSettings(not_ready_min_time=60.0)
LONG_AGO = NOW - timedelta(minutes=5)
JUST_NOW = NOW - timedelta(seconds=10)


def base(owner: str | None = "ReplicaSet") -> dict[str, Any]:
    return pods.pod("web", namespace="prod", owner=owner, now=NOW)


def found(p: dict[str, Any], previous: dict[str, Any] | None = None) -> list[tuple[str, str, str | None]]:
    prev = from_pod(previous) if previous else None
    return [(f.kind, f.reason, f.container) for f in evaluate(from_pod(p), NOW.timestamp(), MIN, prev)]


CASES: list[tuple[str, Callable[[], dict[str, Any]], list[tuple[str, str, str | None]]]] = [
    ("healthy", lambda: base(), []),
    ("ErrImagePull", lambda: pods.err_image_pull(base(), since=JUST_NOW), [("waiting", "ErrImagePull", "app")]),
    ("ImagePullBackOff", lambda: pods.image_pull_backoff(base()), [("waiting", "ImagePullBackOff", "app")]),
    ("CrashLoopBackOff", lambda: pods.crash_loop(base(), since=JUST_NOW), [("waiting", "CrashLoopBackOff", "app")]),
    ("CreateContainerConfigError", lambda: pods.create_container_config_error(base()),
     [("waiting", "CreateContainerConfigError", "app")]),
    ("InvalidImageName", lambda: pods.invalid_image_name(base()), [("waiting", "InvalidImageName", "app")]),
    ("RunContainerError", lambda: pods.waiting(base(), "RunContainerError", "exec: not found"),
     [("waiting", "RunContainerError", "app")]),
    ("ContainerCreating is benign", lambda: pods.waiting(base(), "ContainerCreating", "", since=JUST_NOW), []),
    ("init crash loop", lambda: pods.init_crash_loop(base(), since=JUST_NOW),
     [("waiting", "CrashLoopBackOff", "migrate")]),
    ("OOMKilled restart, running again", lambda: pods.oom_killed(base(), now=JUST_NOW),
     [("restart", "OOMKilled", "app")]),
    ("old OOM kill on first sight is not news", lambda: pods.oom_killed(base(), now=LONG_AGO), []),
    ("Evicted", lambda: pods.evicted(base()), [("failed", "Evicted", None)]),
    ("DeadlineExceeded", lambda: pods.deadline_exceeded(base()), [("failed", "DeadlineExceeded", None)]),
    ("failed Job pod", lambda: pods.job_failed(base("Job"), exit_code=2), [("failed", "Error", "app")]),
    ("Unschedulable, due", lambda: pods.unschedulable(base(), since=LONG_AGO),
     [("unschedulable", "Unschedulable", None)]),
    ("Unschedulable, not yet due", lambda: pods.unschedulable(base(), since=JUST_NOW), []),
    ("not ready, due", lambda: pods.readiness_failing(base(), since=LONG_AGO),
     [("not_ready", "ContainersNotReady", None)]),
    ("not ready, not yet due", lambda: pods.readiness_failing(base(), since=JUST_NOW), []),
    ("Completed", lambda: pods.completed(base("Job"), now=LONG_AGO), []),
    ("Terminating during a rollout", lambda: pods.terminating(base(), now=LONG_AGO), []),
    ("ignored by annotation", lambda: pods.crash_loop(pods.pod("web", annotations={"kube-dingtalk/ignore": "true"})),
     []),
    ("ignore annotation false is not ignore",
     lambda: pods.crash_loop(pods.pod("web", annotations={"kube-dingtalk/ignore": "false"})),
     [("waiting", "CrashLoopBackOff", "app")]),
    ("kube-slack's ignore annotation", lambda: pods.evicted(pods.pod("w", annotations={
        "kube-slack/ignore-pod": "true"})), []),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rules(name: str, make: Callable[[], dict[str, Any]], expected: list[tuple[str, str, str | None]]) -> None:
    assert found(make()) == expected


def test_a_crash_looping_pod_is_not_also_not_ready() -> None:
    assert [k for k, _, _ in found(pods.crash_loop(base(), since=LONG_AGO))] == ["waiting"]


def test_restart_seen_by_restart_count_rising() -> None:
    before = pods.oom_killed(base(), restarts=1, now=LONG_AGO)
    after = pods.oom_killed(base(), restarts=2, now=LONG_AGO)
    assert found(after, previous=before) == [("restart", "OOMKilled", "app")]
    assert found(after, previous=after) == [], "no rise, no finding"
    clean = pods.oom_killed(base(), restarts=2, now=LONG_AGO)
    clean["status"]["containerStatuses"][0]["lastState"]["terminated"].update(reason="Completed", exitCode=0)
    assert found(clean, previous=before) == [], "a clean exit is not a failure"


def test_restart_with_error_exit_code() -> None:
    p = pods.oom_killed(base(), restarts=3, now=JUST_NOW)
    p["status"]["containerStatuses"][0]["lastState"]["terminated"].update(reason="Error", exitCode=2)
    [finding] = evaluate(from_pod(p), NOW.timestamp(), MIN)
    assert (finding.reason, finding.exit_code, finding.restart_count) == ("Error", 2, 3)


def test_findings_carry_what_a_message_needs() -> None:
    [f] = evaluate(from_pod(pods.crash_loop(base(), exit_code=137, restarts=9, since=LONG_AGO)), NOW.timestamp(), MIN)
    assert (f.namespace, f.workload_kind, f.workload_name, f.node) == ("prod", "Deployment", "web", "node-1")
    assert f.exit_code == 137 and f.restart_count == 9 and "back-off" in f.message
    assert f.since == LONG_AGO.replace(microsecond=0).timestamp()
    [evicted] = evaluate(from_pod(pods.evicted(base())), NOW.timestamp(), MIN)
    assert evicted.message.startswith("The node was low on resource: memory")
