"""Scenario pods carry exactly the fields the kubelet writes for each state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import pod_status_text

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def conditions(p: dict) -> dict[str, dict]:
    return {c["type"]: c for c in p["status"]["conditions"]}


def test_owners_and_names() -> None:
    rs = pods.pod("web", now=NOW)
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    template_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["ownerReferences"][0]["name"] == f"web-{template_hash}"
    assert rs["metadata"]["name"].startswith(f"web-{template_hash}-")
    assert pods.pod("db", owner="StatefulSet")["metadata"]["name"] == "db-0"
    assert pods.pod("agent", owner="DaemonSet")["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    job = pods.pod("backup", owner="Job")
    assert job["metadata"]["labels"]["job-name"] == "backup" and job["spec"]["restartPolicy"] == "Never"
    bare = pods.pod("debug", owner=None)
    assert bare["metadata"]["name"] == "debug" and "ownerReferences" not in bare["metadata"]
    with pytest.raises(ValueError):
        pods.pod("x", owner="CronJob")


def test_healthy_pod_is_running_and_ready() -> None:
    p = pods.pod("web", now=NOW)
    assert p["status"]["phase"] == "Running" and conditions(p)["Ready"]["status"] == "True"
    assert pod_status_text(p) == "Running"


@pytest.mark.parametrize(("make", "reason"), [
    (pods.err_image_pull, "ErrImagePull"), (pods.image_pull_backoff, "ImagePullBackOff"),
    (pods.crash_loop, "CrashLoopBackOff"), (pods.create_container_config_error, "CreateContainerConfigError"),
    (pods.invalid_image_name, "InvalidImageName"),
])
def test_waiting_states(make: object, reason: str) -> None:
    p = make(pods.pod("web", now=NOW))  # type: ignore[operator]
    cs = p["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == reason and cs["state"]["waiting"]["message"]
    assert cs["ready"] is False and conditions(p)["Ready"]["reason"] == "ContainersNotReady"
    assert pod_status_text(p) == reason


def test_crash_loop_has_terminated_last_state() -> None:
    p = pods.crash_loop(pods.pod("web"), exit_code=3, restarts=7)
    cs = p["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 7 and cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"


def test_oom_killed_restart_is_running_again() -> None:
    cs = pods.oom_killed(pods.pod("web"), restarts=2)["status"]["containerStatuses"][0]
    assert "running" in cs["state"] and cs["ready"] is True and cs["restartCount"] == 2
    assert cs["lastState"]["terminated"] | {} == cs["lastState"]["terminated"]
    assert (cs["lastState"]["terminated"]["reason"], cs["lastState"]["terminated"]["exitCode"]) == ("OOMKilled", 137)


def test_init_container_crash_loop_keeps_pod_pending() -> None:
    p = pods.init_crash_loop(pods.pod("web"))
    assert p["status"]["phase"] == "Pending"
    assert p["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert conditions(p)["Initialized"]["reason"] == "ContainersNotInitialized"
    assert pod_status_text(p) == "Init:CrashLoopBackOff"


@pytest.mark.parametrize(("make", "reason"), [(pods.evicted, "Evicted"), (pods.deadline_exceeded, "DeadlineExceeded")])
def test_failed_phases(make: object, reason: str) -> None:
    p = make(pods.pod("web"))  # type: ignore[operator]
    assert (p["status"]["phase"], p["status"]["reason"]) == ("Failed", reason) and p["status"]["message"]
    assert pod_status_text(p) == reason


def test_failed_job_pod_has_exit_code() -> None:
    p = pods.job_failed(pods.pod("backup", owner="Job"), exit_code=2)
    terminated = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert p["status"]["phase"] == "Failed" and (terminated["exitCode"], terminated["reason"]) == (2, "Error")


def test_unschedulable() -> None:
    p = pods.unschedulable(pods.pod("web"), since=NOW)
    sched = conditions(p)["PodScheduled"]
    assert (p["status"]["phase"], sched["status"], sched["reason"]) == ("Pending", "False", "Unschedulable")
    assert sched["lastTransitionTime"] == "2026-11-29T12:00:00Z" and "nodeName" not in p["spec"]
    assert "containerStatuses" not in p["status"]


def test_readiness_completed_terminating_and_back_to_healthy() -> None:
    base = pods.pod("web")
    failing = pods.readiness_failing(base, since=NOW)
    ready = conditions(failing)["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "False", "ContainersNotReady", "2026-11-29T12:00:00Z")
    done = pods.completed(pods.pod("once", owner="Job"))
    assert done["status"]["phase"] == "Succeeded" and conditions(done)["Ready"]["reason"] == "PodCompleted"
    going = pods.terminating(base)
    assert going["metadata"]["deletionTimestamp"] and pod_status_text(going) == "Terminating"
    back = pods.healthy(pods.crash_loop(base))
    assert conditions(back)["Ready"]["status"] == "True" and back["status"]["containerStatuses"][0]["restartCount"] == 4


def test_states_do_not_mutate_their_input() -> None:
    base = pods.pod("web")
    snapshot = repr(base)
    for make in (pods.crash_loop, pods.evicted, pods.unschedulable, pods.init_crash_loop, pods.terminating):
        make(base)  # type: ignore[operator]
    assert repr(base) == snapshot
