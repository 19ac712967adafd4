"""Informers against the Kubernetes emulator on real sockets: every reflector rule has a test that fails without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedingtalk.cache import PodCache
from kubedingtalk.config import Settings
from kubedingtalk.informer import Backoff, Informer, InformerOptions, informers
from kubedingtalk.kube_client import KubeClient, load
from kubedingtalk.testing import pods
from kubedingtalk.testing.kube_api import Grant, KubeApiServer
from tests.helpers import LogCapture, wait_for

FAST = InformerOptions(inactivity=5.0, forbidden_retry=0.3, backoff=lambda: Backoff(initial=0.05, cap=0.2))


def client_for(api: KubeApiServer, tmp_path: Path, token: str | None = None) -> KubeClient:
    path = api.write_kubeconfig(tmp_path / "kubeconfig", token)
    return load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(path)})


@pytest.fixture()
def client(kube_api: KubeApiServer, tmp_path: Path) -> KubeClient:
    return client_for(kube_api, tmp_path)


class Running:
    """Informers started for a test and always stopped after it."""

    def __init__(self) -> None:
        self.started: list[Informer] = []

    def __call__(self, client: KubeClient, cache: PodCache, namespace: str | None,
                 options: InformerOptions = FAST) -> Informer:
        informer = Informer(client, cache, namespace, options)
        informer.start()
        self.started.append(informer)
        return informer


@pytest.fixture()
def run() -> Iterator[Running]:
    running = Running()
    yield running
    for informer in running.started:
        informer.stop()
    for informer in running.started:
        informer.join(5)


def names(cache: PodCache) -> set[str]:
    return {name for _, name in cache.list_keys()}


def test_lists_then_follows_the_watch(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    kube_api.create(pods.pod("web", owner=None))
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced and cache.synced("default"), what="synced")
    assert names(cache) == {"web"}
    kube_api.apply(pods.crash_loop(pods.pod("web", owner=None)))
    kube_api.create(pods.pod("api", owner=None))
    wait_for(lambda: names(cache) == {"web", "api"}, what="the new pod")
    record = wait_for(lambda: (r := cache.get(("default", "web"))) and r.containers[0].waiting_reason and r)
    assert record.containers[0].waiting_reason == "CrashLoopBackOff"
    kube_api.delete("pods", "default", "api")
    wait_for(lambda: names(cache) == {"web"}, what="the deletion")
    assert kube_api.request_count("list") == 1


def test_resumes_from_a_bookmark_after_a_drop_without_relisting(kube_api: KubeApiServer, client: KubeClient,
                                                                 run: Running) -> None:
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    # Writes in another namespace move the resourceVersion without any event for this watch;
    # only a bookmark tells the informer about the newer version.
    for i in range(5):
        kube_api.create(pods.pod(f"elsewhere-{i}", namespace="kube-system", owner=None))
    latest = kube_api.store.resource_version
    marks = informer.health.events.get("BOOKMARK", 0)
    wait_for(lambda: informer.health.events.get("BOOKMARK", 0) > marks + 1, what="a bookmark after the writes")
    kube_api.compact()  # anything older than `latest` is now 410 Gone
    assert kube_api.store.resource_version == latest
    kube_api.close_watches()
    kube_api.create(pods.pod("after-drop", owner=None))
    wait_for(lambda: "after-drop" in names(cache), what="the pod created after the drop")
    assert kube_api.request_count("list") == 1
    assert informer.health.relists == {"initial": 1}
    assert informer.health.watch_restarts.get("dropped", 0) + informer.health.watch_restarts.get("error", 0) >= 1


def test_events_while_disconnected_are_not_missed(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    kube_api.stall_watches()
    kube_api.create(pods.pod("during-outage", owner=None))
    kube_api.close_watches()
    kube_api.stall_watches(False)
    wait_for(lambda: "during-outage" in names(cache))
    assert kube_api.request_count("list") == 1


def test_410_inside_the_stream_relists_and_replaces(kube_api: KubeApiServer, client: KubeClient,
                                                    run: Running) -> None:
    for name in ("a", "b", "c"):
        kube_api.create(pods.pod(name, owner=None))
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: names(cache) == {"a", "b", "c"})
    # While the stream is stalled, "b" is deleted and the history is compacted, so no DELETED
    # event can ever reach the informer: only the re-list can tell it "b" is gone.
    kube_api.stall_watches()
    kube_api.delete("pods", "default", "b")
    kube_api.create(pods.pod("d", owner=None))
    kube_api.compact()
    seq = cache.seq
    kube_api.expire_watches()
    kube_api.stall_watches(False)
    wait_for(lambda: names(cache) == {"a", "c", "d"}, what="the re-listed state")
    assert informer.health.relists == {"initial": 1, "expired": kube_api.request_count("list") - 1}
    changed = cache.changes_since(seq)
    assert ("default", "b") in changed.keys and cache.get(("default", "b")) is None


def test_410_at_watch_start_relists(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    kube_api.create(pods.pod("a", owner=None))
    kube_api.expire_next(watch_count=1)
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.relists.get("expired", 0) == 1 and kube_api.request_count("list") == 2)
    kube_api.create(pods.pod("b", owner=None))
    wait_for(lambda: names(cache) == {"a", "b"})


def test_expired_continue_token_restarts_the_list(kube_api: KubeApiServer, client: KubeClient,
                                                  run: Running) -> None:
    for i in range(12):
        kube_api.create(pods.pod(f"p{i}", owner=None))
    kube_api.expire_next(continue_count=1)  # the second page's continue token has expired
    cache = PodCache()
    informer = run(client, cache, "default", InformerOptions(page_size=5, backoff=FAST.backoff))
    wait_for(lambda: informer.health.synced)
    assert len(cache) == 12
    assert kube_api.request_count("list") == 1 + 1 + 3  # one page, the expired one, three pages afresh
    assert informer.health.relists == {"initial": 1}


def test_a_silent_stream_is_dropped_and_resumed(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    cache = PodCache()
    options = InformerOptions(inactivity=0.5, backoff=FAST.backoff)
    informer = run(client, cache, "default", options)
    wait_for(lambda: informer.health.synced)
    kube_api.stall_watches()
    wait_for(lambda: informer.health.watch_restarts.get("inactive", 0) >= 1, what="the inactivity watchdog")
    kube_api.stall_watches(False)
    kube_api.create(pods.pod("late", owner=None))
    wait_for(lambda: "late" in names(cache))
    assert kube_api.request_count("list") == 1


def test_forbidden_namespace_is_logged_once_and_retried_slowly_while_others_work(tmp_path: Path,
                                                                                 logs: LogCapture,
                                                                                 run: Running) -> None:
    grant = Grant(user="team", namespaces=frozenset({"default"}))
    with KubeApiServer(bookmark_interval=0.2, tokens={"team-token": grant}) as api:
        api.ensure_namespace("payments")
        client = client_for(api, tmp_path, "team-token")
        cache = PodCache()
        allowed = run(client, cache, "default")
        denied = run(client, cache, "payments")
        wait_for(lambda: allowed.health.synced)
        wait_for(lambda: api.request_count("list") >= 4, what="a few retries of the forbidden list")
        api.create(pods.pod("web", owner=None))
        wait_for(lambda: "web" in names(cache), what="the allowed namespace carrying on")
        failures = logs.events("cannot read pods")
        assert len(failures) == 1
        assert failures[0]["namespace"] == "payments" and failures[0]["status"] == 403
        assert failures[0]["verb"] == "list" and "forbidden" in failures[0]["error"]
        assert not denied.health.synced and not cache.synced("payments")
        assert denied.health.failing is not None and denied.is_alive()
        # At one retry per 0.3 s, a hot loop would have made hundreds of requests by now.
        assert api.request_count("list") < 20


def test_server_errors_back_off_then_recover(kube_api: KubeApiServer, client: KubeClient, run: Running,
                                             logs: LogCapture) -> None:
    kube_api.create(pods.pod("a", owner=None))
    kube_api.fail_next(3, 500)
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    assert kube_api.request_count("list") == 4
    assert informer.health.failing is None
    assert len(logs.events("cannot read pods")) == 1 and len(logs.events("reading pods again")) == 1


def test_429_retry_after_is_honoured(kube_api: KubeApiServer, client: KubeClient, run: Running,
                                     logs: LogCapture) -> None:
    kube_api.fail_next(1, 429, retry_after=1)
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    assert kube_api.request_count("list") == 2
    (failure,) = logs.events("cannot read pods")
    assert failure["status"] == 429 and failure["retry_in_s"] >= 1.0


def test_backoff_doubles_with_jitter_caps_and_resets_after_health() -> None:
    now = [0.0]
    backoff = Backoff(initial=0.8, cap=30.0, reset_after=120.0, jitter=0.5, clock=lambda: now[0], rand=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(8)] == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    now[0] += 121
    assert backoff.next_delay() == 0.8
    jittered = Backoff(initial=1.0, jitter=0.5, rand=lambda: 1.0)
    assert jittered.next_delay() == 1.5


def test_survives_an_api_server_restart(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    kube_api.restart()
    kube_api.create(pods.pod("after-restart", owner=None))
    wait_for(lambda: "after-restart" in names(cache))
    assert informer.is_alive()


def test_paginates_thousands_of_pods(kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    for i in range(2300):
        kube_api.create(pods.pod(f"p{i}", owner=None))
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced, timeout=30)
    assert len(cache) == 2300
    assert kube_api.request_count("list") == 5  # pages of 500


def test_malformed_objects_are_skipped_and_the_stream_goes_on(kube_api: KubeApiServer, client: KubeClient,
                                                               run: Running, logs: LogCapture) -> None:
    broken = pods.pod("broken", owner=None)
    broken["status"]["containerStatuses"] = "not-a-list"
    kube_api.create(broken)
    cache = PodCache()
    informer = run(client, cache, "default")
    wait_for(lambda: informer.health.synced)
    bad = pods.pod("bad-restarts", owner=None)
    bad["status"]["containerStatuses"][0]["restartCount"] = "many"
    kube_api.create(bad)
    kube_api.create(pods.pod("good", owner=None))
    wait_for(lambda: "good" in names(cache))
    assert names(cache) == {"good"}
    assert informer.health.skipped == 2
    assert {line["error"] for line in logs.events("skipping malformed pod")} == {
        "status.containerStatuses is str, expected a list",
        "container app: restartCount or exitCode is not a number"}


def test_stop_ends_a_blocked_watch_promptly(kube_api: KubeApiServer, client: KubeClient) -> None:
    cache = PodCache()
    informer = Informer(client, cache, "default", InformerOptions(inactivity=60.0))
    informer.start()
    wait_for(lambda: informer.health.synced and kube_api.open_watches == 1)
    kube_api.stall_watches()
    informer.stop()
    informer.join(1.0)
    assert not informer.is_alive()


def test_cluster_wide_informer_applies_exclusions_and_label_selector_at_the_source(
        kube_api: KubeApiServer, client: KubeClient, run: Running) -> None:
    kube_api.ensure_namespace("payments")
    kube_api.create(pods.pod("web", owner=None, labels={"team": "a"}))
    kube_api.create(pods.pod("billing", namespace="payments", owner=None, labels={"team": "a"}))
    kube_api.create(pods.pod("dns", namespace="kube-system", owner=None, labels={"team": "a"}))
    kube_api.create(pods.pod("other-team", owner=None, labels={"team": "b"}))
    cache = PodCache()
    options = InformerOptions(label_selector="team=a", exclude=frozenset({"kube-system"}), backoff=FAST.backoff)
    (informer,) = informers(client, cache, (), options)
    run.started.append(informer)
    informer.start()
    wait_for(lambda: informer.health.synced)
    assert set(cache.list_keys()) == {("default", "web"), ("payments", "billing")}
    assert cache.synced("payments") and cache.synced("anything")
    kube_api.create(pods.pod("dns-2", namespace="kube-system", owner=None, labels={"team": "a"}))
    kube_api.create(pods.pod("api", owner=None, labels={"team": "a"}))
    wait_for(lambda: ("default", "api") in cache.list_keys())
    assert ("kube-system", "dns-2") not in cache.list_keys()


def test_one_informer_per_configured_namespace(client: KubeClient) -> None:
    made = informers(client, PodCache(), ("default", "payments"), FAST)
    assert [i.namespace for i in made] == ["default", "payments"]
    assert [i.name for i in made] == ["informer/default", "informer/payments"]


def test_resuming_from_a_known_resource_version_skips_the_list(kube_api: KubeApiServer, client: KubeClient,
                                                               run: Running) -> None:
    kube_api.create(pods.pod("before", owner=None))
    point = kube_api.store.resource_version
    kube_api.create(pods.pod("after", owner=None))
    cache = PodCache()
    informer = Informer(client, cache, "default", FAST, resource_version=str(point))
    run.started.append(informer)
    informer.start()
    wait_for(lambda: "after" in names(cache))
    assert names(cache) == {"after"} and kube_api.request_count("list") == 0
