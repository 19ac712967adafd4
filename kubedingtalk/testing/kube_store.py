"""The emulated API server's storage: objects, one resourceVersion counter, event history.

It keeps what an informer depends on: every write gets the next global
resourceVersion, every write is an event in a bounded history, a watch
replays the history after its resourceVersion, and a resourceVersion older
than the history is Expired (410). Lists are sorted by namespace and name, as
etcd keys are.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


PODS = Resource("", "v1", "pods", "Pod", True, ("po",), ("status",))
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",))
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",))
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", True)
RESOURCES = (PODS, NAMESPACES, CONFIGMAPS, LEASES)


class ApiError(Exception):
    """An error the API answers with a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})

    def status(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    type: str
    resource: Resource
    namespace: str
    obj: Obj
    old: Obj | None
    _line: bytes | None = field(default=None, repr=False)

    def line(self) -> bytes:
        """The event as the watch stream sends it (encoded once, shared by watchers)."""
        if self._line is None:
            self._line = json.dumps({"type": self.type, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
        return self._line


def _not_found(res: Resource, name: str) -> ApiError:
    group = f".{res.group}" if res.group else ""
    return ApiError(404, "NotFound", f'{res.plural}{group} "{name}" not found',
                    {"name": name, "kind": res.plural, **({"group": res.group} if res.group else {})})


class Store:
    """Thread-safe object storage with a bounded, replayable event history."""

    def __init__(self, history_limit: int = 100_000) -> None:
        self._cond = threading.Condition()
        self._rv = 0
        self._objects: dict[Resource, dict[tuple[str, str], Obj]] = {r: {} for r in RESOURCES}
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._compacted_rv = 0  # events at or below this RV are no longer replayable

    # -- reading ----------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self._cond:
            obj = self._objects[res].get((namespace, name))
            if obj is None:
                raise _not_found(res, name)
            return obj

    def count(self, res: Resource) -> int:
        with self._cond:
            return len(self._objects[res])

    def list_objects(self, res: Resource, namespace: str | None, match: Callable[[Obj], bool],
             limit: int = 0, continue_token: str = "") -> tuple[list[Obj], str, str, int | None]:
        """Items, list RV, continue token, remaining count (when paginated)."""
        with self._cond:
            list_rv, start = self._rv, ("", "")
            if continue_token:
                list_rv, start = self._decode_continue(continue_token)
            keys = sorted(k for k in self._objects[res] if (namespace is None or k[0] == namespace) and k > start)
            items: list[Obj] = []
            last: tuple[str, str] | None = None
            for i, key in enumerate(keys):
                obj = self._objects[res][key]
                if not match(obj):
                    continue
                if limit and len(items) == limit:
                    remaining = sum(1 for k in keys[i:] if match(self._objects[res][k]))
                    assert last is not None
                    return items, str(list_rv), self._encode_continue(list_rv, last), remaining
                items.append(obj)
                last = key
            return items, str(list_rv), "", None

    def _encode_continue(self, rv: int, key: tuple[str, str]) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(key)}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    def _decode_continue(self, token: str) -> tuple[int, tuple[str, str]]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, start = int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
        except (ValueError, KeyError, IndexError, TypeError):
            raise ApiError(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion "
                           "(version meta.k8s.io/v1)") from None
        if rv < self._compacted_rv:
            raise expired("The provided continue parameter is too old to display a consistent list result. "
                          "You can start a new list without the continue parameter.")
        return rv, start

    def events_after(self, rv: int) -> list[Event]:
        """Events with a resourceVersion above ``rv``; Expired when history no longer holds them."""
        with self._cond:
            if rv < self._compacted_rv:
                raise expired(f"too old resource version: {rv} ({self._compacted_rv + 1})")
            if not self._history or self._history[-1].rv <= rv:
                return []
            if self._history[0].rv > rv:
                return list(self._history)
            lo, hi = 0, len(self._history)
            while lo < hi:
                mid = (lo + hi) // 2
                if self._history[mid].rv <= rv:
                    lo = mid + 1
                else:
                    hi = mid
            return [self._history[i] for i in range(lo, len(self._history))]

    def wait_past(self, rv: int, timeout: float) -> None:
        """Block until something is written after ``rv`` or ``timeout`` passes."""
        with self._cond:
            if self._rv <= rv:
                self._cond.wait(timeout)

    def wake_all(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- writing ----------------------------------------------------------

    def _commit(self, res: Resource, namespace: str, event_type: str, obj: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = (namespace, obj["metadata"]["name"])
        if event_type == "DELETED":
            self._objects[res].pop(key, None)
        else:
            self._objects[res][key] = obj
        self._history.append(Event(self._rv, event_type, res, namespace, obj, old))
        while len(self._history) > self._history_limit:
            self._compacted_rv = self._history.popleft().rv
        self._cond.notify_all()
        return obj

    def _prepare(self, res: Resource, namespace: str, obj: Mapping[str, Any]) -> Obj:
        fresh: Obj = copy.deepcopy(dict(obj))
        fresh["apiVersion"], fresh["kind"] = res.api_version, res.kind
        meta = fresh.setdefault("metadata", {})
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value: name is required")
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                               "the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return fresh

    def create(self, res: Resource, namespace: str, obj: Mapping[str, Any]) -> Obj:
        with self._cond:
            fresh = self._prepare(res, namespace, obj)
            if res.namespaced and ("", namespace) not in self._objects[NAMESPACES]:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
            name = fresh["metadata"]["name"]
            if (namespace if res.namespaced else "", name) in self._objects[res]:
                raise ApiError(409, "AlreadyExists", f'{res.plural} "{name}" already exists',
                               {"name": name, "kind": res.plural})
            meta = fresh["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = meta.get("creationTimestamp") or now_rfc3339()
            if res is PODS:
                fresh.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
            if res is NAMESPACES:
                fresh.setdefault("status", {"phase": "Active"})
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            return self._commit(res, namespace if res.namespaced else "", "ADDED", fresh, None)

    def update(self, res: Resource, namespace: str, name: str, obj: Mapping[str, Any],
               subresource: str = "", force: bool = False) -> Obj:
        """PUT semantics: 409 on a stale resourceVersion; ``status`` writes only status."""
        with self._cond:
            ns = namespace if res.namespaced else ""
            current = self._objects[res].get((ns, name))
            if current is None:
                raise _not_found(res, name)
            fresh = self._prepare(res, ns, obj)
            if fresh["metadata"]["name"] != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            given_rv = fresh["metadata"].get("resourceVersion")
            if given_rv and given_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} "{name}": the object '
                               "has been modified; please apply your changes to the latest version and try again",
                               {"name": name, "kind": res.plural})
            if not force and res.subresources:
                if subresource == "status":
                    merged = copy.deepcopy(current)
                    merged["status"] = fresh.get("status", {})
                    fresh = merged
                elif "status" in current:
                    fresh["status"] = copy.deepcopy(current["status"])
            for kept in ("uid", "creationTimestamp"):
                fresh["metadata"][kept] = current["metadata"].get(kept)
            if fresh == current:
                return current
            return self._commit(res, ns, "MODIFIED", fresh, current)

    def patch(self, res: Resource, namespace: str, name: str, patch: Any, patch_type: str,
              subresource: str = "") -> Obj:
        with self._cond:
            current = self.get(res, namespace if res.namespaced else "", name)
            patched = apply_patch(copy.deepcopy(current), patch, patch_type)
            if not isinstance(patched, dict):
                raise ApiError(422, "Invalid", "the patch did not produce an object")
            return self.update(res, namespace, name, patched, subresource)

    def delete(self, res: Resource, namespace: str, name: str) -> Obj:
        with self._cond:
            ns = namespace if res.namespaced else ""
            current = self._objects[res].get((ns, name))
            if current is None:
                raise _not_found(res, name)
            gone = copy.deepcopy(current)
            return self._commit(res, ns, "DELETED", gone, current)

    def compact(self) -> None:
        """Forget all history: every older resourceVersion is now Expired."""
        with self._cond:
            self._history.clear()
            self._compacted_rv = self._rv

    def objects(self, res: Resource) -> Iterator[Obj]:
        with self._cond:
            return iter(list(self._objects[res].values()))


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    for op in ops:
        parts = _pointer(op.get("path", ""))
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        kind = op.get("op")
        try:
            if kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if current != op.get("value"):
                    raise ApiError(422, "Invalid", f"test operation failed at {op.get('path')}")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(index, op["value"])
                    else:
                        parent[index] = op["value"]
                else:
                    parent[last] = op["value"]
            else:
                raise ApiError(400, "BadRequest", f"unsupported json patch operation {kind!r}")
        except (KeyError, IndexError, ValueError):
            raise ApiError(422, "Invalid", f"json patch path not found: {op.get('path')}") from None
    return doc


def apply_patch(doc: Obj, patch: Any, patch_type: str) -> Any:
    """Merge patch, strategic merge patch (lists replaced, as merge patch does), or JSON patch."""
    if patch_type.startswith("application/json-patch+json"):
        return _json_patch(doc, patch)
    if patch_type.startswith(("application/merge-patch+json", "application/strategic-merge-patch+json")):
        return _merge(doc, patch)
    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                   f"accepted media types include: application/json-patch+json, application/merge-patch+json, "
                   f"application/strategic-merge-patch+json; got {patch_type!r}")
