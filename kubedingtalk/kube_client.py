"""The Kubernetes API client: credentials from the ``kubernetes`` package, bytes over its urllib3 pool.

The official client loads kubeconfigs (exec plugins, token files, client
certificates) and in-cluster service accounts well, and builds a urllib3 pool
with the right TLS settings; its models are too slow for a watch stream. So
this module borrows the loading and the pool, and hands raw responses to the
informer, which parses JSON itself. Credentials are re-read on every request:
in-cluster tokens rotate, and exec-plugin tokens expire.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.config.incluster_config import InClusterConfigLoader

from kubedingtalk import __version__
from kubedingtalk.config import ConfigError, Settings

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeApiError(Exception):
    """A non-2xx answer, with the server's Status fields (never the request's credentials)."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status, self.reason, self.message, self.retry_after = status, reason, message, retry_after

    @classmethod
    def from_status(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> KubeApiError:
        """Build from a Status object (an HTTP error body or a watch ERROR event)."""
        reason, message = "", ""
        retry: float | None = None
        if isinstance(body, Mapping):
            reason, message = str(body.get("reason") or ""), str(body.get("message") or "")
            details = body.get("details")
            if isinstance(details, Mapping) and isinstance(details.get("retryAfterSeconds"), int | float):
                retry = float(details["retryAfterSeconds"])
        header = (headers or {}).get("Retry-After")
        if header is not None:
            with contextlib.suppress(ValueError):
                retry = float(header)
        return cls(status, reason or "Error", message or "(no message)", retry)


class KubeClient:
    """GET/PUT/POST on the API server with fresh credentials and a timeout on every request."""

    def __init__(self, configuration: kubernetes.client.Configuration, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0) -> None:
        self._cfg = configuration
        self._pool = kubernetes.client.ApiClient(configuration).rest_client.pool_manager
        self.host = str(configuration.host).rstrip("/")
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout

    def __repr__(self) -> str:
        return f"KubeClient(host={self.host!r})"

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"kube-dingtalk/{__version__}"}
        if body:
            headers["Content-Type"] = "application/json"
        auth = self._cfg.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["Authorization"] = str(auth["value"])
        return headers

    def request(self, method: str, path: str, query: Mapping[str, str] | None = None, body: Any = None,
                read_timeout: float | None = None) -> urllib3.BaseHTTPResponse:
        """Send one request; return the unread response, or raise ``KubeApiError`` for a non-2xx answer.

        Transport failures surface as urllib3's exceptions (``urllib3.exceptions.HTTPError``).
        """
        url = self.host + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=read_timeout or self.read_timeout)
        resp = self._pool.request(method, url, body=data, headers=self._headers(data is not None), timeout=timeout,
                                  preload_content=False, retries=False, redirect=False)
        if resp.status >= 300:
            raw = resp.read()
            resp.release_conn()
            try:
                status_body = json.loads(raw)
            except ValueError:
                status_body = {"message": raw[:200].decode("utf-8", "replace")}
            raise KubeApiError.from_status(resp.status, status_body, resp.headers)
        return resp

    def request_json(self, method: str, path: str, query: Mapping[str, str] | None = None,
                     body: Any = None) -> Any:
        resp = self.request(method, path, query, body)
        try:
            return json.loads(resp.read())
        finally:
            resp.release_conn()


def _rotating_token(path: Path) -> Callable[[kubernetes.client.Configuration], None]:
    """A refresh hook that re-reads a token file whenever it changes (kubelet swaps it in place)."""
    seen: list[tuple[int, int]] = []

    def refresh(cfg: kubernetes.client.Configuration) -> None:
        try:
            stat = path.stat()
        except OSError:
            return  # keep the last token; the API server's 401 will say if it is stale
        stamp = (stat.st_mtime_ns, stat.st_size)
        if seen and seen[0] == stamp:
            return
        token = path.read_text().strip()
        if token:
            cfg.api_key["BearerToken"] = f"Bearer {token}"
            seen[:] = [stamp]

    return refresh


def load(settings: Settings, environ: Mapping[str, str] = os.environ,
         service_account: Path = SERVICE_ACCOUNT) -> KubeClient:
    """Credentials as the settings say: the kubeconfig's current context, else the in-cluster account."""
    cfg = kubernetes.client.Configuration()
    if settings.kube_use_kubeconfig:
        path = environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, client_configuration=cfg, persist_config=False)
        except (kubernetes.config.ConfigException, OSError, ValueError) as err:
            raise ConfigError([f"KUBE_USE_KUBECONFIG=true: cannot load kubeconfig {path!r}: {err}"]) from None
        return KubeClient(cfg)
    token = service_account / "token"
    loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=str(token), cert_filename=str(service_account / "ca.crt"), try_refresh_token=False,
        environ=environ)
    try:
        loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as err:
        raise ConfigError([f"KUBE_USE_CLUSTER=true: not running in a cluster ({err}); "
                           "set KUBE_USE_KUBECONFIG=true to use a kubeconfig"]) from None
    cfg.refresh_api_key_hook = _rotating_token(token)  # type: ignore[assignment]
    return KubeClient(cfg)
