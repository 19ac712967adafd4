"""The pod cache: the informers write slim records, the scanner reads what changed.

client-go calls this the store. Every write gets a sequence number, and the
cache remembers the last sequence per key (deletions included), ordered, so a
reader asks "what changed since N?" and pays for the changes, not the size.
Deletion marks are bounded: a reader that fell further behind than the marks
kept is told to re-read everything instead of being given a partial answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from kubedingtalk.records import PodRecord

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Changes:
    """Keys written since a reader's last sequence; ``complete`` False means: re-read everything."""

    seq: int
    keys: list[Key]
    complete: bool


class PodCache:
    """Thread-safe map of (namespace, name) to ``PodRecord``, with change tracking and sync flags."""

    def __init__(self, max_tombstones: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._changed_cond = threading.Condition(self._lock)
        self._pods: dict[Key, PodRecord] = {}
        self._order: dict[Key, int] = {}  # key -> seq of its last write, kept in seq order
        self._max_tombstones = max_tombstones
        self._floor = 0  # changes at or below this seq may have been forgotten
        self._seq = 0
        self._synced: set[str | None] = set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pods)

    @property
    def seq(self) -> int:
        with self._lock:
            return self._seq

    def get(self, key: Key) -> PodRecord | None:
        with self._lock:
            return self._pods.get(key)

    def list_keys(self) -> list[Key]:
        with self._lock:
            return list(self._pods)

    def _touch(self, key: Key) -> None:
        self._seq += 1
        self._order.pop(key, None)
        self._order[key] = self._seq

    def _prune(self) -> None:
        """Forget the oldest deletion marks, down to half the limit, once there are too many."""
        excess = len(self._order) - len(self._pods) - self._max_tombstones
        if excess <= 0:
            return
        excess += self._max_tombstones // 2
        doomed: list[Key] = []
        for key, seq in self._order.items():
            if key not in self._pods:
                doomed.append(key)
                self._floor = seq
                if len(doomed) >= excess:
                    break
        for key in doomed:
            del self._order[key]

    def upsert(self, record: PodRecord) -> None:
        with self._lock:
            key = record.key
            self._touch(key)
            self._pods[key] = record
            self._changed_cond.notify_all()

    def delete(self, key: Key) -> None:
        with self._lock:
            if self._pods.pop(key, None) is None:
                return
            self._touch(key)
            self._prune()
            self._changed_cond.notify_all()

    def replace(self, scope: str | None, records: Iterable[PodRecord]) -> int:
        """A fresh list for one informer's scope (a namespace, or None for all): swap it in at once.

        Pods in the scope that are missing from the list are deleted. Returns how many.
        """
        fresh = {r.key: r for r in records}
        with self._lock:
            gone = [k for k in self._pods if (scope is None or k[0] == scope) and k not in fresh]
            for key in gone:
                del self._pods[key]
                self._touch(key)
            for key, record in fresh.items():
                if self._pods.get(key) != record:
                    self._touch(key)
                    self._pods[key] = record
            self._synced.add(scope)
            self._prune()
            self._changed_cond.notify_all()
        return len(gone)

    def changes_since(self, seq: int) -> Changes:
        """Keys written after ``seq`` (oldest first); deleted keys are included and ``get`` returns None."""
        with self._lock:
            if seq < self._floor:
                return Changes(self._seq, list(self._pods), False)
            keys: list[Key] = []
            for key in reversed(self._order):
                if self._order[key] <= seq:
                    break
                keys.append(key)
            keys.reverse()
            return Changes(self._seq, keys, True)

    def wait_for_change(self, seq: int, timeout: float) -> bool:
        """Block until something is written after ``seq``, or ``timeout`` passes; True if it was."""
        with self._lock:
            return self._changed_cond.wait_for(lambda: self._seq > seq, timeout)

    def synced(self, namespace: str) -> bool:
        """Whether the informer covering ``namespace`` has completed its first list."""
        with self._lock:
            return None in self._synced or namespace in self._synced

    def synced_scopes(self) -> set[str | None]:
        with self._lock:
            return set(self._synced)
