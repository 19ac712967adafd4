"""Leader election on a coordination.k8s.io/v1 Lease, client-go's way, so only one replica sends.

Every replica keeps its informers warm; only the holder of the Lease may send.
The rules that keep two replicas from ever sending at once:
- A holder counts itself leader only until ``renew_deadline`` after its last
  successful renew, which is shorter than ``lease_duration``.
- A candidate takes the Lease only when it has seen no change to it for a full
  ``lease_duration`` of its own clock (never comparing clocks across machines).
- Every write carries the resourceVersion it read: of two racing candidates,
  one gets 409 Conflict.
On a clean stop the holder releases the Lease so a standby takes over at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3

from kubedingtalk import log
from kubedingtalk.kube_client import KubeApiError, KubeClient
from kubedingtalk.worker import Worker

_log = log.get_logger("kubedingtalk.leader")


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str = "kube-dingtalk"
    identity: str = "kube-dingtalk"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _micro_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector(Worker):
    """Tries to acquire and renew the Lease every ``retry_period``; ``is_leader`` gates the sender."""

    def __init__(self, client: KubeClient, settings: LeaseSettings, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        super().__init__("leader-elector")
        self.client, self.settings, self.clock, self.wall = client, settings, clock, wall
        self.transitions = 0
        self._renewed_at: float | None = None  # our clock, last successful acquire/renew
        self._observed: tuple[Any, ...] | None = None  # the lease record we last saw
        self._observed_at = 0.0
        self._was_leader = False
        self._last_problem: str | None = None
        self.on_change: Callable[[bool], None] = lambda leading: None
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{settings.namespace}/leases"

    def is_leader(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self.clock() - renewed < self.settings.renew_deadline

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_acquire_or_renew()
            self._report()
            self._stop.wait(self.settings.retry_period)
        self._release()

    def _report(self) -> None:
        leader = self.is_leader()
        if leader != self._was_leader:
            if leader:
                _log.info("became the leader: this replica sends", identity=self.settings.identity,
                          lease=self.settings.name)
            else:
                _log.warning("no longer the leader: sending stopped", identity=self.settings.identity)
            self._was_leader = leader
            self.on_change(leader)

    # -- one attempt ------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One round; True when this replica holds the Lease afterwards."""
        s = self.settings
        started = self.clock()
        try:
            lease = self.client.request_json("GET", f"{self._path}/{s.name}")
        except KubeApiError as err:
            if err.status != 404:
                return self._failed(err)
            return self._write("POST", self._path, self._lease(None, 0, None), started)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            return self._failed(err)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"), spec.get("acquireTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, started
        transitions = int(spec.get("leaseTransitions") or 0)
        rv = (lease.get("metadata") or {}).get("resourceVersion")
        if holder == s.identity:
            return self._write("PUT", f"{self._path}/{s.name}", self._lease(rv, transitions, spec.get("acquireTime")),
                               started)
        duration = float(spec.get("leaseDurationSeconds") or s.lease_duration)
        if holder and started - self._observed_at < duration:
            self._renewed_at = None
            return False  # someone else holds a lease that has not expired by our clock
        return self._write("PUT", f"{self._path}/{s.name}", self._lease(rv, transitions + 1, None), started)

    def _lease(self, rv: str | None, transitions: int, acquired: str | None) -> dict[str, Any]:
        s, now = self.settings, _micro_time(self.wall())
        meta: dict[str, Any] = {"name": s.name, "namespace": s.namespace}
        if rv:
            meta["resourceVersion"] = rv
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": s.identity, "leaseDurationSeconds": math.ceil(s.lease_duration),
                         "acquireTime": acquired or now, "renewTime": now, "leaseTransitions": transitions}}

    def _write(self, method: str, path: str, body: dict[str, Any], started: float) -> bool:
        try:
            self.client.request_json(method, path, body=body)
        except KubeApiError as err:
            return self._failed(err)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            return self._failed(err)
        if self._last_problem is not None:
            _log.info("leader election works again", lease=self.settings.name)
            self._last_problem = None
        if self._renewed_at is None:
            self.transitions += 1
        self._renewed_at = started  # counted from before the request: never overestimate the lease we hold
        return True

    def _failed(self, err: Exception) -> bool:
        """Log a failure once per change of cause (a lasting 403 must be visible, not a flood)."""
        problem = str(err)
        if problem != self._last_problem:
            level = _log.error if isinstance(err, KubeApiError) and err.status in (401, 403) else _log.warning
            level("cannot take part in leader election", lease=self.settings.name,
                  namespace=self.settings.namespace, error=problem)
            self._last_problem = problem
        return self.is_leader()  # keep leading until the renew deadline, not a moment longer

    def _release(self) -> None:
        """Hand the Lease over on a clean stop, so a standby need not wait for it to expire."""
        if not self.is_leader():
            return
        s = self.settings
        try:
            lease = self.client.request_json("GET", f"{self._path}/{s.name}")
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != s.identity:
                return
            spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _micro_time(self.wall())})
            self.client.request_json("PUT", f"{self._path}/{s.name}", body=lease)
            _log.info("released the lease", lease=s.name)
        except (KubeApiError, urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            _log.warning("could not release the lease; a standby takes over when it expires", error=str(err))
        finally:
            self._renewed_at = None
