"""A Kubernetes API server emulator on loopback, for tests, the demo and benchmarks.

It speaks the real protocol over real HTTP (list with pagination and
selectors, chunked watch streams with bookmarks and 410 Gone, bearer-token
auth with 403 Status bodies, optional TLS) so that the official Python client
and ``kubectl`` work against it unchanged. Faults are plain method calls, so a
test can drop, stall, expire or throttle the stream it is watching.

Run alone::

    python -m kubedingtalk.testing.kube_api --kubeconfig /tmp/k.yaml [--port N] [--seed FILE]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from kubedingtalk.testing.kube_store import (
    NAMESPACES,
    PODS,
    RESOURCES,
    ApiError,
    Event,
    Obj,
    Resource,
    Store,
    expired,
)
from kubedingtalk.testing.loopback import run_until_interrupted, serve, shutdown
from kubedingtalk.testing.selectors import SelectorError, field_matcher, label_matcher

VERSION_INFO = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kube-dingtalk-emulator",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22.0", "compiler": "gc",
                "platform": "linux/amd64"}
VERBS_BY_NAME = ("get", "update", "patch", "delete")
ALL_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})


@dataclass(frozen=True)
class Grant:
    """What a bearer token may do: which verbs, in which namespaces (None: all, cluster scope too)."""

    user: str = "admin"
    namespaces: frozenset[str] | None = None
    verbs: frozenset[str] = ALL_VERBS

    def allows(self, verb: str, namespace: str | None) -> bool:
        if verb not in self.verbs:
            return False
        return self.namespaces is None or (namespace is not None and namespace in self.namespaces)


@dataclass
class _Faults:
    fail_count: int = 0
    fail_status: int = 500
    retry_after: int | None = None
    expire_lists: int = 0
    expire_continues: int = 0
    expire_watches: int = 0
    latency: float = 0.0
    stalled: bool = False
    expire_generation: int = 0


class _CountingWriter:
    def __init__(self, raw: Any, server: KubeApiServer) -> None:
        self._raw, self._server = raw, server

    def write(self, data: bytes) -> int:
        self._server._count_bytes(len(data))
        written: int = self._raw.write(data)
        return written

    def flush(self) -> None:
        self._raw.flush()

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def close(self) -> None:
        self._raw.close()


class _Aborted(Exception):
    """The connection is being cut (a fault, or the server stopping)."""


class KubeApiServer:
    """An in-process API server. ``start()`` it, point a client at ``url`` or ``write_kubeconfig``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, tokens: Mapping[str, Grant] | None = None,
                 anonymous: bool = False, tls: bool = False, bookmark_interval: float = 60.0,
                 history_limit: int = 100_000, namespaces: Iterable[str] = ("default", "kube-system")) -> None:
        self.host, self.port = host, port
        self.tokens = dict(tokens) if tokens is not None else {"emulator-admin-token": Grant()}
        self.anonymous = anonymous
        self.bookmark_interval = bookmark_interval
        self.store = Store(history_limit)
        self.requests: Counter[tuple[str, str]] = Counter()
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._connections: set[socket.socket] = set()
        self._watch_connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ssl: ssl.SSLContext | None = None
        self.ca_pem: bytes | None = None
        if tls:
            self._setup_tls()
        for ns in namespaces:
            self.store.create(NAMESPACES, "", {"metadata": {"name": ns}})

    # -- lifecycle --------------------------------------------------------

    def _setup_tls(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._ssl, self.ca_pem = ctx, ca.cert_pem.bytes()

    @property
    def scheme(self) -> str:
        return "https" if self._ssl else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> KubeApiServer:
        self._httpd, self._thread = serve(_ApiHandler, self.host, self.port, "kube-api-emulator",
                                          context=self._ssl, api=self)
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, as a crashed apiserver would."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        assert self._thread is not None
        shutdown(httpd, self._thread)
        self._cut(self._connections)

    def restart(self) -> None:
        """Stop, then serve again on the same port with the same objects and history."""
        self.stop()
        deadline = time.monotonic() + 5
        while True:
            try:
                self.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: str | Path, token: str | None = None, namespace: str = "default") -> Path:
        """A kubeconfig that ``load_kube_config`` and ``kubectl --kubeconfig`` use unchanged."""
        if token is None:
            token = next(t for t, g in self.tokens.items() if g.namespaces is None) if self.tokens else ""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        user: dict[str, Any] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "emulator", "cluster": cluster}],
            "users": [{"name": "emulator", "user": user}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator",
                                                          "namespace": namespace}}],
            "current-context": "emulator",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    # -- objects, as the kubelet and controllers would write them ----------

    def create(self, obj: Mapping[str, Any]) -> Obj:
        res, ns = self._resource_of(obj)
        if res.namespaced:
            self.ensure_namespace(ns)
        return self.store.create(res, ns, obj)

    def apply(self, obj: Mapping[str, Any]) -> Obj:
        """Create, or replace the whole object (status included) whatever its resourceVersion."""
        res, ns = self._resource_of(obj)
        name = obj["metadata"]["name"]
        body = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}
        try:
            self.store.get(res, ns, name)
        except ApiError:
            return self.create(body)
        return self.store.update(res, ns, name, body, force=True)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        res = _resource_by_kind(kind)
        return self.store.delete(res, namespace, name)

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        res = _resource_by_kind(kind)
        obj: Obj = json.loads(json.dumps(self.store.get(res, namespace if res.namespaced else "", name)))
        return obj

    def ensure_namespace(self, name: str) -> None:
        try:
            self.store.get(NAMESPACES, "", name)
        except ApiError:
            self.store.create(NAMESPACES, "", {"metadata": {"name": name}})

    def _resource_of(self, obj: Mapping[str, Any]) -> tuple[Resource, str]:
        res = _resource_by_kind(obj.get("kind", "Pod"))
        ns = (obj.get("metadata") or {}).get("namespace") or "default"
        return res, ns if res.namespaced else ""

    # -- faults -------------------------------------------------------------

    def close_watches(self) -> None:
        """Cut every open watch connection without a final chunk (a dropped connection)."""
        with self._lock:
            cut = set(self._watch_connections)
            self._watch_connections.clear()
        self._cut(cut)

    def stall_watches(self, stalled: bool = True) -> None:
        """Keep watch connections open but send nothing (no events, no bookmarks) while stalled."""
        with self._lock:
            self._faults.stalled = stalled
        self.store.wake_all()

    def expire_next(self, list_count: int = 0, watch_count: int = 0, continue_count: int = 0) -> None:
        """Answer the next lists and/or watches with HTTP 410 Gone.

        ``continue_count`` expires only list requests that carry a ``continue`` token: the
        continuation of a long paginated list, after its first page succeeded.
        """
        with self._lock:
            self._faults.expire_lists += list_count
            self._faults.expire_watches += watch_count
            self._faults.expire_continues += continue_count

    def expire_watches(self) -> None:
        """Send an ERROR event with a 410 Status into every open watch, then end it."""
        with self._lock:
            self._faults.expire_generation += 1
        self.store.wake_all()

    def compact(self) -> None:
        """Drop the event history: every resourceVersion before now is too old to watch from."""
        self.store.compact()

    def fail_next(self, count: int, status: int = 500, retry_after: int | None = None) -> None:
        """Answer the next ``count`` resource requests with ``status`` (429 carries Retry-After)."""
        with self._lock:
            self._faults.fail_count, self._faults.fail_status = count, status
            self._faults.retry_after = retry_after

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._faults.latency = seconds

    # -- counters -------------------------------------------------------------

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watch_connections)

    def request_count(self, verb: str, resource: str = "pods") -> int:
        with self._lock:
            return self.requests[(verb, resource)]

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent = 0

    def _count_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def _cut(self, conns: set[socket.socket]) -> None:
        with self._lock:
            targets = list(conns)
        for conn in targets:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.store.wake_all()

    def _take_fault(self, verb: str, continued: bool = False) -> ApiError | None:
        with self._lock:
            f = self._faults
            if f.fail_count > 0:
                f.fail_count -= 1
                reason = "TooManyRequests" if f.fail_status == 429 else "InternalError"
                err = ApiError(f.fail_status, reason, "the server has received too many requests and has asked "
                               "us to try again later" if f.fail_status == 429 else "an error on the server "
                               "(\"injected fault\") has prevented the request from succeeding")
                if f.retry_after is not None:
                    err.details["retryAfterSeconds"] = f.retry_after
                return err
            if verb == "list" and continued and f.expire_continues > 0:
                f.expire_continues -= 1
                return expired("The provided continue parameter is too old to display a consistent list result.")
            if verb == "list" and f.expire_lists > 0:
                f.expire_lists -= 1
                return expired("The provided continue parameter is too old to display a consistent list result.")
            if verb == "watch" and f.expire_watches > 0:
                f.expire_watches -= 1
                return expired("too old resource version: 1 (2)")
        return None


