"""Probes and metrics of a real pipeline against the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from kubedingtalk.config import Settings
from kubedingtalk.health import HealthServer
from kubedingtalk.service import Component, Pipeline, build, components
from kubedingtalk.testing import pods
from kubedingtalk.testing.dingtalk import DingTalkServer
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import wait_for


class Started:
    def __init__(self, pipeline: Pipeline, parts: list[Component]) -> None:
        self.pipeline, self.parts = pipeline, parts
        self.health = parts[0]
        assert isinstance(self.health, HealthServer)

    def get(self, path: str) -> tuple[int, str]:
        resp = urllib3.request("GET", f"http://127.0.0.1:{self.health.port}{path}", timeout=5, retries=False)
        return resp.status, resp.data.decode()


@pytest.fixture()
def service(kube_api: KubeApiServer, dingtalk: DingTalkServer, tmp_path: Path) -> Iterator[Started]:
    env = {"KUBE_USE_KUBECONFIG": "true", "KUBECONFIG": str(kube_api.write_kubeconfig(tmp_path / "k")),
           "DINGTALK_TOKEN": dingtalk.webhook_url("test-token"), "HTTP_PORT": "0"}
    settings = Settings.from_env(env)
    pipeline = build(settings, env)
    started = Started(pipeline, components(pipeline, settings))
    started.health.start()
    yield started
    for part in reversed(started.parts):
        if part.is_alive():
            part.stop()
            part.join(5)


def test_not_ready_until_every_informer_has_listed(service: Started, kube_api: KubeApiServer) -> None:
    status, body = service.get("/readyz")
    assert status == 503 and "informer/* has not completed its first list" in body
    for part in service.parts[1:]:
        part.start()
    wait_for(lambda: service.get("/readyz")[0] == 200)
    assert service.get("/healthz") == (200, "ok")


def test_liveness_fails_when_a_thread_has_died(service: Started) -> None:
    for part in service.parts[1:]:
        part.start()
    wait_for(lambda: service.get("/healthz")[0] == 200)
    service.pipeline.scanner.stop()
    service.pipeline.scanner.join(5)
    status, body = service.get("/healthz")
    assert status == 500 and "scanner is not running" in body


def test_metrics_describe_the_pipeline_without_pod_names(service: Started, kube_api: KubeApiServer,
                                                         dingtalk: DingTalkServer) -> None:
    kube_api.create(pods.pod("web"))
    for part in service.parts[1:]:
        part.start()
    wait_for(lambda: service.pipeline.informers[0].health.synced)
    kube_api.apply(pods.err_image_pull(pods.pod("web")))
    dingtalk.wait_for_messages(1)
    wait_for(lambda: 'kubedingtalk_messages_total{outcome="sent"} 1.0' in service.get("/metrics")[1])
    _, text = service.get("/metrics")
    for line in ('kubedingtalk_pods_cached 1.0', 'kubedingtalk_informer_synced{scope="*"} 1.0',
                 'kubedingtalk_incidents_open 1.0', 'kubedingtalk_leader 1.0', 'kubedingtalk_send_queue_depth 0.0',
                 'kubedingtalk_relists_total{cause="initial",scope="*"} 1.0',
                 'kubedingtalk_dingtalk_request_seconds_count 1.0'):
        assert line in text, line
    assert 'kubedingtalk_watch_events_total{scope="*",type="MODIFIED"}' in text
    assert "web-" not in text
