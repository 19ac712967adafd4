"""The scanner: turns cache changes and due timers into announcements on the sender's queue.

A pass reads only what changed since the last pass (the cache's change
feed), plus pods whose "not ready for long enough" timer fell due, plus the
ledger's quiet windows that ended. So a pass over 100k idle pods costs
nothing, and a pod turning to ErrImagePull is announced within about a
second: the thread wakes on cache changes, coalesced to one pass per
``min_interval``, and on every tick and timer otherwise.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubedingtalk import log
from kubedingtalk.cache import Key, PodCache
from kubedingtalk.ledger import EVENT_KINDS, Announcement, IncidentKey, Ledger
from kubedingtalk.records import PodRecord
from kubedingtalk.rules import Finding, RuleSettings, evaluate, next_due
from kubedingtalk.worker import Worker

_log = log.get_logger("kubedingtalk.scanner")


@dataclass(frozen=True)
class ScannerSettings:
    tick: float = 15.0  # seconds (TICK_RATE)
    min_interval: float = 1.0  # at most one change-driven pass per this many seconds
    rules: RuleSettings = field(default_factory=RuleSettings)


class Scanner(Worker):
    """Evaluates the cache into the ledger; one ``scan`` per pass, run by its own thread."""

    def __init__(self, cache: PodCache, ledger: Ledger, out: queue.Queue[Announcement],
                 settings: ScannerSettings | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__("scanner")
        self.cache, self.ledger, self.out = cache, ledger, out
        self.settings = settings or ScannerSettings()
        self.clock = clock
        self.passes = 0
        self._born = clock()
        self.evaluated = 0  # pods evaluated, all passes: proportional to changes, not to the cache
        self._last_pass: float | None = None
        self._seq = 0
        self._seen: dict[Key, PodRecord] = {}
        self._pod_incidents: dict[Key, dict[IncidentKey, Finding]] = {}
        self._failing: dict[IncidentKey, dict[str, Finding]] = {}
        self._timers: list[tuple[float, Key]] = []
        self._pending: set[Key] = set()  # changed while their namespace was not synced yet
        # Leadership and persisted state (issues of more than one replica, or of a restart):
        self.may_announce: Callable[[], bool] = lambda: True  # the leader gate; standbys evaluate but stay quiet
        self.term: Callable[[], int] = lambda: 0  # bumps each time this replica becomes leader
        self.load_state: Callable[[], Ledger | None] | None = None  # the persisted ledger, read on taking over
        self.on_snapshot: Callable[[dict[str, Any]], None] | None = None  # the ledger's state after a change
        self.standby_skipped = 0
        self._adopted_term: int | None = None
        self._unreconciled: set[IncidentKey] = set()
        self._snapshot_version = -1
        self._woken = threading.Event()

    # -- the pure-ish pass -------------------------------------------------------

    def scan(self) -> list[Announcement]:
        """One pass at the clock's current time; the announcements are also put on the queue."""
        now = self.clock()
        leading = self.may_announce()
        if leading and self.load_state is not None and self._adopted_term != (term := self.term()):
            self._adopt(self.load_state())
            self._adopted_term = term
        changes = self.cache.changes_since(self._seq)
        self._seq = changes.seq
        keys: set[Key] = set(changes.keys) | self._pending
        if not changes.complete:
            keys |= set(self._seen)
        while self._timers and self._timers[0][0] <= now:
            keys.add(heapq.heappop(self._timers)[1])
        self._pending = set()
        touched: set[IncidentKey] = set()
        out: list[Announcement] = []
        for key in keys:
            if not self.cache.synced(key[0]):
                self._pending.add(key)
                continue
            out.extend(self._evaluate(key, now, touched))
        for ikey in [k for k in self._unreconciled if self.cache.synced(k.namespace)]:
            self._unreconciled.discard(ikey)
            touched.add(ikey)
        for ikey in sorted(touched):
            out.extend(self.ledger.update(ikey, self._failing.get(ikey, {}), now))
        out.extend(self.ledger.due(now))
        if leading and (self.load_state is None or self._adopted_term == self.term()):
            for announcement in out:
                self.out.put(announcement)
            if self.on_snapshot is not None and self.ledger.version != self._snapshot_version:
                self._snapshot_version = self.ledger.version
                self.on_snapshot(self.ledger.export())
        else:
            self.standby_skipped += len(out)
        self.passes += 1
        self._last_pass = time.monotonic()
        return out

    @property
    def failing_pods(self) -> int:
        return len(self._pod_incidents)

    def seconds_since_pass(self) -> float | None:
        """For liveness: a scanner that stops completing passes is wedged."""
        return None if self._last_pass is None else time.monotonic() - self._last_pass

    def _adopt(self, restored: Ledger | None) -> None:
        """Take over the persisted ledger, then check each of its incidents against the cache.

        Restored incidents still failing stay quiet (already announced); those whose pods
        recovered or vanished meanwhile get their recovery; failures the state does not know
        are announced. Without a readable state, this replica's own ledger carries on.
        """
        if restored is not None:
            self.ledger = restored
            self._snapshot_version = -1
        self._unreconciled = set(self.ledger.open_keys()) | set(self._failing)

    def _evaluate(self, key: Key, now: float, touched: set[IncidentKey]) -> list[Announcement]:
        self.evaluated += 1
        record = self.cache.get(key)
        previous = self._seen.get(key)
        if previous is not None and record is not None and previous.uid != record.uid:
            previous = None  # same name, new pod (a StatefulSet replica re-created)
        if previous is None and record is not None and record.created is not None and record.created < self._born:
            # A pod older than this process: its past restarts are history (perhaps already announced
            # by an earlier run), not news. Restarts count from here on.
            previous = record
        findings: list[Finding] = []
        events: list[Announcement] = []
        if record is None:
            self._seen.pop(key, None)
        else:
            self._seen[key] = record
            for finding in evaluate(record, now, self.settings.rules, previous):
                if finding.kind in EVENT_KINDS:
                    events.extend(self.ledger.event(finding, now))
                else:
                    findings.append(finding)
            due = next_due(record, now, self.settings.rules)
            if due is not None:
                heapq.heappush(self._timers, (due, key))
        current = {IncidentKey.of(f): f for f in findings}
        before = self._pod_incidents.pop(key, {})
        if current:
            self._pod_incidents[key] = current
        for ikey in before.keys() | current.keys():
            if before.get(ikey) == current.get(ikey):
                continue
            pods = self._failing.setdefault(ikey, {})
            if ikey in current:
                pods[key[1]] = current[ikey]
            else:
                pods.pop(key[1], None)
            if not pods:
                del self._failing[ikey]
            touched.add(ikey)
        return events

    @property
    def caught_up(self) -> bool:
        """Whether every cache change so far has been evaluated (tests and the demo wait on it)."""
        return self._seq >= self.cache.seq and not self._pending

    def wake(self) -> None:
        """Run a pass soon (leadership changed): do not wait for the next tick."""
        self._woken.set()

    def _next_wake(self, now: float) -> float:
        candidates: Iterable[float] = (t for t in (self._timers[0][0] if self._timers else None,
                                                    self.ledger.next_due) if t is not None)
        return min([now + self.settings.tick, *candidates])

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:
                _log.exception("scan failed; trying again next pass")
            last = time.monotonic()
            wake_at = last + max(0.0, self._next_wake(self.clock()) - self.clock())
            # Sleep until the next tick or timer, waking early on a change, but not before min_interval.
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= wake_at or self._woken.is_set():
                    self._woken.clear()
                    break
                if self.cache.wait_for_change(self._seq, min(wake_at - now, 0.2)):
                    self._stop.wait(max(0.0, last + self.settings.min_interval - time.monotonic()))
                    break
