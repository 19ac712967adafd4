"""The baseline kube-slack way: list every pod in the cluster on every tick."""

from __future__ import annotations

import json

from kubedingtalk.kube_client import KubeClient


def poll_once(client: KubeClient) -> int:
    """One full list (all namespaces, no pagination, as kube-slack's listPodForAllNamespaces); pods seen."""
    resp = client.request("GET", "/api/v1/pods")
    try:
        return len(json.loads(resp.read())["items"])
    finally:
        resp.release_conn()
