"""The alert state in a ConfigMap of the Kubernetes emulator: round trip, conflicts, size, corruption, permissions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedingtalk.config import Settings
from kubedingtalk.kube_client import KubeClient, load
from kubedingtalk.ledger import IncidentKey, Ledger, LedgerSettings
from kubedingtalk.rules import Finding
from kubedingtalk.state import DATA_KEY, MANAGED_BY, StatePersister, StateStore
from kubedingtalk.testing.kube_api import Grant, KubeApiServer
from tests.helpers import LogCapture, wait_for

NAME = "kube-dingtalk-state"


def client_for(api: KubeApiServer, tmp_path: Path, token: str | None = None) -> KubeClient:
    return load(Settings(kube_use_kubeconfig=True),
                {"KUBECONFIG": str(api.write_kubeconfig(tmp_path / "kubeconfig", token))})


def ledger_with(open_incidents: int, closed: int = 0, pods: int = 3) -> Ledger:
    ledger = Ledger(LedgerSettings(flood_expire=60.0))
    for i in range(open_incidents + closed):
        f = Finding("prod", f"w{i}-0", "Deployment", f"w{i}", "waiting", "CrashLoopBackOff", "m" * 50)
        ledger.update(IncidentKey.of(f), {f"w{i}-{p}": f for p in range(pods)}, float(i))
        if i >= open_incidents:
            ledger.update(IncidentKey.of(f), {}, float(i) + 1)
    return ledger


@pytest.fixture()
def store(kube_api: KubeApiServer, tmp_path: Path) -> StateStore:
    return StateStore(client_for(kube_api, tmp_path), "kube-system", NAME)


def test_round_trip_through_the_configmap(store: StateStore, kube_api: KubeApiServer) -> None:
    assert store.load() is None  # nothing yet: a fresh start
    ledger = ledger_with(2, closed=1)
    assert store.save(ledger.export()) and store.save(ledger.export())  # create, then update
    obj = kube_api.get("configmaps", "kube-system", NAME)
    assert obj["metadata"]["labels"] == MANAGED_BY
    loaded = store.load()
    assert loaded is not None and sorted(loaded.open_keys()) == sorted(ledger.open_keys()) and len(loaded) == 3


def test_a_conflicting_write_is_reread_and_written_again(store: StateStore, kube_api: KubeApiServer,
                                                         logs: LogCapture) -> None:
    assert store.save(ledger_with(1).export())
    theirs = kube_api.get("configmaps", "kube-system", NAME)
    theirs["data"]["note"] = "someone else was here"
    kube_api.apply(theirs)
    assert store.save(ledger_with(2).export())
    assert logs.events("alert state changed under us; re-reading before writing again")
    assert len(json.loads(kube_api.get("configmaps", "kube-system", NAME)["data"][DATA_KEY])["incidents"]) == 2


def test_state_over_the_limit_is_pruned_recovered_first(kube_api: KubeApiServer, tmp_path: Path,
                                                        logs: LogCapture) -> None:
    small = StateStore(client_for(kube_api, tmp_path), "kube-system", NAME, max_bytes=20_000)
    ledger = ledger_with(30, closed=200, pods=200)
    assert len(json.dumps(ledger.export())) > 20_000
    assert small.save(ledger.export())
    stored = kube_api.get("configmaps", "kube-system", NAME)["data"][DATA_KEY]
    assert len(stored.encode()) <= 20_000
    incidents = json.loads(stored)["incidents"]
    assert incidents and all(i["open"] for i in incidents)
    assert logs.events("alert state pruned to fit the ConfigMap")
    hopeless = StateStore(client_for(kube_api, tmp_path), "kube-system", "other", max_bytes=10)
    assert not hopeless.save(ledger.export())
    assert logs.events("alert state too large even when pruned; not written")


def test_corrupt_state_is_ignored_and_overwritten(store: StateStore, kube_api: KubeApiServer,
                                                  logs: LogCapture) -> None:
    kube_api.create({"kind": "ConfigMap", "metadata": {"name": NAME, "namespace": "kube-system",
                                                       "labels": dict(MANAGED_BY)}, "data": {DATA_KEY: "{not json"}})
    assert store.load() is None
    assert logs.events("ignoring unreadable alert state; starting fresh")
    assert store.save(ledger_with(1).export())
    assert store.load() is not None


def test_a_foreign_configmap_is_left_untouched(store: StateStore, kube_api: KubeApiServer,
                                               logs: LogCapture) -> None:
    kube_api.create({"kind": "ConfigMap", "metadata": {"name": NAME, "namespace": "kube-system"},
                     "data": {"app.conf": "someone's settings"}})
    assert store.load() is None and not store.usable
    assert not store.save(ledger_with(1).export())
    assert kube_api.get("configmaps", "kube-system", NAME)["data"] == {"app.conf": "someone's settings"}
    assert len(logs.events("alert state will not be persisted; running with memory-only state")) == 1


def test_without_permission_it_logs_once_and_runs_memory_only(kube_api: KubeApiServer, tmp_path: Path,
                                                              logs: LogCapture) -> None:
    kube_api.tokens["pods-only"] = Grant(user="pods-only", verbs=frozenset({"get", "list", "watch"}),
                                         namespaces=frozenset({"default"}))
    store = StateStore(client_for(kube_api, tmp_path, "pods-only"), "kube-system", NAME)
    assert store.load() is None
    assert not store.save(ledger_with(1).export())
    assert not store.usable
    (line,) = logs.events("alert state will not be persisted; running with memory-only state")
    assert "forbidden" in line["reason"]


def test_the_persister_batches_and_writes_only_while_allowed(store: StateStore) -> None:
    allowed = [False]
    persister = StatePersister(store, may_write=lambda: allowed[0], interval=0.05)
    persister.start()
    try:
        for n in range(1, 20):
            persister.offer(ledger_with(n).export())
        assert not persister.flush() and store.writes == 0
        allowed[0] = True
        wait_for(lambda: store.writes == 1)
        assert persister.flush() is False  # nothing new since
        persister.offer(ledger_with(3).export())
    finally:
        persister.stop()
        persister.join(5)
    assert store.writes == 2  # the last offer is written at stop
