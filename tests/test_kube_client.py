"""The API client: credentials from the kubernetes package, refreshed; errors carry the server's Status."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import urllib3

from kubedingtalk.config import ConfigError, Settings
from kubedingtalk.kube_client import KubeApiError, KubeClient, load
from kubedingtalk.testing.kube_api import Grant, KubeApiServer

PODS = "/api/v1/namespaces/default/pods"


def in_cluster(api: KubeApiServer, account: Path, token: str, ca_pem: bytes | None = None) -> KubeClient:
    """A client loaded as inside a pod: service host/port from the environment, token and CA from files."""
    account.mkdir(exist_ok=True)
    (account / "ca.crt").write_bytes(ca_pem or api.ca_pem or b"")
    (account / "token").write_text(token)
    environ = {"KUBERNETES_SERVICE_HOST": api.host, "KUBERNETES_SERVICE_PORT": str(api.port)}
    return load(Settings(), environ, service_account=account)


def test_in_cluster_credentials_follow_token_rotation(tmp_path: Path) -> None:
    tokens = {"first-token": Grant(), "second-token": Grant()}
    with KubeApiServer(tls=True, tokens=tokens) as api:
        client = in_cluster(api, tmp_path / "sa", "first-token")
        assert client.request_json("GET", PODS)["kind"] == "PodList"
        # The kubelet rotates the projected token; the old one stops working.
        del api.tokens["first-token"]
        token_file = tmp_path / "sa" / "token"
        token_file.write_text("second-token")
        later = time.time() + 5
        os.utime(token_file, (later, later))
        assert client.request_json("GET", PODS)["kind"] == "PodList"
        assert "token" not in repr(client)


def test_tls_is_verified_against_the_clusters_ca(tmp_path: Path) -> None:
    with KubeApiServer(tls=True) as api, KubeApiServer(tls=True) as other:
        client = in_cluster(api, tmp_path / "sa", "emulator-admin-token")
        assert client.request_json("GET", PODS)["kind"] == "PodList"
        impostor = in_cluster(other, tmp_path / "sa2", "emulator-admin-token", ca_pem=api.ca_pem)
        with pytest.raises(urllib3.exceptions.SSLError):
            impostor.request_json("GET", PODS)


def test_errors_carry_status_reason_and_message(kube_api: KubeApiServer, tmp_path: Path) -> None:
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    client = load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(path)})
    with pytest.raises(KubeApiError) as err:
        client.request_json("GET", "/api/v1/namespaces/default/pods/missing")
    assert err.value.status == 404 and err.value.reason == "NotFound" and "missing" in err.value.message
    kube_api.fail_next(1, 429, retry_after=3)
    with pytest.raises(KubeApiError) as err:
        client.request_json("GET", PODS)
    assert err.value.status == 429 and err.value.retry_after == 3.0


def test_every_request_has_a_read_timeout(kube_api: KubeApiServer, tmp_path: Path) -> None:
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    client = load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(path)})
    client.read_timeout = 0.2
    kube_api.set_latency(2.0)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        client.request_json("GET", PODS)


def test_missing_credentials_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KUBE_USE_KUBECONFIG=true: cannot load kubeconfig"):
        load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(tmp_path / "absent")})
    with pytest.raises(ConfigError, match="KUBE_USE_CLUSTER=true: not running in a cluster"):
        load(Settings(), {}, service_account=tmp_path)


def test_kubeconfig_exec_plugin_credentials_are_refreshed_when_they_expire(tmp_path: Path) -> None:
    token_file, plugin = tmp_path / "current-token", tmp_path / "plugin.py"
    token_file.write_text("exec-one")
    plugin.write_text(
        "import datetime, json, pathlib\n"
        "soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        f"    'status': {{'token': pathlib.Path({str(token_file)!r}).read_text(),\n"
        "               'expirationTimestamp': soon.strftime('%Y-%m-%dT%H:%M:%SZ')}}))\n")
    with KubeApiServer(tokens={"exec-one": Grant(), "exec-two": Grant()}) as api:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": api.url}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                      "command": sys.executable, "args": [str(plugin)],
                                                      "interactiveMode": "Never"}}}]}))
        client = load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(kubeconfig)})
        assert client.request_json("GET", PODS)["kind"] == "PodList"
        del api.tokens["exec-one"]  # the old credential is revoked; the plugin now hands out another
        token_file.write_text("exec-two")
        assert client.request_json("GET", PODS)["kind"] == "PodList"
