"""The pod cache: writes, atomic replacement per scope, and "what changed since" for the scanner."""

from __future__ import annotations

import threading

from kubedingtalk.cache import PodCache
from kubedingtalk.records import PodRecord, from_pod
from kubedingtalk.testing import pods


def record(name: str, namespace: str = "default", **status: str) -> PodRecord:
    pod = pods.pod(name, namespace, owner=None)
    pod["status"].update(status)
    return from_pod(pod)


def test_upsert_get_delete_and_changes_in_order() -> None:
    cache = PodCache()
    cache.upsert(record("a"))
    cache.upsert(record("b"))
    start = cache.seq
    cache.upsert(record("a", phase="Failed"))
    cache.delete(("default", "b"))
    cache.delete(("default", "never-existed"))
    changes = cache.changes_since(start)
    assert changes.complete and changes.keys == [("default", "a"), ("default", "b")]
    assert changes.seq == cache.seq == start + 2
    assert cache.get(("default", "a")).phase == "Failed"  # type: ignore[union-attr]
    assert cache.get(("default", "b")) is None and len(cache) == 1
    assert cache.changes_since(cache.seq).keys == []


def test_a_key_written_twice_is_reported_once() -> None:
    cache = PodCache()
    for phase in ("Pending", "Running", "Failed"):
        cache.upsert(record("a", phase=phase))
    assert cache.changes_since(0).keys == [("default", "a")]


def test_replace_swaps_one_scope_and_deletes_what_vanished() -> None:
    cache = PodCache()
    a = record("a")
    cache.upsert(a)
    cache.upsert(record("b"))
    cache.upsert(record("x", "payments"))
    start = cache.seq
    gone = cache.replace("default", [a, record("c")])
    assert gone == 1
    assert set(cache.list_keys()) == {("default", "a"), ("default", "c"), ("payments", "x")}
    # "a" came back identical, so it is not reported as changed.
    assert cache.changes_since(start).keys == [("default", "b"), ("default", "c")]
    assert cache.synced("default") and not cache.synced("payments")


def test_cluster_wide_replace_covers_every_namespace() -> None:
    cache = PodCache()
    cache.upsert(record("a"))
    cache.upsert(record("x", "payments"))
    assert cache.replace(None, [record("y", "payments")]) == 2
    assert cache.list_keys() == [("payments", "y")]
    assert cache.synced("anything") and cache.synced_scopes() == {None}


def test_a_reader_behind_the_kept_deletions_is_told_to_reread_everything() -> None:
    cache = PodCache(max_tombstones=4)
    for i in range(10):
        cache.upsert(record(f"p{i}"))
    for i in range(8):
        cache.delete(("default", f"p{i}"))
    stale = cache.changes_since(0)
    assert not stale.complete and sorted(stale.keys) == [("default", "p8"), ("default", "p9")]
    recent = cache.changes_since(cache.seq - 1)
    assert recent.complete and recent.keys == [("default", "p7")]


def test_wait_for_change_wakes_on_a_write_and_times_out_without_one() -> None:
    cache = PodCache()
    assert cache.wait_for_change(cache.seq, 0.01) is False
    seq = cache.seq
    writer = threading.Timer(0.05, lambda: cache.upsert(record("a")))
    writer.start()
    assert cache.wait_for_change(seq, 5.0) is True
    writer.join()
