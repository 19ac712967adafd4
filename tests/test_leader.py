"""Leader election against the Kubernetes emulator: one leader at a time, prompt hand-over, no two senders."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import kubernetes.client
import pytest

from kubedingtalk.kube_client import KubeClient
from kubedingtalk.leader import LeaderElector, LeaseSettings
from kubedingtalk.testing.kube_api import Grant, KubeApiServer
from tests.helpers import LogCapture, TcpProxy, wait_for

SHORT = {"lease_duration": 2.0, "renew_deadline": 1.0, "retry_period": 0.1}


def client_to(url: str) -> KubeClient:
    cfg = kubernetes.client.Configuration()
    cfg.host = url
    cfg.api_key["BearerToken"] = "Bearer emulator-admin-token"
    return KubeClient(cfg, read_timeout=0.5, connect_timeout=0.5)


class Overlap:
    """Samples both electors continuously; remembers if both ever led at once."""

    def __init__(self, a: LeaderElector, b: LeaderElector) -> None:
        self.a, self.b, self.both = a, b, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            if self.a.is_leader() and self.b.is_leader():
                self.both = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


@pytest.fixture()
def electors() -> Iterator[list[LeaderElector]]:
    made: list[LeaderElector] = []
    yield made
    for elector in made:
        elector.stop()
    for elector in made:
        elector.join(5)


def elect(made: list[LeaderElector], client: KubeClient, identity: str) -> LeaderElector:
    elector = LeaderElector(client, LeaseSettings("kube-system", "kube-dingtalk", identity, **SHORT))
    elector.start()
    made.append(elector)
    return elector


def test_one_replica_acquires_the_lease(kube_api: KubeApiServer, electors: list[LeaderElector]) -> None:
    a = elect(electors, client_to(kube_api.url), "pod-a")
    wait_for(a.is_leader)
    lease = kube_api.get("leases", "kube-system", "kube-dingtalk")
    assert lease["spec"]["holderIdentity"] == "pod-a" and lease["spec"]["leaseDurationSeconds"] == 2


def test_two_replicas_never_lead_together_and_a_clean_stop_hands_over(kube_api: KubeApiServer,
                                                                      electors: list[LeaderElector]) -> None:
    a = elect(electors, client_to(kube_api.url), "pod-a")
    wait_for(a.is_leader)
    b = elect(electors, client_to(kube_api.url), "pod-b")
    overlap = Overlap(a, b)
    try:
        renewals = kube_api.request_count("update", "leases")
        wait_for(lambda: kube_api.request_count("update", "leases") > renewals + 20, what="many renewals")
        assert a.is_leader() and not b.is_leader()
        a.stop()
        a.join(5)
        wait_for(b.is_leader, timeout=1.0, what="the standby taking the released lease")
    finally:
        overlap.close()
    assert not overlap.both
    assert kube_api.get("leases", "kube-system", "kube-dingtalk")["spec"]["holderIdentity"] == "pod-b"


def test_a_leader_cut_off_from_the_api_stops_leading_before_the_standby_takes_over(
        kube_api: KubeApiServer, electors: list[LeaderElector]) -> None:
    proxy = TcpProxy(kube_api.host, kube_api.port)
    try:
        a = elect(electors, client_to(proxy.url), "pod-a")
        wait_for(a.is_leader)
        b = elect(electors, client_to(kube_api.url), "pod-b")
        overlap = Overlap(a, b)
        wait_for(lambda: kube_api.request_count("get", "leases") > 10)
        proxy.cut()  # the leader's renewals now fail; it is as good as dead to the cluster
        wait_for(lambda: not a.is_leader(), timeout=SHORT["renew_deadline"] + 0.5, what="the old leader to stand down")
        wait_for(b.is_leader, timeout=SHORT["lease_duration"] + 1.0, what="the standby within the lease duration")
        overlap.close()
        assert not overlap.both and not a.is_leader()
    finally:
        proxy.close()


def test_a_forbidden_lease_is_reported_once_and_never_leads(kube_api: KubeApiServer, electors: list[LeaderElector],
                                                            logs: LogCapture) -> None:
    kube_api.tokens["pods-only"] = Grant(user="pods-only", verbs=frozenset({"get", "list", "watch"}),
                                         namespaces=frozenset({"default"}))
    cfg = kubernetes.client.Configuration()
    cfg.host = kube_api.url
    cfg.api_key["BearerToken"] = "Bearer pods-only"
    a = elect(electors, KubeClient(cfg), "pod-a")
    wait_for(lambda: kube_api.request_count("get", "leases") >= 5)
    assert not a.is_leader()
    (line,) = logs.events("cannot take part in leader election")
    assert line["level"] == "error" and "forbidden" in line["error"]
