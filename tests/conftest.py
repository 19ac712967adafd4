"""Shared fixtures: emulators started in-process on port 0, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from kubedingtalk.testing.kube_api import KubeApiServer


@pytest.fixture()
def kube_api() -> Iterator[KubeApiServer]:
    with KubeApiServer(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture()
def dingtalk() -> Iterator[DingTalkServer]:
    with DingTalkServer([Robot("test-token"), Robot("signed", secret="SECtest"),
                         Robot("keyworded", keywords=("k8s",))], penalty=2.0) as server:
        yield server
