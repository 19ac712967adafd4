"""Two real processes with LEADER_ELECT=true: exactly one sends; kill it and the other takes over in time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import urllib3

from kubedingtalk.testing import pods
from kubedingtalk.testing.dingtalk import DingTalkServer
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for

LEASE_DURATION, RETRY = 15.0, 2.0


class Replica:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kubedingtalk", "run"], env={**env, "POD_NAME": name},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[dict[str, object]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def logged(self, event: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == event]

    def metric(self, name: str) -> float:
        port = self.logged("serving health and metrics")[0]["port"]
        text = urllib3.request("GET", f"http://127.0.0.1:{port}/metrics", timeout=5).data.decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_one_leader_sends_and_a_standby_takes_over_when_it_dies(kube_api: KubeApiServer, dingtalk: DingTalkServer,
                                                               tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "KUBE_", "TICK_", "LOG_"))}
    env = {**base, "KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kube_api.write_kubeconfig(tmp_path / "k")),
           "DINGTALK_TOKEN": dingtalk.webhook_url("test-token"), "LEADER_ELECT": "true",
           "POD_NAMESPACE": "kube-system", "HTTP_PORT": "0"}
    a = Replica("replica-a", env)
    b: Replica | None = None
    try:
        wait_for(lambda: a.logged("became the leader: this replica sends"), timeout=30)
        b = Replica("replica-b", env)
        wait_for(lambda: b is not None and b.logged("listed pods") and b.logged("serving health and metrics"),
                 timeout=30)
        kube_api.create(pods.err_image_pull(pods.pod("first")))
        dingtalk.wait_for_messages(1)
        wait_for(lambda: b is not None and b.metric('kubedingtalk_messages_total{outcome="standby_skipped"}') == 1,
                 what="the standby seeing the failure and not sending it")
        assert len(dingtalk.messages) == 1 and not b.logged("message sent")

        a.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: b is not None and b.logged("became the leader: this replica sends"),
                 timeout=LEASE_DURATION + 2 * RETRY + 2, what="the standby taking over")
        took_over = time.monotonic() - killed
        kube_api.create(pods.crash_loop(pods.pod("second")))
        messages = dingtalk.wait_for_messages(2, timeout=5)
        assert "default/second" in messages[1].title
        assert took_over <= LEASE_DURATION + 2 * RETRY + 1
    finally:
        a.close()
        if b is not None:
            b.close()
