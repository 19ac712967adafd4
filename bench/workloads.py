"""What the benchmarks feed the service: realistic ~5 KB pods, process memory, the emulator as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubedingtalk.testing import pods
from kubedingtalk.testing.waiting import poll

NAMESPACE = "bench"


def _fields(*paths: str) -> dict[str, Any]:
    """A managedFields ``fieldsV1`` tree: nested ``f:``/``k:`` keys ending in ``{}``, as the API server writes."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("/"):
            node = node.setdefault(part, {})
    return tree


_SPEC_FIELDS = _fields(
    "f:metadata/f:generateName", "f:metadata/f:labels/f:app", "f:metadata/f:labels/f:pod-template-hash",
    "f:metadata/f:ownerReferences/k:{\"uid\":\"0\"}", "f:spec/f:containers/k:{\"name\":\"app\"}/f:env/k:{}",
    "f:spec/f:containers/k:{\"name\":\"app\"}/f:image", "f:spec/f:containers/k:{\"name\":\"app\"}/f:ports",
    "f:spec/f:containers/k:{\"name\":\"app\"}/f:livenessProbe/f:httpGet/f:path",
    "f:spec/f:containers/k:{\"name\":\"app\"}/f:readinessProbe/f:httpGet/f:port",
    "f:spec/f:containers/k:{\"name\":\"app\"}/f:resources/f:requests/f:cpu",
    "f:spec/f:dnsPolicy", "f:spec/f:enableServiceLinks", "f:spec/f:restartPolicy", "f:spec/f:schedulerName",
    "f:spec/f:securityContext", "f:spec/f:terminationGracePeriodSeconds")
_STATUS_FIELDS = _fields(
    "f:status/f:conditions/k:{\"type\":\"Ready\"}/f:status", "f:status/f:conditions/k:{\"type\":\"Ready\"}/f:type",
    "f:status/f:containerStatuses", "f:status/f:hostIP", "f:status/f:phase", "f:status/f:podIP",
    "f:status/f:podIPs/k:{\"ip\":\"0\"}/f:ip", "f:status/f:startTime")


def big_pod(name: str, namespace: str = NAMESPACE, workload: str | None = None) -> dict[str, Any]:
    """A pod the size and shape real ones have: ~5 KB of nested structure, managed fields included.

    Its cost to parse comes from its many small objects (env, probes, volumes, managed
    fields), as in a real cluster, not from one big string.
    """
    pod = pods.pod(name, namespace, workload=workload, labels={"team": "bench", "tier": "web"})
    meta, spec = pod["metadata"], pod["spec"]
    meta["uid"] = f"{abs(hash(name)) % 10**8:08d}-1111-4222-8333-444455556666"
    meta["generateName"] = meta["name"].rsplit("-", 1)[0] + "-"
    meta["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
         "time": meta["creationTimestamp"], "fieldsType": "FieldsV1", "fieldsV1": _SPEC_FIELDS},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": meta["creationTimestamp"],
         "fieldsType": "FieldsV1", "fieldsV1": _STATUS_FIELDS, "subresource": "status"}]
    container = spec["containers"][0]
    container.update({
        "env": [{"name": f"SETTING_{i:02d}", "value": f"value-{i}"} for i in range(10)]
        + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                          "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5,
                           "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                         {"name": "config", "mountPath": "/etc/app"}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"})
    spec.update({
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                          "fieldPath": "metadata.namespace"}}]}}]}},
            {"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}}],
        "tolerations": [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300} for t in ("not-ready", "unreachable")],
        "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0, "securityContext": {}})
    pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]
    pod["status"]["hostIPs"] = [{"ip": pod["status"]["hostIP"]}]
    return pod


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc (Linux): what the kernel says the process really holds."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


class EmulatorProcess:
    """The Kubernetes emulator in its own process, so its CPU does not count against the measured client."""

    def __init__(self, workdir: Path, seed: list[dict[str, Any]]) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        seed_path = workdir / "seed.json"
        seed_path.write_text(json.dumps({"kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, *seed]}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubedingtalk.testing.kube_api", "--kubeconfig", str(self.kubeconfig),
             "--seed", str(seed_path), "--bookmark-interval", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.proc.kill()
            raise RuntimeError(f"the emulator did not start: {line}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_until(condition: Any, timeout: float, what: str) -> None:
    if not poll(condition, timeout, interval=0.005):
        raise TimeoutError(f"benchmark timed out waiting for {what}")
