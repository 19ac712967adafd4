"""Pod documents to slim records: identity, workload, statuses; malformed input is refused clearly."""

from __future__ import annotations

from typing import Any

import pytest

from kubedingtalk.records import MalformedPod, from_pod, strict_bool
from kubedingtalk.testing import pods


@pytest.mark.parametrize(("owner", "expected_kind"), [
    ("ReplicaSet", "Deployment"), ("StatefulSet", "StatefulSet"), ("DaemonSet", "DaemonSet"), ("Job", "Job"),
    (None, "Pod"),
])
def test_workload_is_resolved_without_api_calls(owner: str | None, expected_kind: str) -> None:
    rec = from_pod(pods.pod("web", namespace="prod", owner=owner))
    assert (rec.workload_kind, rec.workload_name) == (expected_kind, "web")
    assert rec.namespace == "prod" and rec.phase == "Running" and rec.node == "node-1"


def test_a_replicaset_not_made_by_a_deployment_stays_a_replicaset() -> None:
    p = pods.pod("web")
    p["metadata"]["labels"].pop("pod-template-hash")
    assert from_pod(p).workload_kind == "ReplicaSet"


def test_container_statuses_and_conditions() -> None:
    rec = from_pod(pods.init_crash_loop(pods.crash_loop(pods.pod("web"), exit_code=3)))
    init, app = rec.containers
    assert init.init and init.waiting_reason == "CrashLoopBackOff" and init.last_exit_code == 1
    assert not app.init and app.waiting_reason == "PodInitializing"
    assert rec.ready is not None and rec.ready.status == "False" and rec.ready.since is not None


def test_annotations_ignore_and_mentions() -> None:
    rec = from_pod(pods.pod("web", annotations={"kube-slack/ignore-pod": "TRUE",
                                                "kube-dingtalk/at-mobiles": "138, 139,"}))
    assert rec.ignored and rec.at_mobiles == ("138", "139")
    assert not from_pod(pods.pod("web", annotations={"kube-dingtalk/ignore": "false"})).ignored


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("True", True), ("1", True), ("false", False),
                                                 ("", False), ("maybe", False), (None, False), (True, False)])
def test_strict_bool(value: Any, expected: bool) -> None:
    assert strict_bool(value) is expected


def test_a_young_pod_without_status_parses() -> None:
    rec = from_pod({"metadata": {"name": "a", "namespace": "d"}})
    assert rec.phase == "Unknown" and rec.containers == () and rec.ready is None


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda p: p.pop("metadata"), "metadata.namespace and metadata.name"),
    (lambda p: p["metadata"].update(name=5), "metadata.namespace and metadata.name"),
    (lambda p: p["status"].update(containerStatuses={}), "expected a list"),
    (lambda p: p["status"]["containerStatuses"][0].update(restartCount="x"), "not a number"),
    (lambda p: [c.update(lastTransitionTime="yesterday") for c in p["status"]["conditions"]], "not RFC 3339"),
    (lambda p: p["status"]["containerStatuses"][0].pop("name"), "has no name"),
])
def test_malformed_pods_are_refused_with_a_reason(mutate: Any, problem: str) -> None:
    p = pods.pod("web")
    mutate(p)
    with pytest.raises(MalformedPod, match=problem):
        from_pod(p)


def test_not_an_object() -> None:
    with pytest.raises(MalformedPod):
        from_pod(["a list"])
