"""The alert ledger: findings grouped into incidents, and what to announce about them, when.

An incident is (namespace, owning workload, kind of failure): ten replicas of
one Deployment pulling a bad image are one incident, one message. The ledger
is pure: the scanner tells it which pods are failing for which incident and
what time it is, and it answers with announcements. No clocks, no threads.

The policy, in the order things happen to an incident key:
1. First failure: announce it (firing).
2. Every pod recovered or gone: announce the recovery with the duration
   (``RECOVERY_ALERT``), and open a quiet window of ``FLOOD_EXPIRE``.
3. Failing again inside the window: a flap. Nothing is sent; it is counted.
4. When the window ends and the key is still failing, it is announced again
   with the flap count; if it recovered meanwhile, the count is kept for the
   next message about the key.
Restarts (an OOM kill, a crash) are events, not states: announced once,
closed at once without a recovery message, and repeats inside the window are
counted the same way, so a container OOM-killed every 30 s yields one message
per window, not one per kill.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubedingtalk.rules import Finding

EVENT_KINDS = frozenset({"restart"})
# Reasons the kubelet alternates between for one underlying failure.
_SAME_FAILURE = {"ErrImagePull": "ImagePullBackOff"}
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True, order=True)
class IncidentKey:
    namespace: str
    workload_kind: str
    workload_name: str
    kind: str
    reason: str

    @classmethod
    def of(cls, finding: Finding) -> IncidentKey:
        reason = _SAME_FAILURE.get(finding.reason, finding.reason)
        return cls(finding.namespace, finding.workload_kind, finding.workload_name, finding.kind, reason)


@dataclass(frozen=True, slots=True)
class Announcement:
    """Something the group should hear: an incident firing or resolved."""

    state: str  # firing | resolved
    key: IncidentKey
    finding: Finding  # the most telling finding (the latest seen)
    pods: tuple[str, ...]  # every pod affected in this episode, sorted
    started: float
    at: float
    flaps: int = 0

    @property
    def duration(self) -> float:
        return max(0.0, self.at - self.started)


@dataclass
class _Incident:
    key: IncidentKey
    finding: Finding
    failing: dict[str, Finding] = field(default_factory=dict)
    pods: set[str] = field(default_factory=set)
    started: float = 0.0
    open: bool = True
    announced: bool = False  # the current episode's firing message went out
    window_end: float | None = None  # end of the quiet window after the last announced recovery
    closed_at: float | None = None
    flaps: int = 0


@dataclass(frozen=True)
class LedgerSettings:
    flood_expire: float = 60.0  # seconds
    recovery_alert: bool = True
    retention: float = 86_400.0  # how long a closed incident's unreported flap count is kept


class Ledger:
    """Incident state for the whole cluster; bounded by the failures that are open or recent."""

    def __init__(self, settings: LedgerSettings | None = None) -> None:
        self.settings = settings or LedgerSettings()
        self._incidents: dict[IncidentKey, _Incident] = {}
        self._timers: list[tuple[float, IncidentKey]] = []
        self.version = 0  # bumped on every change, so a persister knows when to write

    def __len__(self) -> int:
        return len(self._incidents)

    @property
    def open_incidents(self) -> int:
        return sum(1 for inc in self._incidents.values() if inc.open)

    def update(self, key: IncidentKey, failing: Mapping[str, Finding], now: float) -> list[Announcement]:
        """The pods now failing for ``key`` (pod name -> finding); empty means every pod recovered."""
        self.version += 1
        inc = self._incidents.get(key)
        if failing:
            finding = list(failing.values())[-1]
            if inc is None:
                inc = self._incidents[key] = _Incident(key, finding, started=now)
                inc.failing, inc.pods = dict(failing), set(failing)
                return self._fire(inc, now)
            inc.failing, inc.finding = dict(failing), finding
            if not inc.open:
                return self._reopen(inc, now)
            inc.pods.update(failing)
            return []
        if inc is None or not inc.open:
            return []
        inc.failing = {}
        return self._close(inc, now)

    def event(self, finding: Finding, now: float) -> list[Announcement]:
        """A one-off failure (a restart): announced unless inside the key's quiet window."""
        key = IncidentKey.of(finding)
        out = self.update(key, {finding.pod: finding}, now)
        inc = self._incidents[key]
        inc.failing = {}
        inc.open = False
        inc.closed_at = now
        if out:  # announced: repeats are quiet until the window ends
            inc.window_end = now + self.settings.flood_expire
            self._schedule(inc.window_end, key)
        return out

    def due(self, now: float) -> list[Announcement]:
        """Quiet windows that have ended by ``now``: announce what is still failing, prune what is done."""
        out: list[Announcement] = []
        while self._timers and self._timers[0][0] <= now:
            _, key = heapq.heappop(self._timers)
            inc = self._incidents.get(key)
            if inc is None or (inc.window_end is not None and inc.window_end > now):
                continue  # pruned already, or a later timer stands for it
            self.version += 1
            if inc.open:
                if not inc.announced:
                    out.extend(self._fire(inc, now))
                continue
            if inc.flaps and inc.closed_at is not None and now - inc.closed_at < self.settings.retention:
                self._schedule(inc.closed_at + self.settings.retention, key)  # keep the count for a while
                continue
            del self._incidents[key]
        return out

    @property
    def next_due(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    # -- transitions ------------------------------------------------------------

    def _schedule(self, when: float, key: IncidentKey) -> None:
        heapq.heappush(self._timers, (when, key))

    def _announcement(self, state: str, inc: _Incident, now: float) -> Announcement:
        return Announcement(state, inc.key, inc.finding, tuple(sorted(inc.pods)), inc.started, now, inc.flaps)

    def _fire(self, inc: _Incident, now: float) -> list[Announcement]:
        inc.announced, inc.open = True, True
        inc.pods.update(inc.failing)
        message = self._announcement("firing", inc, now)
        inc.flaps = 0
        return [message]

    def _reopen(self, inc: _Incident, now: float) -> list[Announcement]:
        inc.open, inc.closed_at = True, None
        inc.started, inc.pods = now, set(inc.failing)
        if inc.window_end is not None and now < inc.window_end:
            inc.flaps += 1
            inc.announced = False
            return []
        return self._fire(inc, now)

    def _close(self, inc: _Incident, now: float) -> list[Announcement]:
        inc.open, inc.closed_at = False, now
        if not inc.announced:  # a quiet flap ending: its window is already set
            return []
        inc.window_end = now + self.settings.flood_expire
        self._schedule(inc.window_end, inc.key)
        if not self.settings.recovery_alert or inc.key.kind in EVENT_KINDS:
            return []
        return [self._announcement("resolved", inc, now)]

    # -- persistence ----------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """JSON-ready state: enough to resume without repeating or losing announcements."""
        return {"version": FORMAT_VERSION, "incidents": [_export(inc) for inc in self._incidents.values()]}

    @classmethod
    def restore(cls, data: Mapping[str, Any], settings: LedgerSettings | None = None) -> Ledger:
        """Rebuild from ``export``; raises ``ValueError`` on anything it does not recognise."""
        if not isinstance(data, Mapping) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a kube-dingtalk ledger state of a known version")
        ledger = cls(settings)
        incidents = data.get("incidents")
        if not isinstance(incidents, list):
            raise ValueError("incidents must be a list")
        for raw in incidents:
            inc = _import(raw)
            ledger._incidents[inc.key] = inc
            if inc.window_end is not None:
                ledger._schedule(inc.window_end, inc.key)
        return ledger

    def open_keys(self) -> list[IncidentKey]:
        return [key for key, inc in self._incidents.items() if inc.open]


_FINDING_FIELDS = tuple(Finding.__dataclass_fields__)


def _export(inc: _Incident) -> dict[str, Any]:
    finding = {name: getattr(inc.finding, name) for name in _FINDING_FIELDS}
    finding["at_mobiles"] = list(inc.finding.at_mobiles)
    return {"key": [inc.key.namespace, inc.key.workload_kind, inc.key.workload_name, inc.key.kind, inc.key.reason],
            "finding": finding, "failing": sorted(inc.failing), "pods": sorted(inc.pods), "started": inc.started,
            "open": inc.open, "announced": inc.announced, "window_end": inc.window_end,
            "closed_at": inc.closed_at, "flaps": inc.flaps}


def _import(raw: Any) -> _Incident:
    try:
        key = IncidentKey(*(str(part) for part in raw["key"]))
        fields = dict(raw["finding"])
        fields["at_mobiles"] = tuple(fields.get("at_mobiles") or ())
        finding = Finding(**{name: fields[name] for name in _FINDING_FIELDS if name in fields})
        inc = _Incident(key, finding, failing={p: finding for p in raw["failing"]}, pods=set(raw["pods"]),
                        started=float(raw["started"]), open=bool(raw["open"]), announced=bool(raw["announced"]),
                        window_end=None if raw["window_end"] is None else float(raw["window_end"]),
                        closed_at=None if raw["closed_at"] is None else float(raw["closed_at"]),
                        flaps=int(raw["flaps"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed incident: {err}") from None
    if len(raw["key"]) != 5:
        raise ValueError("malformed incident key")
    return inc
