"""Informers: keep the pod cache current by list + watch, the client-go reflector's way.

One thread per namespace (or one for the whole cluster). It lists once, then
watches from the list's resourceVersion and follows every event, bookmarks
included, so a dropped stream resumes where it stopped without re-listing.
Only a 410 Gone (history compacted) costs a re-list. Failures back off with
jitter; permissions failures are logged once per change and retried slowly,
so one forbidden namespace neither spins nor stops the others.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import urllib3

from kubedingtalk import log
from kubedingtalk.cache import PodCache
from kubedingtalk.kube_client import KubeApiError, KubeClient
from kubedingtalk.records import MalformedPod, PodRecord, from_pod
from kubedingtalk.wire import MalformedEvent, decode_event
from kubedingtalk.worker import Worker

_log = log.get_logger("kubedingtalk.informer")
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError, ValueError)


class _Expired(Exception):
    """The resourceVersion is too old (410 Gone): only a fresh list can continue."""


@dataclass
class Backoff:
    """Jittered exponential backoff (client-go: 0.8 s doubling to 30 s, reset after 2 min of health)."""

    initial: float = 0.8
    cap: float = 30.0
    reset_after: float = 120.0
    jitter: float = 0.5
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random
    _attempt: int = 0
    _last_failure: float | None = None

    def next_delay(self) -> float:
        now = self.clock()
        if self._last_failure is not None and now - self._last_failure > self.reset_after:
            self._attempt = 0
        self._last_failure = now
        delay = min(self.cap, self.initial * 2 ** self._attempt)
        self._attempt += 1
        return float(min(self.cap, delay * (1 + self.jitter * self.rand())))


@dataclass(frozen=True)
class InformerOptions:
    """Tunables; defaults are client-go's. Tests shorten the clocks."""

    page_size: int = 500
    watch_timeout: tuple[int, int] = (300, 600)
    inactivity: float = 70.0
    forbidden_retry: float = 30.0
    label_selector: str = ""
    exclude: frozenset[str] = frozenset()
    backoff: Callable[[], Backoff] = Backoff


@dataclass
class InformerHealth:
    """What readiness checks and metrics need to know about one informer."""

    scope: str | None
    synced: bool = False
    last_event: float | None = None
    watch_restarts: dict[str, int] = field(default_factory=dict)
    relists: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    failing: str | None = None


