"""Pods in the exact states the kubelet and controllers write, for tests, the demo and benchmarks.

Each state function takes a pod and returns a new one; none mutates its input.
The messages are the kubelet's and the scheduler's own wording, so detection
and message rendering are tested on what a cluster really shows.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

OWNER_KINDS = ("ReplicaSet", "StatefulSet", "DaemonSet", "Job", None)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _hash(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def _owner(kind: str, name: str, controller: bool = True) -> Obj:
    api = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1"}[kind]
    return {"apiVersion": api, "kind": kind, "name": name, "uid": f"{_hash(kind + name, 8)}-0000-4000-8000-"
            f"{_hash(name, 12)}", "controller": controller, "blockOwnerDeletion": True}


def _condition(kind: str, status: bool, since: str, reason: str | None = None, message: str | None = None) -> Obj:
    cond: Obj = {"type": kind, "status": "True" if status else "False", "lastProbeTime": None,
                 "lastTransitionTime": since}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod(name: str, namespace: str = "default", *, workload: str | None = None, owner: str | None = "ReplicaSet",
        containers: Sequence[str] = ("app",), image: str = "registry.example/app:1.0", node: str = "node-1",
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        created: datetime | None = None, now: datetime | None = None) -> Obj:
    """A healthy, running, ready pod owned the way its controller would own it.

    ``name`` is the workload's name: the pod gets the controller's naming
    (``web-5d9c7f8b6d-x2x7k`` for a Deployment's ReplicaSet, ``db-0`` for a
    StatefulSet) unless ``owner`` is None, when ``name`` is used as is.
    """
    moment = _now(now)
    started = rfc3339(created or moment - timedelta(minutes=10))
    workload = workload or name
    pod_labels = {"app": workload, **(labels or {})}
    owner_refs: list[Obj] = []
    suffix = _hash(f"{namespace}/{name}", 5)
    if owner == "ReplicaSet":
        template_hash = _hash(workload, 10)
        pod_labels["pod-template-hash"] = template_hash
        owner_refs = [_owner("ReplicaSet", f"{workload}-{template_hash}")]
        pod_name = f"{workload}-{template_hash}-{suffix}" if name == workload else name
    elif owner == "StatefulSet":
        owner_refs = [_owner("StatefulSet", workload)]
        pod_name = f"{workload}-0" if name == workload else name
        pod_labels["statefulset.kubernetes.io/pod-name"] = pod_name
    elif owner == "DaemonSet":
        owner_refs = [_owner("DaemonSet", workload)]
        pod_name = f"{workload}-{suffix}" if name == workload else name
    elif owner == "Job":
        owner_refs = [_owner("Job", workload)]
        pod_labels.update({"job-name": workload, "batch.kubernetes.io/job-name": workload})
        pod_name = f"{workload}-{suffix}" if name == workload else name
    elif owner is None:
        pod_name = name
    else:
        raise ValueError(f"unknown owner kind {owner!r}; expected one of {OWNER_KINDS}")
    meta: Obj = {"name": pod_name, "namespace": namespace, "labels": pod_labels, "creationTimestamp": started}
    if owner_refs:
        meta["ownerReferences"] = owner_refs
    if annotations:
        meta["annotations"] = dict(annotations)
    spec = {"containers": [{"name": c, "image": image, "imagePullPolicy": "IfNotPresent",
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}} for c in containers],
            "nodeName": node, "restartPolicy": "Never" if owner == "Job" else "Always",
            "schedulerName": "default-scheduler", "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30}
    statuses = [{"name": c, "image": image, "imageID": f"{image}@sha256:{_hash(image, 64)}",
                 "containerID": f"containerd://{_hash(pod_name + c, 64)}", "ready": True, "started": True,
                 "restartCount": 0, "state": {"running": {"startedAt": started}}, "lastState": {}}
                for c in containers]
    status = {"phase": "Running", "hostIP": "10.0.0.11", "podIP": f"10.244.1.{int(suffix, 16) % 250 + 2}",
              "startTime": started, "qosClass": "Burstable", "containerStatuses": statuses,
              "conditions": [_condition("PodReadyToStartContainers", True, started),
                             _condition("Initialized", True, started), _condition("Ready", True, started),
                             _condition("ContainersReady", True, started),
                             _condition("PodScheduled", True, started)]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _with(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def _container(p: Obj, container: str | None, init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    statuses = p["status"].setdefault(key, [])
    if container is None:
        return dict(statuses[0])
    for cs in statuses:
        if cs["name"] == container:
            return dict(cs)
    raise KeyError(f"pod {p['metadata']['name']} has no {'init ' if init else ''}container {container!r}")


def _set_container(p: Obj, status: Obj, init: bool = False) -> None:
    key = "initContainerStatuses" if init else "containerStatuses"
    p["status"][key] = [status if cs["name"] == status["name"] else cs for cs in p["status"][key]]


def _not_ready(p: Obj, since: str, unready: Sequence[str], reason: str = "ContainersNotReady") -> None:
    message = f"containers with unready status: [{' '.join(unready)}]"
    for cond in p["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(_condition(cond["type"], False, since, reason, message))


def waiting(p: Obj, reason: str, message: str, container: str | None = None, *, since: datetime | None = None,
            restarts: int | None = None, last_exit: int | None = None, last_reason: str = "Error") -> Obj:
    """A container stuck waiting, as the kubelet reports it."""
    out = _with(p)
    cs = _container(out, container)
    cs.update({"ready": False, "started": False, "state": {"waiting": {"reason": reason, "message": message}}})
    if restarts is not None:
        cs["restartCount"] = restarts
    if last_exit is not None:
        moment = _now(since)
        cs["lastState"] = {"terminated": {"exitCode": last_exit, "reason": last_reason,
                                          "startedAt": rfc3339(moment - timedelta(seconds=20)),
                                          "finishedAt": rfc3339(moment), "containerID": cs.get("containerID")}}
    if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
        cs.pop("containerID", None)
        cs["imageID"] = ""
    _set_container(out, cs)
    _not_ready(out, rfc3339(_now(since)), [cs["name"]])
    return out


def err_image_pull(p: Obj, image: str = "registry.example/app:does-not-exist", container: str | None = None,
                   since: datetime | None = None) -> Obj:
    return waiting(p, "ErrImagePull", f'rpc error: code = NotFound desc = failed to pull and unpack image '
                   f'"{image}": failed to resolve reference "{image}": {image}: not found', container, since=since)


def image_pull_backoff(p: Obj, image: str = "registry.example/app:does-not-exist", container: str | None = None,
                       since: datetime | None = None) -> Obj:
    return waiting(p, "ImagePullBackOff", f'Back-off pulling image "{image}"', container, since=since)


def crash_loop(p: Obj, exit_code: int = 1, restarts: int = 4, container: str | None = None,
               since: datetime | None = None, last_reason: str = "Error") -> Obj:
    name = container or _container(p, None)["name"]
    meta = p["metadata"]
    return waiting(p, "CrashLoopBackOff", f"back-off 1m20s restarting failed container={name} "
                   f"pod={meta['name']}_{meta['namespace']}({_hash(meta['name'], 8)})", container,
                   since=since, restarts=restarts, last_exit=exit_code, last_reason=last_reason)


def oom_killed(p: Obj, restarts: int = 1, container: str | None = None, now: datetime | None = None) -> Obj:
    """Restarted after an OOM kill and running (and ready) again."""
    out = _with(p)
    cs = _container(out, container)
    moment = _now(now)
    cs.update({"ready": True, "started": True, "restartCount": restarts,
               "state": {"running": {"startedAt": rfc3339(moment)}},
               "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                            "startedAt": rfc3339(moment - timedelta(minutes=3)),
                                            "finishedAt": rfc3339(moment), "containerID": cs.get("containerID")}}})
    _set_container(out, cs)
    return out


def create_container_config_error(p: Obj, missing: str = 'secret "db-password" not found',
                                  container: str | None = None, since: datetime | None = None) -> Obj:
    return waiting(p, "CreateContainerConfigError", missing, container, since=since)


def invalid_image_name(p: Obj, image: str = "registry.example/app:Bad Tag", container: str | None = None,
                       since: datetime | None = None) -> Obj:
    return waiting(p, "InvalidImageName", f'Failed to apply default image tag "{image}": couldn\'t parse image '
                   f'name "{image}": invalid reference format', container, since=since)


def init_crash_loop(p: Obj, init_container: str = "migrate", exit_code: int = 1, restarts: int = 3,
                    since: datetime | None = None) -> Obj:
    """An init container crash-looping: the pod is Pending and its app containers never start."""
    out = _with(p)
    moment = _now(since)
    stamp = rfc3339(moment)
    out["spec"]["initContainers"] = [{"name": init_container, "image": out["spec"]["containers"][0]["image"]}]
    meta = out["metadata"]
    out["status"]["initContainerStatuses"] = [{
        "name": init_container, "image": out["spec"]["containers"][0]["image"], "imageID": "", "ready": False,
        "started": False, "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off 40s restarting failed "
                              f"container={init_container} pod={meta['name']}_{meta['namespace']}(x)"}},
        "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error",
                                     "startedAt": rfc3339(moment - timedelta(seconds=5)), "finishedAt": stamp}}}]
    for cs in out["status"]["containerStatuses"]:
        cs.update({"ready": False, "started": False, "restartCount": 0, "lastState": {},
                   "state": {"waiting": {"reason": "PodInitializing"}}})
        cs.pop("containerID", None)
    out["status"]["phase"] = "Pending"
    for cond in out["status"]["conditions"]:
        if cond["type"] == "Initialized":
            cond.update(_condition("Initialized", False, stamp, "ContainersNotInitialized",
                                   f"containers with incomplete status: [{init_container}]"))
    _not_ready(out, stamp, [cs["name"] for cs in out["status"]["containerStatuses"]])
    return out


def _terminated_all(out: Obj, exit_code: int, reason: str, moment: datetime) -> None:
    for cs in out["status"]["containerStatuses"]:
        cs.update({"ready": False, "started": False, "state": {"terminated": {
            "exitCode": exit_code, "reason": reason, "startedAt": out["status"].get("startTime"),
            "finishedAt": rfc3339(moment), "containerID": cs.get("containerID")}}})


def evicted(p: Obj, resource: str = "memory", now: datetime | None = None) -> Obj:
    out = _with(p)
    moment = _now(now)
    name = out["status"]["containerStatuses"][0]["name"]
    out["status"].update({"phase": "Failed", "reason": "Evicted", "message": (
        f"The node was low on resource: {resource}. Threshold quantity: 100Mi, available: 42Mi. Container {name} "
        f"was using 1200Mi, request is 128Mi, has larger consumption of {resource}. ")})
    _terminated_all(out, 137, "ContainerStatusUnknown", moment)
    stamp = rfc3339(moment)
    out["status"]["conditions"].append(_condition("DisruptionTarget", True, stamp, "TerminationByKubelet",
                                                  f"The node was low on resource: {resource}."))
    _not_ready(out, stamp, [], reason="PodFailed")
    return out


def deadline_exceeded(p: Obj, now: datetime | None = None) -> Obj:
    out = _with(p)
    moment = _now(now)
    out["status"].update({"phase": "Failed", "reason": "DeadlineExceeded",
                          "message": "Pod was active on the node longer than the specified deadline"})
    _terminated_all(out, 137, "Error", moment)
    _not_ready(out, rfc3339(moment), [], reason="PodFailed")
    return out


def job_failed(p: Obj, exit_code: int = 2, now: datetime | None = None) -> Obj:
    """A Job's pod whose container exited non-zero (restartPolicy Never)."""
    out = _with(p)
    moment = _now(now)
    out["status"]["phase"] = "Failed"
    _terminated_all(out, exit_code, "Error", moment)
    _not_ready(out, rfc3339(moment), [], reason="PodFailed")
    return out


