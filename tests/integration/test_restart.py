"""Restarts and failovers keep the alert memory: no repeated firing, no lost recovery (state in a ConfigMap)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kubedingtalk.config import Settings
from kubedingtalk.service import Pipeline, Service, build
from kubedingtalk.state import DATA_KEY
from kubedingtalk.testing import pods
from kubedingtalk.testing.dingtalk import DingTalkServer
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for


class Instance:
    """One in-process kube-dingtalk (the same pipeline ``run`` builds), started and stopped by the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.pipeline: Pipeline = build(Settings.from_env(env), env)
        self.service = Service(self.pipeline.components, stop_timeout=15)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.service.run()))
        self.thread.start()
        wait_for(lambda: all(i.health.synced for i in self.pipeline.informers) and self.pipeline.scanner.passes)

    def settled(self) -> bool:
        """Every change evaluated and nothing left to send."""
        return self.pipeline.scanner.caught_up and self.pipeline.sender.queued == 0

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(20)
        assert self.result == [0]


def environment(kube: KubeApiServer, robot: DingTalkServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
            "DINGTALK_TOKEN": robot.webhook_url("test-token"), "POD_NAMESPACE": "kube-system", **extra}


def persisted_open(kube: KubeApiServer) -> list[str]:
    try:
        cm = kube.get("configmaps", "kube-system", "kube-dingtalk-state")
    except Exception:
        return []
    return [i["key"][2] for i in json.loads(cm["data"][DATA_KEY])["incidents"] if i["open"]]


def web_announced_then_stopped(kube: KubeApiServer, robot: DingTalkServer, env: dict[str, str]) -> None:
    """A first instance sees ``web`` crash-loop, announces it, and stops (writing its state)."""
    first = Instance(env)
    kube.create(pods.crash_loop(pods.pod("web")))
    robot.wait_for_messages(1)
    first.stop()


def test_a_restart_during_an_incident_does_not_announce_it_again(kube_api: KubeApiServer, dingtalk: DingTalkServer,
                                                                tmp_path: Path) -> None:
    env = environment(kube_api, dingtalk, tmp_path)
    web_announced_then_stopped(kube_api, dingtalk, env)
    assert persisted_open(kube_api) == ["web"]
    second = Instance(env)
    try:
        kube_api.create(pods.err_image_pull(pods.pod("api")))
        dingtalk.wait_for_messages(2)
        wait_for(second.settled)
    finally:
        second.stop()
    assert [m.title for m in dingtalk.messages] == ["🔴 CrashLoopBackOff in default/web",
                                                   "🔴 ErrImagePull in default/api"]


def test_a_recovery_while_down_is_announced_once_after_start(kube_api: KubeApiServer, dingtalk: DingTalkServer,
                                                             tmp_path: Path) -> None:
    env = environment(kube_api, dingtalk, tmp_path)
    web_announced_then_stopped(kube_api, dingtalk, env)
    kube_api.apply(pods.healthy(pods.crash_loop(pods.pod("web"))))
    second = Instance(env)
    try:
        messages = dingtalk.wait_for_messages(2)
        wait_for(second.settled)
        wait_for(lambda: persisted_open(kube_api) == [], what="the recovery persisted")
    finally:
        second.stop()
    assert len(dingtalk.messages) == 2 and messages[1].title == "✅ Recovered: CrashLoopBackOff in default/web"


def test_failover_between_two_instances_neither_repeats_nor_loses(kube_api: KubeApiServer,
                                                                  dingtalk: DingTalkServer, tmp_path: Path) -> None:
    env = environment(kube_api, dingtalk, tmp_path, LEADER_ELECT="true")
    a = Instance({**env, "POD_NAME": "replica-a"})
    assert a.pipeline.leader is not None
    wait_for(a.pipeline.leader.is_leader)
    b = Instance({**env, "POD_NAME": "replica-b"})
    try:
        kube_api.create(pods.crash_loop(pods.pod("web")))
        dingtalk.wait_for_messages(1)
        wait_for(lambda: persisted_open(kube_api) == ["web"], what="the leader persisting the incident")
        a.stop()  # releases the lease after its last write
        kube_api.create(pods.err_image_pull(pods.pod("api")))  # fails while nobody leads
        assert b.pipeline.leader is not None
        wait_for(b.pipeline.leader.is_leader, timeout=10, what="the standby taking over")
        dingtalk.wait_for_messages(2)
        kube_api.apply(pods.healthy(pods.crash_loop(pods.pod("web"))))
        dingtalk.wait_for_messages(3)
        wait_for(b.settled)
    finally:
        b.stop()
    assert [m.title for m in dingtalk.messages] == ["🔴 CrashLoopBackOff in default/web",
                                                   "🔴 ErrImagePull in default/api",
                                                   "✅ Recovered: CrashLoopBackOff in default/web"]