class Informer(Worker):
    """Lists and watches pods in one scope (a namespace, or None for all) into a ``PodCache``."""

    def __init__(self, client: KubeClient, cache: PodCache, namespace: str | None,
                 options: InformerOptions | None = None, resource_version: str | None = None) -> None:
        """``resource_version`` resumes a watch from a known point without listing first."""
        super().__init__(f"informer/{namespace or '*'}")
        self.client, self.cache, self.namespace = client, cache, namespace
        self.options = options or InformerOptions()
        self.health = InformerHealth(namespace)
        self._rv: str | None = resource_version
        self._resp: urllib3.BaseHTTPResponse | None = None
        self._resp_lock = threading.Lock()
        self._log = _log.bind(informer=self.name)
        self._last_failure: tuple[int, str] | None = None

    def stop(self) -> None:
        """Ask the thread to end, cutting a blocked watch so it ends within about a second."""
        self._stop.set()
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            _cut(resp)

    # -- the loop -------------------------------------------------------------

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods" if self.namespace else "/api/v1/pods"

    def _selectors(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self.options.label_selector:
            query["labelSelector"] = self.options.label_selector
        if self.namespace is None and self.options.exclude:
            query["fieldSelector"] = ",".join(f"metadata.namespace!={ns}" for ns in sorted(self.options.exclude))
        return query

    def _count(self, counter: dict[str, int], cause: str) -> None:
        counter[cause] = counter.get(cause, 0) + 1

    def _run(self) -> None:
        backoff = self.options.backoff()
        while not self._stop.is_set():
            try:
                if self._rv is None:
                    self._list()
                self._watch()
                continue
            except _Expired:
                self._log.info("resource version expired, re-listing", resource_version=self._rv)
                self._rv = None
                self._count(self.health.relists, "expired")
                continue
            except KubeApiError as err:
                if self._stop.is_set():
                    break
                delay = self._api_error(err, backoff)
            except TRANSPORT_ERRORS as err:
                if self._stop.is_set():
                    break
                delay = backoff.next_delay()
                self._failed(0, f"{type(err).__name__}: {err}", delay)
            self._count(self.health.watch_restarts, "error")
            self._stop.wait(delay)
        self._log.debug("informer stopped")

    def _api_error(self, err: KubeApiError, backoff: Backoff) -> float:
        if err.status == 410:
            self._rv = None
            self._count(self.health.relists, "expired")
            return 0.0
        if err.status in (401, 403):
            delay = max(self.options.forbidden_retry, backoff.next_delay())
        else:
            delay = backoff.next_delay()
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
        self._failed(err.status, err.message, delay)
        return delay

    def _failed(self, status: int, message: str, delay: float) -> None:
        """Log a failure once per change of (status, message), so a lasting 403 does not flood the logs."""
        state = (status, message)
        self.health.failing = f"{status or 'transport'}: {message}"
        if state != self._last_failure:
            verb = "list" if self._rv is None else "watch"
            level = self._log.error if status in (401, 403) else self._log.warning
            level("cannot read pods", namespace=self.namespace or "(all)", verb=verb, status=status or None,
                  error=message, retry_in_s=round(delay, 2))
            self._last_failure = state
        else:
            self._log.debug("still failing", status=status or None, retry_in_s=round(delay, 2))

    def _recovered(self) -> None:
        if self._last_failure is not None:
            self._log.info("reading pods again", namespace=self.namespace or "(all)")
            self._last_failure = None
        self.health.failing = None

    def _record(self, obj: object) -> PodRecord | None:
        try:
            record = from_pod(obj)
        except MalformedPod as err:
            self.health.skipped += 1
            self._log.warning("skipping malformed pod", error=str(err))
            return None
        if record.namespace in self.options.exclude:
            return None
        return record

    def _list(self) -> None:
        """Paginated list; an expired continue token restarts the list (not an error)."""
        records: list[PodRecord] = []
        token = ""
        while True:
            query = {"limit": str(self.options.page_size), **self._selectors()}
            if token:
                query["continue"] = token
            try:
                page = self.client.request_json("GET", self._path, query)
            except KubeApiError as err:
                if err.status == 410 and token:
                    self._log.info("list continue token expired, restarting the list")
                    records, token = [], ""
                    continue
                raise
            if self._stop.is_set():
                return
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ValueError("the list answer is not a PodList")
            records.extend(r for r in map(self._record, page["items"]) if r is not None)
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                break
        rv = str(meta.get("resourceVersion") or "")
        if not rv:
            raise ValueError("the list answer has no resourceVersion")
        self._recovered()
        gone = self.cache.replace(self.namespace, records)
        first = not self.health.synced
        self._rv = rv
        self.health.synced = True
        self.health.last_event = time.monotonic()
        if first:
            self._count(self.health.relists, "initial")  # later lists are counted by their cause
        self._log.info("listed pods", pods=len(records), vanished=gone, resource_version=rv)

    def _watch(self) -> None:
        """One watch request, followed until the server ends it, it drops, or it goes quiet too long."""
        low, high = self.options.watch_timeout
        query = {"watch": "1", "resourceVersion": self._rv or "", "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(random.randint(low, high)), **self._selectors()}
        resp = self.client.request("GET", self._path, query, read_timeout=self.options.inactivity)
        self._recovered()
        with self._resp_lock:
            self._resp = resp
        if self._stop.is_set():
            _cut(resp)
        progressed = False
        try:
            for line in _lines(resp):
                self._event(line)
                progressed = True
            if not self._stop.is_set():
                self._count(self.health.watch_restarts, "timeout")
        except urllib3.exceptions.ReadTimeoutError:
            self._log.warning("watch silent too long, resuming", silent_s=self.options.inactivity)
            self._count(self.health.watch_restarts, "inactive")
        except (urllib3.exceptions.ProtocolError, OSError) as err:
            if self._stop.is_set():
                return
            if not progressed:
                raise  # dropped before anything arrived: back off rather than spin
            self._log.info("watch connection dropped, resuming", error=str(err), resource_version=self._rv)
            self._count(self.health.watch_restarts, "dropped")
        finally:
            with self._resp_lock:
                self._resp = None
            resp.release_conn()

    def _event(self, line: bytes) -> None:
        try:
            kind, obj = decode_event(line)
        except MalformedEvent as err:
            self.health.skipped += 1
            self._log.warning("skipping malformed watch event", error=str(err), size=len(line))
            return
        health = self.health
        health.last_event = time.monotonic()
        health.events[kind] = health.events.get(kind, 0) + 1
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise _Expired()
            raise KubeApiError.from_status(code if isinstance(code, int) else 500, obj)
        meta = obj.get("metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if kind in ("ADDED", "MODIFIED"):
            record = self._record(obj)
            if record is not None:
                self.cache.upsert(record)
        elif kind == "DELETED":
            record = self._record(obj)
            if record is not None:
                self.cache.delete(record.key)
        elif kind != "BOOKMARK":
            self.health.skipped += 1
            self._log.warning("skipping watch event of unknown type", type=kind)
        if isinstance(rv, str) and rv:
            self._rv = rv


def _cut(resp: urllib3.BaseHTTPResponse) -> None:
    """Unblock a thread reading ``resp``; harmless when the response has just ended on its own."""
    with contextlib.suppress(ValueError, RuntimeError, OSError):
        resp.shutdown()


def _lines(resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Newline-delimited JSON out of a chunked stream, each line as soon as its last byte arrives."""
    pending = b""
    for chunk in resp.stream(65536, decode_content=True):
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def informers(client: KubeClient, cache: PodCache, namespaces: tuple[str, ...],
              options: InformerOptions) -> list[Informer]:
    """One informer per configured namespace, or one for the whole cluster when none is configured."""
    if namespaces:
        return [Informer(client, cache, ns, options) for ns in namespaces]
    return [Informer(client, cache, None, options)]
