"""The emulators held to real clients: the official kubernetes package, kubectl, and DingtalkChatbot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kubedingtalk.testing import pods
from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for


@pytest.fixture()
def tls_api(tmp_path: Path) -> Iterator[tuple[KubeApiServer, Path]]:
    with KubeApiServer(tls=True, bookmark_interval=0.5) as server:
        yield server, server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture()
def core(tls_api: tuple[KubeApiServer, Path]) -> client.CoreV1Api:
    api_client = config.new_client_from_config(str(tls_api[1]))
    return client.CoreV1Api(api_client)


def test_official_client_crud_over_tls(tls_api: tuple[KubeApiServer, Path], core: client.CoreV1Api) -> None:
    body = pods.pod("web", owner=None)
    created = core.create_namespaced_pod("default", body)
    assert created.metadata.name == "web" and created.status.phase == "Running"
    listed = core.list_pod_for_all_namespaces(label_selector="app=web")
    assert [p.metadata.name for p in listed.items] == ["web"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    patched = core.patch_namespaced_pod("web", "default", {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels["tier"] == "front"
    page = core.list_namespaced_pod("default", limit=1)
    assert page.metadata._continue is None
    core.delete_namespaced_pod("web", "default")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("web", "default")
    assert missing.value.status == 404


def test_official_client_sees_403_and_401(tmp_path: Path) -> None:
    from kubedingtalk.testing.kube_api import Grant

    grants = {"admin": Grant(), "dev": Grant(user="dev", namespaces=frozenset({"dev"}))}
    with KubeApiServer(tls=True, tokens=grants) as server:
        dev = client.CoreV1Api(config.new_client_from_config(str(server.write_kubeconfig(tmp_path / "d", "dev"))))
        with pytest.raises(ApiException) as denied:
            dev.list_namespaced_pod("prod")
        assert denied.value.status == 403 and json.loads(denied.value.body)["reason"] == "Forbidden"
        bad = client.CoreV1Api(config.new_client_from_config(str(server.write_kubeconfig(tmp_path / "b", "x"))))
        with pytest.raises(ApiException) as unauthorized:
            bad.list_namespace()
        assert unauthorized.value.status == 401


def test_official_watch_stream_sees_events_and_resumes_after_410(
        tls_api: tuple[KubeApiServer, Path], core: client.CoreV1Api) -> None:
    server = tls_api[0]
    server.create(pods.pod("a", owner=None))
    rv = core.list_namespaced_pod("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        # No timeout_seconds: with one, the client raises on 410 instead of retrying.
        for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    server.create(pods.pod("b", owner=None))
    wait_for(lambda: seen == [("ADDED", "b")], what=f"{seen}")
    server.expire_watches()  # the client retries once after an ERROR 410, from its last resourceVersion
    wait_for(lambda: server.open_watches == 1 and server.request_count("watch") == 2)
    server.create(pods.pod("c", owner=None))
    thread.join(20)
    assert seen == [("ADDED", "b"), ("ADDED", "c")]


def test_official_watch_raises_410_when_history_is_gone(
        tls_api: tuple[KubeApiServer, Path], core: client.CoreV1Api) -> None:
    server = tls_api[0]
    old = server.create(pods.pod("a", owner=None))["metadata"]["resourceVersion"]
    server.create(pods.pod("b", owner=None))
    server.compact()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=old, timeout_seconds=2):
            pass
    assert gone.value.status == 410


def test_official_leader_election_with_a_lease_lock(tls_api: tuple[KubeApiServer, Path]) -> None:
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    server, kubeconfig = tls_api
    config.load_kube_config(str(kubeconfig))
    leading: dict[str, threading.Event] = {n: threading.Event() for n in ("a", "b")}
    stopped: dict[str, threading.Event] = {n: threading.Event() for n in ("a", "b")}

    def candidate(name: str) -> threading.Thread:
        cfg = electionconfig.Config(LeaseLock("kube-dingtalk", "default", name), lease_duration=3, renew_deadline=2,
                                    retry_period=1, onstarted_leading=leading[name].set,
                                    onstopped_leading=stopped[name].set)
        thread = threading.Thread(target=leaderelection.LeaderElection(cfg).run, daemon=True)
        thread.start()
        return thread

    first = candidate("a")
    wait_for(leading["a"].is_set, timeout=10)
    lease = server.get("Lease", "default", "kube-dingtalk")
    assert lease["spec"]["holderIdentity"] == "a"
    candidate("b")
    wait_for(lambda: server.get("Lease", "default", "kube-dingtalk")["metadata"]["resourceVersion"]
             != lease["metadata"]["resourceVersion"], timeout=5)
    assert not leading["b"].is_set(), "a follower does not lead while the leader renews"
    server.fail_next(10, status=500)  # renewals fail: the leader must step down
    wait_for(stopped["a"].is_set, timeout=15)
    first.join(5)
    wait_for(leading["b"].is_set, timeout=15)
    assert server.get("Lease", "default", "kube-dingtalk")["spec"]["holderIdentity"] == "b"
    # 500s, not a stopped server: the client's election thread dies on a connection error
    # instead of stepping down, so our own leader election (issue 7) must not rely on it.
    server.fail_next(10, status=500)
    wait_for(stopped["b"].is_set, timeout=15)


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (.ci/run "
                                   "installs Debian's kubernetes-client)")


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=20s", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@needs_kubectl
def test_kubectl_get_create_delete(tls_api: tuple[KubeApiServer, Path], tmp_path: Path) -> None:
    server, kubeconfig = tls_api
    server.create(pods.crash_loop(pods.pod("web", namespace="prod")))
    done = kubectl(kubeconfig, "get", "pods", "-A", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert [p["metadata"]["namespace"] for p in json.loads(done.stdout)["items"]] == ["prod"]
    table = kubectl(kubeconfig, "get", "pods", "-A")
    assert table.returncode == 0 and "CrashLoopBackOff" in table.stdout, table.stderr
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(pods.pod("made-by-kubectl", owner=None)))
    created = kubectl(kubeconfig, "create", "-f", str(manifest), *old_kubectl_validation(kubeconfig))
    assert created.returncode == 0, created.stderr
    assert server.get("Pod", "default", "made-by-kubectl")["metadata"]["uid"]
    deleted = kubectl(kubeconfig, "delete", "pod", "made-by-kubectl", "--wait=false")
    assert deleted.returncode == 0, deleted.stderr
    assert "made-by-kubectl" not in {p["metadata"]["name"] for p in server.store.objects(pods_resource())}


def old_kubectl_validation(kubeconfig: Path) -> list[str]:
    """kubectl before 1.26 validates on the client against protobuf OpenAPI v2, which the emulator does not
    serve (it serves the OpenAPI v3 that newer kubectl uses to hand validation to the server)."""
    done = kubectl(kubeconfig, "version", "--client", "-o", "json")
    minor = json.loads(done.stdout)["clientVersion"]["minor"] if done.returncode == 0 else "99"
    return ["--validate=false"] if int(minor.rstrip("+")) < 26 else []


def pods_resource() -> object:
    from kubedingtalk.testing.kube_store import PODS

    return PODS


@needs_kubectl
def test_kubectl_watch_sees_a_pod_created_meanwhile(tls_api: tuple[KubeApiServer, Path]) -> None:
    server, kubeconfig = tls_api
    server.create(pods.pod("first", owner=None))
    env = {**os.environ, "HOME": str(kubeconfig.parent)}
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(kubeconfig), "get", "pods", "-w",
                             "--output-watch-events", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        wait_for(lambda: server.open_watches == 1, timeout=30, what="kubectl to open its watch")
        server.create(pods.pod("second", owner=None))
        decoder, buffer, events = json.JSONDecoder(), "", []
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(events) < 2 and time.monotonic() < deadline:
            buffer += proc.stdout.readline()
            try:
                event, end = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            events.append(event)
            buffer = buffer.strip()[end:]
    finally:
        proc.kill()
        proc.wait()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "first"), ("ADDED", "second")]


@needs_kubectl
def test_standalone_emulator_serves_kubectl(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "k.yaml"
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"kind": "List", "items": [pods.evicted(pods.pod("batch", namespace="jobs"))]}))
    proc = subprocess.Popen([sys.executable, "-m", "kubedingtalk.testing.kube_api", "--kubeconfig", str(kubeconfig),
                             "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "serving http://127.0.0.1:" in proc.stdout.readline()
        done = kubectl(kubeconfig, "get", "pods", "-A")
        assert done.returncode == 0, done.stderr
        assert "jobs" in done.stdout and "Evicted" in done.stdout
    finally:
        proc.terminate()
        proc.wait(10)


def test_standalone_emulator_rejects_a_bad_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("- not an object\n")
    done = subprocess.run([sys.executable, "-m", "kubedingtalk.testing.kube_api", "--kubeconfig",
                           str(tmp_path / "k"), "--seed", str(seed)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "cannot load --seed" in done.stderr


def test_dingtalkchatbot_signed_requests_accepted_and_wrong_secret_rejected() -> None:
    from dingtalkchatbot.chatbot import DingtalkChatbot

    with DingTalkServer([Robot("bot-token", secret="SECindependent")]) as server:
        good = DingtalkChatbot(server.webhook_url("bot-token"), secret="SECindependent")
        assert good.send_text(msg="pods are failing")["errcode"] == 0
        assert good.send_markdown(title="alert", text="### pods are failing")["errcode"] == 0
        bad = DingtalkChatbot(server.webhook_url("bot-token"), secret="SECwrong")
        assert bad.send_text(msg="pods are failing")["errcode"] == 310000
        assert [m.msgtype for m in server.messages] == ["text", "markdown"]


def test_standalone_dingtalk_emulator_prints_messages() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "kubedingtalk.testing.dingtalk", "--token", "t", "--keyword",
                             "k8s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split("DINGTALK_TOKEN=")[1]
        import urllib3

        resp = urllib3.request("POST", url, json={"msgtype": "markdown",
                                                  "markdown": {"title": "k8s alert", "text": "web is down"}})
        assert json.loads(resp.data)["errcode"] == 0
        assert "k8s alert" in proc.stdout.readline()
        assert "web is down" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
