"""Slim, immutable pod records: only what detection and messages need.

A pod document is 5-20 KB of JSON; the cache keeps this instead. Parsing is
strict about shape and lenient about absent optional fields, so a malformed
object raises ``MalformedPod`` (logged and skipped by the caller) while a pod
that is merely young (no statuses yet) parses fine.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

IGNORE_ANNOTATIONS = ("kube-dingtalk/ignore", "kube-slack/ignore-pod")
AT_MOBILES_ANNOTATION = "kube-dingtalk/at-mobiles"
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


class MalformedPod(ValueError):
    """The object is not a pod this service can read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    name: str
    init: bool
    ready: bool
    restart_count: int
    waiting_reason: str | None
    waiting_message: str | None
    terminated_reason: str | None
    terminated_exit_code: int | None
    last_reason: str | None
    last_exit_code: int | None
    last_finished: float | None


@dataclass(frozen=True, slots=True)
class Condition:
    status: str
    reason: str | None
    message: str | None
    since: float | None


@dataclass(frozen=True, slots=True)
class PodRecord:
    namespace: str
    name: str
    uid: str
    resource_version: str
    workload_kind: str
    workload_name: str
    phase: str
    reason: str | None
    message: str | None
    node: str | None
    created: float | None
    deleting: bool
    ignored: bool
    at_mobiles: tuple[str, ...]
    ready: Condition | None
    scheduled: Condition | None  # kept only while not scheduled: that is all the rules ask of it
    containers: tuple[ContainerRecord, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def _intern(value: Any) -> Any:
    """Share the few distinct values (namespaces, phases, reasons, nodes) across all records."""
    return sys.intern(value) if type(value) is str else value


_TIMES: dict[str, float] = {}  # pods share timestamps (replicas, conditions): parse each once
_TIMES_MAX = 8192


def parse_time(value: Any) -> float | None:
    """RFC 3339 to epoch seconds; None when absent."""
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise MalformedPod(f"timestamp {value!r} is not a string")
    seconds = _TIMES.get(value)
    if seconds is None:
        try:
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise MalformedPod(f"timestamp {value!r} is not RFC 3339") from None
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        _TIMES[value] = seconds
    return seconds


def strict_bool(value: Any) -> bool:
    """Annotation booleans: only a clear yes is yes ("false" means false)."""
    return isinstance(value, str) and value.strip().lower() in _TRUE


_EMPTY: Mapping[str, Any] = {}


def _dict(value: Any, where: str) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case, checked first: this runs for every watch event
        return value
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise MalformedPod(f"{where} is {type(value).__name__}, expected an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPod(f"{where} is {type(value).__name__}, expected a list")
    return value


def _workload(meta: Mapping[str, Any], labels: Mapping[str, Any]) -> tuple[str, str]:
    """The owning workload, named without an API call (ReplicaSet -> Deployment by pod-template-hash)."""
    owners = _list(meta.get("ownerReferences"), "metadata.ownerReferences")
    owner = next((o for o in owners if type(o) is dict and o.get("controller")), None)
    owner = owner or next((o for o in owners if type(o) is dict), None)
    if owner is None:
        return "Pod", str(meta.get("name"))
    kind, name = str(owner.get("kind") or "Unknown"), str(owner.get("name") or "")
    template_hash = labels.get("pod-template-hash")
    if kind == "ReplicaSet" and isinstance(template_hash, str) and name.endswith(f"-{template_hash}"):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def _conditions(conditions: list[Any]) -> tuple[Condition | None, Condition | None]:
    """The Ready and PodScheduled conditions, in one pass."""
    found: dict[str, Condition] = {}
    for cond in conditions:
        kind = cond.get("type") if type(cond) is dict else None
        if kind == "Ready" or kind == "PodScheduled":
            found[kind] = Condition(_intern(str(cond.get("status", "Unknown"))), _intern(cond.get("reason")),
                                            cond.get("message"), parse_time(cond.get("lastTransitionTime")))
    return found.get("Ready"), found.get("PodScheduled")


def _container(status: Any, init: bool) -> ContainerRecord:
    cs = _dict(status, "containerStatus")
    state = _dict(cs.get("state"), "state")
    waiting = _dict(state.get("waiting"), "state.waiting")
    terminated = _dict(state.get("terminated"), "state.terminated")
    last = _dict(_dict(cs.get("lastState"), "lastState").get("terminated"), "lastState.terminated")
    name = cs.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedPod("a container status has no name")
    try:
        restarts = int(cs.get("restartCount") or 0)
        term_code = int(terminated["exitCode"]) if "exitCode" in terminated else None
        last_code = int(last["exitCode"]) if "exitCode" in last else None
    except (TypeError, ValueError):
        raise MalformedPod(f"container {name}: restartCount or exitCode is not a number") from None
    return ContainerRecord(  # positional: this runs for every container of every watch event
        _intern(name), init, bool(cs.get("ready")), restarts,
        _intern(waiting.get("reason")) if state.get("waiting") is not None else None, waiting.get("message"),
        _intern(terminated.get("reason")), term_code, _intern(last.get("reason")), last_code,
        parse_time(last.get("finishedAt")))


def from_pod(obj: Any) -> PodRecord:
    """Read a pod document (as the API serves it) into a record."""
    pod = _dict(obj, "pod")
    meta = _dict(pod.get("metadata"), "metadata")
    namespace, name = meta.get("namespace"), meta.get("name")
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        raise MalformedPod("metadata.namespace and metadata.name are required")
    labels = _dict(meta.get("labels"), "metadata.labels")
    annotations = _dict(meta.get("annotations"), "metadata.annotations")
    status = _dict(pod.get("status"), "status")
    spec = _dict(pod.get("spec"), "spec")
    conditions = _list(status.get("conditions"), "status.conditions")
    kind, workload = _workload(meta, labels)
    mobiles = annotations.get(AT_MOBILES_ANNOTATION)
    at_mobiles = tuple(m.strip() for m in mobiles.split(",") if m.strip()) if isinstance(mobiles, str) else ()
    containers = tuple([_container(cs, True) for cs in _list(status.get("initContainerStatuses"),
                                                               "status.initContainerStatuses")]
                       + [_container(cs, False) for cs in _list(status.get("containerStatuses"),
                                                                "status.containerStatuses")])
    ready, scheduled = _conditions(conditions)
    return PodRecord(
        namespace=_intern(namespace), name=name, uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""), workload_kind=_intern(kind),
        workload_name=workload, phase=_intern(str(status.get("phase") or "Unknown")),
        reason=_intern(status.get("reason")), message=status.get("message"),
        node=_intern(spec.get("nodeName")), created=parse_time(meta.get("creationTimestamp")),
        deleting=meta.get("deletionTimestamp") is not None,
        ignored=bool(annotations) and any([strict_bool(annotations.get(a)) for a in IGNORE_ANNOTATIONS]),
        at_mobiles=at_mobiles,
        ready=ready,
        scheduled=None if scheduled is not None and scheduled.status == "True" else scheduled,
        containers=containers)