def unschedulable(p: Obj, since: datetime | None = None,
                  message: str = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                                 "available: 3 No preemption victims found for incoming pod.") -> Obj:
    """Pending and never scheduled: no node, no container statuses."""
    out = _with(p)
    stamp = rfc3339(_now(since))
    out["spec"].pop("nodeName", None)
    out["status"] = {"phase": "Pending", "qosClass": out["status"].get("qosClass", "Burstable"),
                     "conditions": [_condition("PodScheduled", False, stamp, "Unschedulable", message)]}
    return out


def readiness_failing(p: Obj, since: datetime | None = None, container: str | None = None) -> Obj:
    """Running, but a readiness probe keeps failing."""
    out = _with(p)
    cs = _container(out, container)
    cs["ready"] = False
    _set_container(out, cs)
    _not_ready(out, rfc3339(_now(since)), [cs["name"]])
    return out


def completed(p: Obj, now: datetime | None = None) -> Obj:
    out = _with(p)
    moment = _now(now)
    out["status"]["phase"] = "Succeeded"
    _terminated_all(out, 0, "Completed", moment)
    _not_ready(out, rfc3339(moment), [], reason="PodCompleted")
    for cond in out["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.pop("message", None)
    return out


def terminating(p: Obj, now: datetime | None = None, grace_seconds: int = 30) -> Obj:
    """Being deleted (a rollout replacing it): deletionTimestamp set, readiness going."""
    out = _with(p)
    moment = _now(now)
    out["metadata"]["deletionTimestamp"] = rfc3339(moment + timedelta(seconds=grace_seconds))
    out["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
    return readiness_failing(out, since=moment)


def healthy(p: Obj, now: datetime | None = None) -> Obj:
    """Back to running and ready (restart counts kept, as the kubelet keeps them)."""
    out = _with(p)
    stamp = rfc3339(_now(now))
    out["status"]["phase"] = "Running"
    for key in ("reason", "message"):
        out["status"].pop(key, None)
    for cs in out["status"].get("containerStatuses") or []:
        cs.update({"ready": True, "started": True, "state": {"running": {"startedAt": stamp}}})
    out["status"].pop("initContainerStatuses", None)
    out["spec"].pop("initContainers", None)
    conditions = {c["type"]: c for c in out["status"].get("conditions") or []}
    for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
        conditions[kind] = _condition(kind, True, stamp)
    conditions.pop("DisruptionTarget", None)
    out["status"]["conditions"] = list(conditions.values())
    return out
