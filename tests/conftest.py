"""Shared fixtures: emulators started in-process on port 0, stopped after each test."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog

from kubedingtalk import log
from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from kubedingtalk.testing.kube_api import KubeApiServer
from tests.helpers import LogCapture


@pytest.fixture()
def kube_api() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture()
def dingtalk() -> Iterator[DingTalkServer]:
    with DingTalkServer([Robot("test-token"), Robot("signed", secret="SECtest"),
                         Robot("keyworded", keywords=("k8s",))], penalty=2.0) as server:
        yield server


@pytest.fixture()
def logs() -> Iterator[LogCapture]:
    """Debug-level JSON logs into memory; the default configuration is restored afterwards."""
    stream = io.StringIO()
    log.configure("debug", "json", (), stream=stream)
    yield LogCapture(stream)
    structlog.contextvars.clear_contextvars()
    log.configure("info", "json", (), stream=io.StringIO())
