"""The Kubernetes API emulator over real HTTP: the protocol rules an informer relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import urllib3

from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import Grant, KubeApiServer, load_seed
from tests.helpers import wait_for
from tests.kube_http import Raw

NS_PODS = "/api/v1/namespaces/default/pods"


def body_pod(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


def test_discovery_documents(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    assert raw.get("/version")[1]["major"] == "1"
    assert raw.get("/api")[1]["versions"] == ["v1"]
    core = {r["name"]: r for r in raw.get("/api/v1")[1]["resources"]}
    assert {"pods", "pods/status", "namespaces", "configmaps"} <= set(core)
    assert core["pods"]["namespaced"] and "watch" in core["pods"]["verbs"]
    groups = raw.get("/apis")[1]["groups"]
    assert [g["name"] for g in groups] == ["coordination.k8s.io"]
    leases = raw.get("/apis/coordination.k8s.io/v1")[1]["resources"]
    assert leases[0]["name"] == "leases" and leases[0]["kind"] == "Lease"
    assert raw.get("/apis/nothing.example/v1")[0] == 404


def test_one_global_resource_version_as_strings(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    status, pod, _ = raw.request("POST", NS_PODS, body_pod("a"))
    assert status == 201
    status, cm, _ = raw.request("POST", "/api/v1/namespaces/default/configmaps",
                                {"metadata": {"name": "c"}, "data": {"k": "v"}})
    assert status == 201
    assert isinstance(pod["metadata"]["resourceVersion"], str)
    assert int(cm["metadata"]["resourceVersion"]) == int(pod["metadata"]["resourceVersion"]) + 1
    listed = raw.get(NS_PODS)[1]
    assert listed["kind"] == "PodList" and listed["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    assert pod["status"]["phase"] == "Pending" and pod["metadata"]["uid"]


def test_create_get_update_patch_delete(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    _, created, _ = raw.request("POST", NS_PODS, body_pod("a"))
    assert raw.request("POST", NS_PODS, body_pod("a"))[1]["reason"] == "AlreadyExists"
    assert raw.get(f"{NS_PODS}/a")[1]["metadata"]["uid"] == created["metadata"]["uid"]
    stale = json.loads(json.dumps(created))
    created["metadata"]["labels"] = {"v": "2"}
    status, updated, _ = raw.request("PUT", f"{NS_PODS}/a", created)
    assert status == 200 and updated["metadata"]["labels"] == {"v": "2"}
    status, conflict, _ = raw.request("PUT", f"{NS_PODS}/a", stale)
    assert status == 409 and conflict["reason"] == "Conflict" and conflict["kind"] == "Status"
    status, patched, _ = raw.request("PATCH", f"{NS_PODS}/a", {"metadata": {"labels": {"p": "1", "v": None}}},
                                     ctype="application/merge-patch+json")
    assert status == 200 and patched["metadata"]["labels"] == {"p": "1"}
    status, patched, _ = raw.request("PATCH", f"{NS_PODS}/a", [{"op": "add", "path": "/metadata/labels/j",
                                                                 "value": "x"}], ctype="application/json-patch+json")
    assert status == 200 and patched["metadata"]["labels"] == {"p": "1", "j": "x"}
    assert raw.request("PATCH", f"{NS_PODS}/a", {}, ctype="text/plain")[0] == 415
    status, deleted, _ = raw.request("DELETE", f"{NS_PODS}/a")
    assert status == 200 and deleted["metadata"]["name"] == "a"
    status, missing = raw.get(f"{NS_PODS}/a")
    assert status == 404 and missing["reason"] == "NotFound" and missing["message"] == 'pods "a" not found'


def test_status_subresource_writes_only_status(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    _, pod, _ = raw.request("POST", NS_PODS, body_pod("a"))
    pod["status"] = {"phase": "Running"}
    pod["metadata"]["labels"] = {"ignored": "yes"}
    _, after, _ = raw.request("PUT", f"{NS_PODS}/a/status", pod)
    assert after["status"] == {"phase": "Running"} and after["metadata"]["labels"] == {}
    after["status"] = {"phase": "Failed"}
    _, main, _ = raw.request("PUT", f"{NS_PODS}/a", after)
    assert main["status"] == {"phase": "Running"}, "the main resource ignores status"
    _, patched, _ = raw.request("PATCH", f"{NS_PODS}/a/status", {"status": {"phase": "Succeeded"}},
                                ctype="application/merge-patch+json")
    assert patched["status"]["phase"] == "Succeeded"


def test_namespace_must_exist(kube_api: KubeApiServer) -> None:
    status, body, _ = Raw(kube_api).request("POST", "/api/v1/namespaces/nope/pods", body_pod("a"))
    assert status == 404 and body["message"] == 'namespaces "nope" not found'


def test_pagination_covers_every_item_once(kube_api: KubeApiServer) -> None:
    for i in range(1234):
        kube_api.create(pods.pod(f"p{i:04d}", owner=None, namespace="default" if i % 2 else "other"))
    raw, names, token, pages = Raw(kube_api), [], "", 0
    list_rv = None
    while True:
        params = {"limit": 500, **({"continue": token} if token else {})}
        page = raw.get("/api/v1/pods", **params)[1]
        pages += 1
        names += [p["metadata"]["name"] for p in page["items"]]
        list_rv = list_rv or page["metadata"]["resourceVersion"]
        assert page["metadata"]["resourceVersion"] == list_rv
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 1234 - len(names)
    assert pages == 3 and len(names) == 1234 == len(set(names))
    kube_api.compact()
    kube_api.create(pods.pod("late", owner=None))
    page = raw.get("/api/v1/pods", limit=10)[1]
    kube_api.create(pods.pod("later", owner=None))
    kube_api.compact()
    status, gone = raw.get("/api/v1/pods", limit=10, **{"continue": page["metadata"]["continue"]})
    assert status == 410 and gone["reason"] == "Expired"
    assert raw.get("/api/v1/pods", limit=10, **{"continue": "not-base64!"})[0] == 400


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]), ("app==web", ["a", "b"]), ("app!=web", ["c", "d"]),
    ("tier in (front,back)", ["a", "c"]), ("tier notin (front)", ["b", "c", "d"]),
    ("tier", ["a", "c"]), ("!tier", ["b", "d"]), ("app=web,tier=front", ["a"]),
])
def test_label_selectors(kube_api: KubeApiServer, selector: str, expected: list[str]) -> None:
    labels = {"a": {"app": "web", "tier": "front"}, "b": {"app": "web"}, "c": {"app": "db", "tier": "back"}, "d": {}}
    for name, lab in labels.items():
        kube_api.create(body_pod(name, **lab) | {"kind": "Pod"})
    items = Raw(kube_api).get(NS_PODS, labelSelector=selector)[1]["items"]
    assert [p["metadata"]["name"] for p in items] == expected


def test_field_selectors(kube_api: KubeApiServer) -> None:
    kube_api.create(pods.pod("run", owner=None))
    kube_api.create(pods.evicted(pods.pod("ev", owner=None, namespace="prod")))
    raw = Raw(kube_api)
    names = lambda **p: [i["metadata"]["name"] for i in raw.get("/api/v1/pods", **p)[1]["items"]]  # noqa: E731
    assert names(fieldSelector="status.phase=Failed") == ["ev"]
    assert names(fieldSelector="status.phase!=Failed") == ["run"]
    assert names(fieldSelector="metadata.namespace=prod,metadata.name=ev") == ["ev"]
    status, err = raw.get("/api/v1/pods", fieldSelector="spec.nodeName=x")
    assert status == 400 and "field label not supported" in err["message"]
    assert raw.get("/api/v1/pods", labelSelector="a b")[0] == 400


def test_watch_replays_history_after_the_resource_version(kube_api: KubeApiServer) -> None:
    a = kube_api.create(pods.pod("a", owner=None))
    kube_api.apply(pods.crash_loop(pods.pod("a", owner=None)))
    kube_api.delete("Pod", "default", "a")
    w = Raw(kube_api).watch(NS_PODS, resourceVersion=a["metadata"]["resourceVersion"], timeoutSeconds=1)
    events = [e for e in w.rest() if e["type"] != "BOOKMARK"]
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(a["metadata"]["resourceVersion"])


def test_watch_without_resource_version_starts_with_added_events(kube_api: KubeApiServer) -> None:
    kube_api.create(pods.pod("a", owner=None))
    kube_api.create(pods.pod("b", owner=None))
    w = Raw(kube_api).watch(NS_PODS, timeoutSeconds=5)
    first = [w.next(), w.next()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in first] == [("ADDED", "a"), ("ADDED", "b")]
    kube_api.create(pods.pod("c", owner=None))
    assert w.next_not_bookmark()["object"]["metadata"]["name"] == "c"
    w.close()


def test_watch_too_old_is_410_at_start_and_error_event_mid_stream(kube_api: KubeApiServer) -> None:
    old = kube_api.create(pods.pod("a", owner=None))["metadata"]["resourceVersion"]
    kube_api.create(pods.pod("b", owner=None))
    kube_api.compact()
    raw = Raw(kube_api)
    w = raw.watch(NS_PODS, resourceVersion=old)
    assert w.status == 410 and json.loads(w.resp.read())["reason"] == "Expired"
    current = raw.get(NS_PODS)[1]["metadata"]["resourceVersion"]
    w = raw.watch(NS_PODS, resourceVersion=current, timeoutSeconds=30)
    assert w.status == 200
    wait_for(lambda: kube_api.open_watches == 1)
    kube_api.expire_watches()
    rest = w.rest()
    assert rest[-1]["type"] == "ERROR" and rest[-1]["object"]["code"] == 410
    assert rest[-1]["object"]["reason"] == "Expired"


def test_bookmarks_only_when_asked(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    rv = raw.get(NS_PODS)[1]["metadata"]["resourceVersion"]
    w = raw.watch(NS_PODS, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=5)
    mark = w.next()
    assert mark["type"] == "BOOKMARK" and mark["object"]["metadata"]["resourceVersion"] == rv
    assert set(mark["object"]["metadata"]) == {"resourceVersion", "annotations"}
    kube_api.create(pods.pod("x", owner=None, namespace="elsewhere"))
    mark = w.next()
    assert mark["type"] == "BOOKMARK" and int(mark["object"]["metadata"]["resourceVersion"]) > int(rv), \
        "bookmarks advance past events the watch filtered out"
    w.close()
    plain = raw.watch(NS_PODS, resourceVersion=rv, timeoutSeconds=1)
    assert plain.rest() == []


def test_timeout_seconds_ends_the_stream_cleanly(kube_api: KubeApiServer) -> None:
    w = Raw(kube_api).watch(NS_PODS, timeoutSeconds=1)
    assert w.rest() == [] and w.resp.status == 200
    wait_for(lambda: kube_api.open_watches == 0)


def test_watch_selectors_turn_label_changes_into_added_and_deleted(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    rv = raw.get(NS_PODS)[1]["metadata"]["resourceVersion"]
    w = raw.watch(NS_PODS, resourceVersion=rv, labelSelector="team=a", timeoutSeconds=30)
    kube_api.create(pods.pod("p", owner=None, labels={"team": "b"}))
    kube_api.apply(pods.pod("p", owner=None, labels={"team": "a"}))
    kube_api.apply(pods.pod("p", owner=None, labels={"team": "c"}))
    events = [w.next_not_bookmark(), w.next_not_bookmark()]
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    w.close()


def test_auth_401_and_403_with_status_bodies() -> None:
    grants = {"admin": Grant(), "dev": Grant(user="system:serviceaccount:dev:bot", namespaces=frozenset({"dev"})),
              "reader": Grant(user="reader", verbs=frozenset({"get", "list", "watch"}))}
    with KubeApiServer(tokens=grants) as server:
        server.ensure_namespace("dev")
        assert Raw(server, token=None).get("/api/v1/pods")[0] == 401
        status, body = Raw(server, token="wrong").get("/api/v1/pods")
        assert status == 401 and body["reason"] == "Unauthorized"
        dev = Raw(server, token="dev")
        assert dev.get("/api/v1/namespaces/dev/pods")[0] == 200
        status, body = dev.get("/api/v1/namespaces/prod/pods")
        assert status == 403 and body["reason"] == "Forbidden" and body["details"] == {"kind": "pods"}
        assert body["message"] == ('pods is forbidden: User "system:serviceaccount:dev:bot" cannot list resource '
                                   '"pods" in API group "" in the namespace "prod"')
        status, body = dev.get("/api/v1/pods")
        assert status == 403 and body["message"].endswith("at the cluster scope")
        status, body, _ = Raw(server, token="reader").request("POST", "/api/v1/namespaces/dev/pods", body_pod("a"))
        assert status == 403 and "cannot create resource" in body["message"]
        assert Raw(server, token="admin").get("/api/v1/pods")[0] == 200


def test_faults_500_and_429_with_retry_after(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    kube_api.fail_next(2, status=500)
    assert [raw.get(NS_PODS)[0] for _ in range(3)] == [500, 500, 200]
    kube_api.fail_next(1, status=429, retry_after=7)
    status, body, resp = raw.request("GET", NS_PODS)
    assert status == 429 and resp.headers["Retry-After"] == "7" and body["reason"] == "TooManyRequests"


def test_faults_expire_next_list_and_watch(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    kube_api.expire_next(list_count=1, watch_count=1)
    assert raw.get(NS_PODS)[0] == 410
    assert raw.get(NS_PODS)[0] == 200
    assert raw.watch(NS_PODS).status == 410
    assert raw.watch(NS_PODS, timeoutSeconds=1).status == 200


def test_faults_expire_next_continuation_only(kube_api: KubeApiServer) -> None:
    for i in range(3):
        kube_api.create(pods.pod(f"p{i}", owner=None))
    raw = Raw(kube_api)
    kube_api.expire_next(continue_count=1)
    status, first, _ = raw.request("GET", NS_PODS + "?limit=2")
    assert status == 200 and first["metadata"]["continue"]
    status, body, _ = raw.request("GET", NS_PODS + "?limit=2&continue=" + first["metadata"]["continue"])
    assert status == 410 and body["reason"] == "Expired"
    status, _, _ = raw.request("GET", NS_PODS + "?limit=2&continue=" + first["metadata"]["continue"])
    assert status == 200


def test_close_watches_drops_the_connection(kube_api: KubeApiServer) -> None:
    w = Raw(kube_api).watch(NS_PODS, timeoutSeconds=60)
    wait_for(lambda: kube_api.open_watches == 1)
    kube_api.close_watches()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        w.rest()
    wait_for(lambda: kube_api.open_watches == 0)


def test_stalled_watch_sends_nothing_until_released(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    rv = raw.get(NS_PODS)[1]["metadata"]["resourceVersion"]
    kube_api.stall_watches()
    w = raw.watch(NS_PODS, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=60, read_timeout=0.6)
    kube_api.create(pods.pod("a", owner=None))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        w.next()
    kube_api.stall_watches(False)
    w2 = raw.watch(NS_PODS, resourceVersion=rv, timeoutSeconds=60)
    assert w2.next()["object"]["metadata"]["name"] == "a"
    w2.close()


def test_latency_and_restart_on_the_same_port(kube_api: KubeApiServer) -> None:
    kube_api.create(pods.pod("a", owner=None))
    port, raw = kube_api.port, Raw(kube_api)
    w = raw.watch(NS_PODS, timeoutSeconds=60)
    assert w.next()["type"] == "ADDED"
    kube_api.restart()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        w.rest()
    assert kube_api.port == port
    assert [p["metadata"]["name"] for p in raw.get(NS_PODS)[1]["items"]] == ["a"]
    kube_api.set_latency(0.3)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        raw.http.request("GET", kube_api.url + NS_PODS, headers=raw.headers, timeout=urllib3.Timeout(read=0.1))


def test_counters(kube_api: KubeApiServer) -> None:
    raw = Raw(kube_api)
    kube_api.reset_counters()
    raw.get(NS_PODS)
    raw.get(NS_PODS)
    w = raw.watch(NS_PODS, timeoutSeconds=30)
    wait_for(lambda: kube_api.open_watches == 1)
    assert kube_api.request_count("list") == 2 and kube_api.request_count("watch") == 1
    assert kube_api.bytes_sent > 0
    w.close()


def test_table_output_for_kubectl(kube_api: KubeApiServer) -> None:
    kube_api.create(pods.crash_loop(pods.pod("web")))
    raw = Raw(kube_api)
    raw.headers["Accept"] = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = raw.get(NS_PODS)[1]
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][1:4] == ["0/1", "CrashLoopBackOff", "4"]


def test_load_seed_reads_a_pod_a_list_and_a_document_stream(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(pods.pod("a", owner=None)))
    many = tmp_path / "many.yaml"
    many.write_text("kind: PodList\nitems:\n- metadata: {name: b}\n---\nkind: Pod\nmetadata: {name: c}\n")
    assert [o["metadata"]["name"] for o in load_seed(one)] == ["a"]
    assert [o["metadata"]["name"] for o in load_seed(many)] == ["b", "c"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n")
    with pytest.raises(ValueError, match="expected Kubernetes objects"):
        load_seed(bad)