def _resource_by_kind(kind: str) -> Resource:
    for res in RESOURCES:
        if kind in (res.kind, res.plural):
            return res
    raise ValueError(f"the emulator does not serve {kind!r}")


def _resource_by_path(group: str, version: str, plural: str) -> Resource | None:
    for res in RESOURCES:
        if (res.group, res.version, res.plural) == (group, version, plural):
            return res
    return None


def _api_resource_list(group_version: str, resources: Iterable[Resource]) -> Obj:
    entries = []
    for res in resources:
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        entries.append({"name": res.plural, "singularName": res.kind.lower(), "namespaced": res.namespaced,
                        "kind": res.kind, "verbs": verbs, "shortNames": list(res.short_names)})
        for sub in res.subresources:
            entries.append({"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced,
                            "kind": res.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def _openapi_v3(group_version: str) -> Obj | None:
    """Just enough OpenAPI v3 for kubectl to see that the server validates fields itself.

    kubectl then sends ``fieldValidation=Strict`` instead of downloading schemas
    to validate on the client side.
    """
    prefix = group_version.split("/", 1)[-1] if group_version.startswith("apis/") else ""
    group, _, version = prefix.rpartition("/") if prefix else ("", "", group_version.removeprefix("api/"))
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    param = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
    paths = {}
    for res in served:
        scope = "/namespaces/{namespace}" if res.namespaced else ""
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": param,
              "responses": {"200": {"description": "OK"}}}
        paths[f"/{group_version}{scope}/{res.plural}"] = {"post": op}
        paths[f"/{group_version}{scope}/{res.plural}/{{name}}"] = {"patch": op, "put": op}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def pod_status_text(pod: Mapping[str, Any]) -> str:
    """What kubectl shows in the STATUS column."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    if status.get("reason"):
        return str(status["reason"])
    text = status.get("phase") or "Unknown"
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason and reason != "Completed":
            text = reason
    return str(text)


def _table(res: Resource, items: list[Obj], rv: str, continue_token: str) -> Obj:
    columns = [("Name", "string", "name")]
    if res is PODS:
        columns += [("Ready", "string", ""), ("Status", "string", ""), ("Restarts", "string", ""),
                    ("Age", "string", "")]
    else:
        columns += [("Age", "string", "")]
    rows = []
    for obj in items:
        meta = obj.get("metadata", {})
        cells: list[Any] = [meta.get("name")]
        if res is PODS:
            statuses = (obj.get("status") or {}).get("containerStatuses") or []
            ready = sum(1 for s in statuses if s.get("ready"))
            total = len((obj.get("spec") or {}).get("containers") or statuses)
            restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
            cells += [f"{ready}/{total}", pod_status_text(obj), str(restarts)]
        cells.append(_age(meta.get("creationTimestamp")))
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                "metadata": meta}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv, **({"continue": continue_token} if continue_token else {})},
            "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n, "priority": 0}
                                  for n, t, f in columns],
            "rows": rows}


class _ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-emulator"
    api: KubeApiServer
    _raw_body: bytes = b""

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.wfile, self.api)  # type: ignore[assignment]
        with self.api._lock:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.api._lock:
            self.api._connections.discard(self.connection)
            self.api._watch_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read counters, not access logs."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError, _Aborted):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing -------------------------------------------------------------

    def _send_json(self, code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, err: ApiError) -> None:
        headers = {}
        if "retryAfterSeconds" in err.details:
            headers["Retry-After"] = str(err.details["retryAfterSeconds"])
        self._send_json(err.code, err.status(), headers)

    def _body(self) -> Any:
        raw = self._raw_body
        ctype = self.headers.get("Content-Type", "")
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be JSON)") from None

    def _token_grant(self) -> Grant | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.api.tokens.get(auth[len("Bearer "):].strip())
        if not auth and self.api.anonymous:
            return Grant(user="system:anonymous")
        return None

    # -- routing -------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(p) for p in parsed.path.split("/") if p]
        # Read the body before any early answer, so the keep-alive connection stays in step.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length else b""
        with self.api._lock:
            latency = self.api._faults.latency
        if latency:
            time.sleep(latency)
        grant = self._token_grant()
        if grant is None:
            self._send_error(ApiError(401, "Unauthorized", "Unauthorized"))
            return
        try:
            if method == "GET" and self._discovery(parts):
                return
            self._resource_request(method, parts, params, grant)
        except ApiError as err:
            self._send_error(err)

    def _discovery(self, parts: list[str]) -> bool:
        api = self.api
        core = [r for r in RESOURCES if not r.group]
        groups = sorted({(r.group, r.version) for r in RESOURCES if r.group})
        if parts == ["version"]:
            self._send_json(200, VERSION_INFO)
        elif parts == ["api"]:
            self._send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{api.host}:{api.port}"}]})
        elif parts == ["apis"]:
            self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]})
        elif parts == ["api", "v1"]:
            self._send_json(200, _api_resource_list("v1", core))
        elif len(parts) == 2 and parts[0] == "apis" and any(g == parts[1] for g, _ in groups):
            g, v = next((g, v) for g, v in groups if g == parts[1])
            self._send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": g,
                                  "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                                  "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}})
        elif len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in groups:
            self._send_json(200, _api_resource_list(f"{parts[1]}/{parts[2]}",
                                                    [r for r in RESOURCES if r.group == parts[1]]))
        elif parts == ["openapi", "v3"]:
            self._send_json(200, {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=emulator"}
                                            for gv in ["api/v1", *(f"apis/{g}/{v}" for g, v in groups)]}})
        elif parts[:2] == ["openapi", "v3"] and _openapi_v3("/".join(parts[2:])):
            self._send_json(200, _openapi_v3("/".join(parts[2:])))
        else:
            return False
        return True

    def _not_found(self) -> ApiError:
        return ApiError(404, "NotFound", "the server could not find the requested resource")

    def _resource_request(self, method: str, parts: list[str], params: dict[str, str], grant: Grant) -> None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise self._not_found()
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and _resource_by_path(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise self._not_found()
        res = _resource_by_path(group, version, rest[0])
        if res is None or (namespace is not None and not res.namespaced):
            raise self._not_found()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in res.subresources:
            raise self._not_found()
        verb = self._verb(method, name, params)
        scope_ns = namespace if res.namespaced else None
        if not res.namespaced and name and res is NAMESPACES:
            scope_ns = name
        with self.api._lock:
            self.api.requests[(verb, res.plural)] += 1
        if not grant.allows(verb, scope_ns):
            raise self._forbidden(grant, verb, res, scope_ns, sub)
        fault = self.api._take_fault(verb, bool(params.get("continue")))
        if fault:
            raise fault
        ns = namespace or ""
        if verb == "list":
            self._list(res, namespace, params)
        elif verb == "watch":
            self._watch(res, namespace, params)
        elif verb == "get":
            self._object(res, self.api.store.get(res, ns, name))
        elif verb == "create":
            if res.namespaced and namespace is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource")
            self._object(res, self.api.store.create(res, ns, self._body()), 201)
        elif verb == "update":
            self._object(res, self.api.store.update(res, ns, name, self._body(), sub))
        elif verb == "patch":
            body = self._body()
            self._object(res, self.api.store.patch(res, ns, name, body, self.headers.get("Content-Type", ""), sub))
        elif verb == "delete":
            self._object(res, self.api.store.delete(res, ns, name))

    def _verb(self, method: str, name: str, params: Mapping[str, str]) -> str:
        if method == "GET":
            if name:
                return "get"
            return "watch" if params.get("watch") in ("1", "true") else "list"
        if method == "POST" and not name:
            return "create"
        if name and method in ("PUT", "PATCH", "DELETE"):
            return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _forbidden(self, grant: Grant, verb: str, res: Resource, namespace: str | None, sub: str) -> ApiError:
        what = f'{res.plural}/{sub}' if sub else res.plural
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        return ApiError(403, "Forbidden", f'{what} is forbidden: User "{grant.user}" cannot {verb} resource '
                        f'"{what}" in API group "{res.group}" {where}', {"kind": res.plural})

    def _object(self, res: Resource, obj: Obj, code: int = 200) -> None:
        if "as=Table" in self.headers.get("Accept", ""):
            self._send_json(code, _table(res, [obj], obj["metadata"].get("resourceVersion", ""), ""))
        else:
            self._send_json(code, obj)

    def _matcher(self, res: Resource, params: Mapping[str, str]) -> Any:
        try:
            labels = label_matcher(params.get("labelSelector", ""))
            fields = field_matcher(params.get("fieldSelector", ""))
        except SelectorError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, res: Resource, namespace: str | None, params: Mapping[str, str]) -> None:
        match = self._matcher(res, params)
        try:
            limit = int(params.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "limit must be an integer") from None
        items, rv, token, remaining = self.api.store.list_objects(res, namespace, match, limit,
                                                                  params.get("continue", ""))
        if "as=Table" in self.headers.get("Accept", ""):
            self._send_json(200, _table(res, items, rv, token))
            return
        meta: dict[str, Any] = {"resourceVersion": rv}
        if token:
            meta["continue"], meta["remainingItemCount"] = token, remaining
        self._send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
                              "items": items})

    # -- watch ---------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _watch(self, res: Resource, namespace: str | None, params: Mapping[str, str]) -> None:
        api, store = self.api, self.api.store
        match = self._matcher(res, params)
        raw_rv = params.get("resourceVersion", "")
        try:
            timeout = float(params.get("timeoutSeconds") or random.uniform(1800, 3600))
        except ValueError:
            raise ApiError(400, "BadRequest", "timeoutSeconds must be a number") from None
        bookmarks = params.get("allowWatchBookmarks") in ("1", "true")
        initial: list[Obj] = []
        if raw_rv in ("", "0"):
            initial, rv_text, _, _ = store.list_objects(res, namespace, match)
            last_rv = int(rv_text)
        else:
            try:
                last_rv = int(raw_rv)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resource version: {raw_rv!r}") from None
            store.events_after(last_rv)  # raises Expired (HTTP 410) before the stream starts
        with api._lock:
            expire_generation = api._faults.expire_generation
            api._watch_connections.add(self.connection)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        for obj in initial:
            self._chunk(json.dumps({"type": "ADDED", "object": obj}, separators=(",", ":")).encode() + b"\n")
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + api.bookmark_interval
        while api._httpd is not None and self.connection in api._watch_connections:
            now = time.monotonic()
            if now >= deadline:
                break
            with api._lock:
                stalled, generation = api._faults.stalled, api._faults.expire_generation
            if generation != expire_generation:
                status = expired(f"too old resource version: {last_rv} ({store.resource_version})").status()
                self._chunk(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
                break
            if stalled:
                store.wait_past(store.resource_version, min(0.05, deadline - now))
                continue
            try:
                events = store.events_after(last_rv)
            except ApiError as err:
                self._chunk(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
                break
            for event in events:
                line = self._event_line(event, res, namespace, match)
                if line:
                    self._chunk(line)
                last_rv = event.rv
            if bookmarks and time.monotonic() >= next_bookmark:
                mark = {"kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(last_rv),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}}
                self._chunk(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
                next_bookmark = time.monotonic() + api.bookmark_interval
            wait = min(deadline, next_bookmark if bookmarks else deadline) - time.monotonic()
            store.wait_past(last_rv, max(0.0, min(wait, 0.25)))
        if api._httpd is None or self.connection not in api._watch_connections:
            raise _Aborted()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        with api._lock:
            api._watch_connections.discard(self.connection)

    @staticmethod
    def _event_line(event: Event, res: Resource, namespace: str | None, match: Any) -> bytes | None:
        if event.resource is not res or (namespace is not None and event.namespace != namespace):
            return None
        now_match = match(event.obj)
        was_match = event.old is not None and match(event.old)
        if event.type == "DELETED":
            return event.line() if was_match else None
        if now_match and (was_match or event.type == "ADDED"):
            return event.line()
        if now_match:
            return json.dumps({"type": "ADDED", "object": event.obj}, separators=(",", ":")).encode() + b"\n"
        if was_match:
            return json.dumps({"type": "DELETED", "object": event.obj}, separators=(",", ":")).encode() + b"\n"
        return None


def load_seed(path: str | Path) -> list[Obj]:
    """Objects from a JSON or YAML file: one object, a List, or a stream of documents."""
    text = Path(path).read_text()
    found: list[Obj] = []
    docs = [json.loads(text)] if str(path).endswith(".json") else yaml.safe_load_all(text)  # JSON parses 100x faster
    for doc in docs:
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected Kubernetes objects, found {type(doc).__name__}")
        found.extend(doc.get("items") or [] if str(doc.get("kind", "")).endswith("List") else [doc])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubedingtalk.testing.kube_api",
                                     description="Serve an emulated Kubernetes API on loopback until interrupted.")
    parser.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig that reaches it")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--seed", help="JSON/YAML file of objects to load (a Pod, a List, or documents)")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a generated CA and require the kubeconfig's bearer token "
                             "(default: plain HTTP, anonymous access allowed, as kubectl sends no token over HTTP)")
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between BOOKMARK events")
    args = parser.parse_args(argv)
    server = KubeApiServer(port=args.port, tls=args.tls, anonymous=not args.tls,
                           bookmark_interval=args.bookmark_interval)
    if args.seed:
        try:
            for obj in load_seed(args.seed):
                server.apply(obj)
        except (OSError, ValueError, yaml.YAMLError, KeyError, ApiError) as err:
            print(f"kube_api: cannot load --seed {args.seed}: {err}", file=sys.stderr)
            return 2
    server.start()
    path = server.write_kubeconfig(args.kubeconfig)
    print(f"Kubernetes API emulator serving {server.url}; kubeconfig written to {path}", flush=True)
    return run_until_interrupted(server.stop)


if __name__ == "__main__":
    sys.exit(main())
