"""Decoding watch events: trimmed to what records need, read exactly as the full pod would be."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kubedingtalk.records import from_pod
from kubedingtalk.testing import pods
from kubedingtalk.wire import MalformedEvent, decode_event

SHAPES: list[Callable[[], dict[str, Any]]] = [
    lambda: pods.pod("web"),
    lambda: pods.err_image_pull(pods.pod("web")),
    lambda: pods.crash_loop(pods.pod("db", owner="StatefulSet")),
    lambda: pods.oom_killed(pods.pod("cache", owner="DaemonSet")),
    lambda: pods.init_crash_loop(pods.pod("api")),
    lambda: pods.evicted(pods.pod("web")),
    lambda: pods.job_failed(pods.pod("report", owner="Job")),
    lambda: pods.unschedulable(pods.pod("big", owner=None)),
    lambda: pods.terminating(pods.pod("old")),
    lambda: pods.pod("mentions", annotations={"kube-dingtalk/at-mobiles": "13800000000",
                                              "kube-dingtalk/ignore": "false"}),
]


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode()


@pytest.mark.parametrize("shape", SHAPES)
def test_a_trimmed_pod_reads_exactly_like_the_full_one(shape: Callable[[], dict[str, Any]]) -> None:
    full = shape()
    full["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "c"}}]
    full["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
    kind, trimmed = decode_event(line("MODIFIED", full))
    assert kind == "MODIFIED"
    assert "volumes" not in trimmed["spec"] and "managedFields" not in trimmed["metadata"]
    assert from_pod(trimmed) == from_pod(full)


def test_bookmarks_and_errors_keep_what_the_informer_needs() -> None:
    kind, mark = decode_event(line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "42"}}))
    assert kind == "BOOKMARK" and mark["metadata"]["resourceVersion"] == "42"
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (2)",
              "details": {"retryAfterSeconds": 1}}
    kind, err = decode_event(line("ERROR", status))
    assert kind == "ERROR" and err == status


@pytest.mark.parametrize("raw", [b"not json", b'{"type":"ADDED"}', b'{"type":"ADDED","object":"x"}',
                                 b'{"type":"ADDED","object":{"metadata":[1]}}', b'{"object":{}}'])
def test_malformed_events_raise_with_a_reason(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_event(raw)
