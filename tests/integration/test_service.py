"""The whole service on real sockets: Kubernetes emulator -> informers -> scanner -> sender -> DingTalk emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedingtalk.config import Settings
from kubedingtalk.service import Pipeline, Service, build
from kubedingtalk.testing import pods
from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for

TOKEN, SECRET = "e2e-robot-token-0123456789", "SECe2e0123456789abcdef"


@pytest.fixture()
def robot() -> Iterator[DingTalkServer]:
    with DingTalkServer([Robot(TOKEN, secret=SECRET, keywords=("k8s",))]) as server:
        yield server


def environment(kube: KubeApiServer, robot: DingTalkServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Default settings, except where the cluster and the robot are."""
    return {"KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
            "DINGTALK_TOKEN": robot.webhook_url(TOKEN), "DINGTALK_SECRET": SECRET, "DINGTALK_KEYWORD": "k8s",
            "CLUSTER_NAME": "e2e", "HTTP_PORT": "0", **extra}


class Running:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.service = Service(pipeline.components, stop_timeout=15)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.service.run()))

    def __enter__(self) -> Running:
        self.thread.start()
        wait_for(lambda: all(i.health.synced for i in self.pipeline.informers) and self.pipeline.scanner.passes,
                 what="informers synced and a first scan")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.service.stop()
        self.thread.join(20)
        assert self.result == [0]


def test_a_bad_image_is_announced_within_two_seconds_and_its_recovery_once(kube_api: KubeApiServer,
                                                                           robot: DingTalkServer,
                                                                           tmp_path: Path) -> None:
    env = environment(kube_api, robot, tmp_path)
    web = pods.pod("web", "shop")
    kube_api.ensure_namespace("shop")
    kube_api.create(web)
    with Running(build(Settings.from_env(env), env)):
        started = time.monotonic()
        kube_api.apply(pods.err_image_pull(web))
        (firing,) = robot.wait_for_messages(1, timeout=2.5)
        latency = time.monotonic() - started
        assert firing.title == "k8s 🔴 ErrImagePull in shop/web" and "cluster e2e" in firing.text
        kube_api.apply(pods.image_pull_backoff(web))  # the kubelet alternates: still the same incident
        kube_api.apply(pods.healthy(web))
        messages = robot.wait_for_messages(2, timeout=3)
        assert messages[1].title.startswith("k8s ✅ Recovered: ") and messages[1].title.endswith(" in shop/web")
    assert len(robot.messages) == 2 and robot.answers == {0: 2}
    assert latency < 2.5


def test_a_healthy_rollout_and_a_storm(kube_api: KubeApiServer, robot: DingTalkServer, tmp_path: Path) -> None:
    env = environment(kube_api, robot, tmp_path, KUBE_NAMESPACES_ONLY="shop,batch")
    for ns in ("shop", "batch"):
        kube_api.ensure_namespace(ns)
    with Running(build(Settings.from_env(env), env)) as running:
        old = pods.pod("api", "shop")
        kube_api.create(old)
        kube_api.apply(pods.terminating(old))
        kube_api.create(pods.pod("api-7c9d5b8f4d-q2w3e", "shop", workload="api"))
        kube_api.delete("Pod", "shop", old["metadata"]["name"])
        for i in range(60):
            kube_api.create(pods.crash_loop(pods.pod(f"job-{i:02d}", "batch", owner="Job")))
        wait_for(lambda: running.pipeline.sender.stats["announcements_sent"] == 60, timeout=10)
    text = robot.transcript()
    assert all(f"batch/job-{i:02d}" in text for i in range(60))
    assert "shop/api" not in text
    assert len(robot.messages) <= 20 and 130101 not in robot.answers


def test_the_real_process_flushes_on_sigterm_and_keeps_the_token_out_of_its_logs(kube_api: KubeApiServer,
                                                                                  robot: DingTalkServer,
                                                                                  tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "KUBE_", "TICK_", "LOG_"))}
    env.update(environment(kube_api, robot, tmp_path))
    kube_api.create(pods.pod("web"))
    proc = subprocess.Popen([sys.executable, "-m", "kubedingtalk", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: any('"listed pods"' in line for line in out), timeout=30, what="the first list")
        kube_api.apply(pods.crash_loop(pods.pod("web")))
        robot.wait_for_messages(1, timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        reader.join(5)
    lines = [json.loads(line) for line in out if line.startswith("{")]
    assert [line["event"] for line in lines if line["event"] == "message sent"] == ["message sent"]
    assert lines[-1]["event"] == "service stopped"
    assert TOKEN not in "".join(out) and SECRET not in "".join(out)
