"""The command line as a user meets it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kubedingtalk.testing.dingtalk import DingTalkServer
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "KUBE_", "TICK_", "LOG_"))}


def kubedingtalk(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubedingtalk", *args], env={**ENV, **env},
                          capture_output=True, text=True, timeout=60)


def test_config_names_every_bad_variable_and_exits_2() -> None:
    done = kubedingtalk("config", TICK_RATE="abc", KUBE_NAMESPACES_ONLY="[1", DINGTALK_TOKEN="t")
    assert done.returncode == 2
    assert "TICK_RATE='abc'" in done.stderr and "KUBE_NAMESPACES_ONLY='[1'" in done.stderr
    assert done.stdout == ""


def test_config_prints_settings_without_the_token() -> None:
    done = kubedingtalk("config", DINGTALK_TOKEN="https://oapi.dingtalk.com/robot/send?access_token=abc",
                        KUBE_NAMESPACES_ONLY="default,prod")
    assert done.returncode == 0, done.stderr
    assert "abc" not in done.stdout + done.stderr
    shown = json.loads(done.stdout)
    assert shown["DINGTALK_TOKEN"] == "***" and shown["KUBE_NAMESPACES_ONLY"] == ["default", "prod"]
    assert shown["TICK_RATE"] == 15000


def test_run_with_bad_settings_exits_2_before_starting() -> None:
    done = kubedingtalk("run", HTTP_PORT="x", DINGTALK_TOKEN="t")
    assert done.returncode == 2 and "HTTP_PORT='x'" in done.stderr


def test_help_lists_the_commands() -> None:
    done = kubedingtalk("--help")
    assert done.returncode == 0 and "run" in done.stdout and "config" in done.stdout


def test_run_without_a_cluster_exits_2_naming_the_setting() -> None:
    done = kubedingtalk("run", DRY_RUN="true")
    assert done.returncode == 2
    (problem,) = [json.loads(line) for line in done.stdout.splitlines() if '"cannot start"' in line]
    assert "KUBE_USE_CLUSTER=true: not running in a cluster" in problem["problem"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_service_cleanly(signum: signal.Signals, kube_api: KubeApiServer, tmp_path: Path) -> None:
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**ENV, "DRY_RUN": "true", "KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kubeconfig), "HTTP_PORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "kubedingtalk"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        wait_for(lambda: lines.append(proc.stdout.readline()) or "service started" in lines[-1], timeout=30)
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    started = json.loads(lines[-1])
    assert started["event"] == "service started" and started["level"] == "info"


def test_a_busy_http_port_stops_start_up_with_exit_2(kube_api: KubeApiServer, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = kubedingtalk("run", DRY_RUN="true", KUBE_USE_KUBECONFIG="true", HTTP_PORT=str(port),
                            KUBECONFIG=str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")))
    assert done.returncode == 2
    (problem,) = [json.loads(line) for line in done.stdout.splitlines() if '"cannot start"' in line]
    assert problem["problem"].startswith(f"HTTP_PORT={port}: cannot listen")


def test_send_test_posts_one_signed_message_and_exits_0(dingtalk: DingTalkServer) -> None:
    done = kubedingtalk("send-test", DINGTALK_TOKEN=dingtalk.webhook_url("signed"), DINGTALK_SECRET="SECtest",
                        CLUSTER_NAME="prod-eu")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["errcode"] == 0
    (msg,) = dingtalk.messages
    assert msg.title == "kube-dingtalk test for prod-eu"


def test_send_test_explains_a_refusal_and_exits_1(dingtalk: DingTalkServer) -> None:
    done = kubedingtalk("send-test", DINGTALK_TOKEN=dingtalk.webhook_url("keyworded"))
    assert done.returncode == 1
    assert json.loads(done.stdout)["errcode"] == 310000
    assert "set DINGTALK_KEYWORD" in done.stderr and "keyworded" not in done.stderr + done.stdout
    assert dingtalk.messages == []
