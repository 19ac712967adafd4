"""The ledger's state in a ConfigMap, so a restart or a failover neither repeats nor loses announcements.

The leader writes, batched (at most once per ``interval``, and at shutdown),
with the resourceVersion it last saw; a conflict means someone else wrote, so
it re-reads and writes again. State that does not fit the ConfigMap limit is
pruned (recovered incidents first, then pod lists, then the oldest incidents)
rather than not written. Whatever goes wrong (no permission, a foreign or
corrupt object) is logged once and the service runs on with memory only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3

from kubedingtalk import log
from kubedingtalk.kube_client import KubeApiError, KubeClient
from kubedingtalk.ledger import Ledger, LedgerSettings
from kubedingtalk.worker import Worker

_log = log.get_logger("kubedingtalk.state")
DATA_KEY = "ledger.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kube-dingtalk"}
MAX_BYTES = 900_000  # the API server refuses ConfigMaps over 1 MiB; keep room for metadata
_TRANSPORT = (urllib3.exceptions.HTTPError, OSError)


class StateStore:
    """Reads and writes one ConfigMap; ``usable`` turns False for good on a permanent problem."""

    def __init__(self, client: KubeClient, namespace: str, name: str, max_bytes: int = MAX_BYTES) -> None:
        self.client, self.namespace, self.name, self.max_bytes = client, namespace, name, max_bytes
        self.usable = True
        self.writes = 0
        self._rv: str | None = None
        self._exists: bool | None = None
        self._last_problem: str | None = None
        self._path = f"/api/v1/namespaces/{namespace}/configmaps"

    def _give_up(self, why: str) -> None:
        if self.usable:
            _log.error("alert state will not be persisted; running with memory-only state", configmap=self.name,
                       namespace=self.namespace, reason=why)
        self.usable = False

    def load(self, settings: LedgerSettings | None = None) -> Ledger | None:
        """The persisted ledger, or None (absent, unreadable, foreign, corrupt: logged, never raised)."""
        if not self.usable:
            return None
        try:
            obj = self.client.request_json("GET", f"{self._path}/{self.name}")
        except KubeApiError as err:
            if err.status == 404:
                self._exists = False
                return None
            if err.status in (401, 403):
                self._give_up(f"cannot read it: {err.message}")
            else:
                _log.warning("cannot read the alert state; starting fresh", error=str(err))
            return None
        except _TRANSPORT as err:
            _log.warning("cannot read the alert state; starting fresh", error=str(err))
            return None
        self._exists = True
        self._rv = (obj.get("metadata") or {}).get("resourceVersion")
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in MANAGED_BY.items()):
            self._give_up("the ConfigMap exists but is not kube-dingtalk's (label "
                          "app.kubernetes.io/managed-by=kube-dingtalk missing); it is left untouched")
            return None
        raw = (obj.get("data") or {}).get(DATA_KEY)
        try:
            ledger = Ledger.restore(json.loads(raw if isinstance(raw, str) else "null"), settings)
        except (TypeError, ValueError) as err:
            _log.warning("ignoring unreadable alert state; starting fresh", configmap=self.name, error=str(err))
            return None
        _log.info("alert state loaded", configmap=self.name, incidents=len(ledger), open=ledger.open_incidents)
        return ledger

    def fit(self, state: dict[str, Any]) -> str | None:
        """The state as JSON within ``max_bytes``, pruned as needed; None if even the minimum does not fit."""
        text = json.dumps(state, separators=(",", ":"))
        if len(text.encode()) <= self.max_bytes:
            return text
        incidents = list(state.get("incidents", []))
        steps: list[Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = [
            lambda items: [i for i in items if i.get("open")],
            lambda items: [{**i, "pods": i["pods"][:10], "failing": i["failing"][:10]} for i in items],
            lambda items: sorted(items, key=lambda i: i.get("started", 0))[max(1, len(items) // 2):],
        ]
        for step in steps:
            while True:
                incidents = step(incidents)
                text = json.dumps({**state, "incidents": incidents}, separators=(",", ":"))
                if len(text.encode()) <= self.max_bytes:
                    _log.warning("alert state pruned to fit the ConfigMap", kept=len(incidents),
                                 dropped=len(state.get("incidents", [])) - len(incidents))
                    return text
                if step is not steps[-1] or not incidents:
                    break
        return None

    def save(self, state: dict[str, Any]) -> bool:
        if not self.usable:
            return False
        text = self.fit(state)
        if text is None:
            _log.error("alert state too large even when pruned; not written", limit_bytes=self.max_bytes)
            return False
        for _attempt in range(2):
            try:
                self._write(text)
                self.writes += 1
                self._last_problem = None
                return True
            except KubeApiError as err:
                if err.status == 409:
                    _log.warning("alert state changed under us; re-reading before writing again")
                    self._refresh()
                    continue
                if err.status in (401, 403):
                    self._give_up(f"cannot write it: {err.message}")
                else:
                    self._retry_later(str(err))
                return False
            except _TRANSPORT as err:
                self._retry_later(str(err))
                return False
        return False

    def _retry_later(self, problem: str) -> None:
        """A transient failure: said once, retried at the next flush."""
        if problem != self._last_problem:
            _log.warning("cannot write the alert state; will try again", error=problem)
            self._last_problem = problem

    def _refresh(self) -> None:
        try:
            obj = self.client.request_json("GET", f"{self._path}/{self.name}")
            self._rv, self._exists = obj["metadata"]["resourceVersion"], True
        except KubeApiError as err:
            if err.status == 404:
                self._rv, self._exists = None, False
        except (*_TRANSPORT, KeyError, TypeError):
            self._exists = None

    def _write(self, text: str) -> None:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": self.name, "namespace": self.namespace,
                                             "labels": dict(MANAGED_BY)},
                                "data": {DATA_KEY: text}}
        if self._exists is None:
            self._refresh()
        if self._exists:
            if self._rv:
                body["metadata"]["resourceVersion"] = self._rv
            obj = self.client.request_json("PUT", f"{self._path}/{self.name}", body=body)
        else:
            obj = self.client.request_json("POST", self._path, body=body)
        self._rv, self._exists = obj["metadata"]["resourceVersion"], True


class StatePersister(Worker):
    """Writes the scanner's latest ledger snapshot at most once per ``interval``, and once more at stop."""

    def __init__(self, store: StateStore, may_write: Callable[[], bool] = lambda: True,
                 interval: float = 3.0) -> None:
        super().__init__("state")
        self.store, self.may_write, self.interval = store, may_write, interval
        self._latest: dict[str, Any] | None = None
        self._version = 0
        self._written = 0
        self._lock = threading.Lock()

    def offer(self, state: dict[str, Any]) -> None:
        """Called by the scanner after a pass that changed the ledger (cheap: just keeps it)."""
        with self._lock:
            self._latest = state
            self._version += 1

    def flush(self) -> bool:
        with self._lock:
            state, version = self._latest, self._version
        if state is None or version == self._written or not self.may_write():
            return False
        saved = self.store.save({**state, "saved_at": time.time()})
        if saved:
            self._written = version
        return saved

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
        self.flush()
