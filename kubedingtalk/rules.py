"""Detection rules: which pods are failing, and why. Pure functions of (record, previous, now, settings).

A pod gets at most one finding per container and cause. "Not ready" is the
catch-all: it fires only when no sharper rule explains the pod, so a
crash-looping pod is one CrashLoopBackOff finding, not that plus not-ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubedingtalk.records import ContainerRecord, PodRecord

BENIGN_WAITING = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason a pod is failing, with what a message needs to say about it."""

    namespace: str
    pod: str
    workload_kind: str
    workload_name: str
    kind: str  # waiting | restart | failed | unschedulable | not_ready
    reason: str
    message: str
    container: str | None = None
    init: bool = False
    since: float | None = None
    exit_code: int | None = None
    restart_count: int | None = None
    node: str | None = None
    at_mobiles: tuple[str, ...] = ()
    exit_reason: str | None = None  # the last termination's reason (OOMKilled, Error, ...)


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The settings rules depend on, in seconds."""

    not_ready_min_time: float = 60.0


def _finding(rec: PodRecord, kind: str, reason: str, message: str | None, **extra: object) -> Finding:
    return Finding(rec.namespace, rec.name, rec.workload_kind, rec.workload_name, kind, reason,
                   (message or "").strip(), node=rec.node, at_mobiles=rec.at_mobiles, **extra)  # type: ignore[arg-type]


def _restarted_badly(cs: ContainerRecord) -> bool:
    return cs.last_reason == "OOMKilled" or (cs.last_exit_code is not None and cs.last_exit_code != 0)


def _restart(rec: PodRecord, cs: ContainerRecord, previous: PodRecord | None, now: float,
             settings: RuleSettings) -> Finding | None:
    """A restart after an OOM kill or a non-zero exit, even when the container runs again.

    With a previous record, a restart is ``restartCount`` rising. Without one (first
    sight, ``check-pod``), only a termination within the not-ready window counts, so
    restarts from days ago do not alert on start-up.
    """
    if not _restarted_badly(cs) or cs.restart_count == 0 or cs.waiting_reason == "CrashLoopBackOff":
        return None
    if previous is not None:
        before = next((p for p in previous.containers if p.name == cs.name and p.init == cs.init), None)
        if before is not None and cs.restart_count <= before.restart_count:
            return None
    elif cs.last_finished is None or now - cs.last_finished > settings.not_ready_min_time:
        return None
    reason = cs.last_reason or "Error"
    message = f"container {cs.name} restarted after {reason} (exit code {cs.last_exit_code})"
    return _finding(rec, "restart", reason, message, container=cs.name, init=cs.init, since=cs.last_finished,
                    exit_code=cs.last_exit_code, exit_reason=cs.last_reason, restart_count=cs.restart_count)


def _failed(rec: PodRecord) -> Finding:
    bad = next((c for c in rec.containers if not c.init and c.terminated_exit_code not in (None, 0)), None)
    reason = rec.reason or (bad.terminated_reason if bad else None) or "Failed"
    message = rec.message or (f"container {bad.name} exited with code {bad.terminated_exit_code}" if bad else "")
    return _finding(rec, "failed", reason, message, container=None if rec.reason or not bad else bad.name,
                    since=rec.ready.since if rec.ready else rec.created,
                    exit_code=bad.terminated_exit_code if bad else None,
                    exit_reason=bad.terminated_reason if bad else None)


def evaluate(rec: PodRecord, now: float, settings: RuleSettings, previous: PodRecord | None = None) -> list[Finding]:
    """Every finding for one pod at ``now``; time-based ones only once they are due."""
    if rec.ignored or rec.phase == "Succeeded":
        return []
    found: list[Finding] = []
    for cs in rec.containers:
        if cs.waiting_reason and cs.waiting_reason not in BENIGN_WAITING:
            found.append(_finding(
                rec, "waiting", cs.waiting_reason, cs.waiting_message, container=cs.name, init=cs.init,
                since=rec.ready.since if rec.ready and rec.ready.status == "False" else rec.created,
                restart_count=cs.restart_count, exit_code=cs.last_exit_code, exit_reason=cs.last_reason))
        restart = _restart(rec, cs, previous, now, settings)
        if restart:
            found.append(restart)
    if rec.phase == "Failed":
        found.append(_failed(rec))

    def due(since: float | None) -> bool:
        return since is None or now - since >= settings.not_ready_min_time

    sched = rec.scheduled
    if rec.phase == "Pending" and sched and sched.status == "False" and sched.reason == "Unschedulable":
        if due(sched.since):
            found.append(_finding(rec, "unschedulable", "Unschedulable", sched.message, since=sched.since))
        return found
    ready = rec.ready
    if (not found and not rec.deleting and rec.phase != "Failed" and ready and ready.status == "False"
            and ready.reason != "PodCompleted" and due(ready.since)):
        found.append(_finding(rec, "not_ready", ready.reason or "NotReady", ready.message, since=ready.since))
    return found


def next_due(rec: PodRecord, now: float, settings: RuleSettings) -> float | None:
    """When a time-based finding for this pod would become due, if it is pending and not due yet.

    The scanner sets a timer for that moment instead of re-evaluating every pod on every tick.
    """
    if rec.ignored or rec.phase in ("Succeeded", "Failed") or rec.deleting:
        return None
    for cond in (rec.scheduled, rec.ready):
        if cond is not None and cond.status == "False" and cond.since is not None:
            due = cond.since + settings.not_ready_min_time
            if due > now:
                return due
    return None
