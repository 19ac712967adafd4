"""A thin raw HTTP client for emulator tests: what the wire carries, nothing more."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import urllib3

from kubedingtalk.testing.kube_api import KubeApiServer

TOKEN = "emulator-admin-token"


class Raw:
    def __init__(self, server: KubeApiServer, token: str | None = TOKEN) -> None:
        self.server = server
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=10))
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: Any = None, ctype: str = "application/json",
                **fields: Any) -> tuple[int, Any, urllib3.BaseHTTPResponse]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        url = self.server.url + path
        if fields:
            url += "?" + urllib.parse.urlencode(fields)
        resp = self.http.request(method, url, body=data, headers=headers)
        return resp.status, json.loads(resp.data) if resp.data else None, resp

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, **params)
        return status, body

    def watch(self, path: str, read_timeout: float = 10, **params: Any) -> Watch:
        fields = {"watch": "1", **{k: str(v) for k, v in params.items()}}
        resp = self.http.request("GET", self.server.url + path, fields=fields, headers=self.headers,
                                 preload_content=False, timeout=urllib3.Timeout(connect=2, read=read_timeout))
        return Watch(resp)


class Watch:
    """Reads one watch stream's events line by line."""

    def __init__(self, resp: urllib3.BaseHTTPResponse) -> None:
        self.resp = resp
        self.status = resp.status
        self._lines: Iterator[bytes] = self._iter()

    def _iter(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.resp.stream(1024, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield line

    def next(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(next(self._lines))
        return event

    def next_not_bookmark(self) -> dict[str, Any]:
        while True:
            event = self.next()
            if event["type"] != "BOOKMARK":
                return event

    def rest(self) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        return [json.loads(line) for line in self._lines]

    def close(self) -> None:
        self.resp.close()
        self.resp.release_conn()
