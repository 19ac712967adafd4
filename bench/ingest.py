"""One ingest measurement in a fresh process: the informer, or the official client's watch, on a replayed stream.

    python -m bench.ingest informer|watch KUBECONFIG COUNT    # prints events per second
    python -m bench.ingest json STREAM_FILE COUNT             # json.loads alone on the same lines

Each client runs in its own process so neither pays for the other's heap or threads.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.workloads import NAMESPACE, wait_until
from kubedingtalk.cache import PodCache
from kubedingtalk.config import Settings
from kubedingtalk.informer import Informer
from kubedingtalk.kube_client import load


def informer_rate(kubeconfig: Path, count: int) -> float:
    cache = PodCache()
    client = load(Settings(kube_use_kubeconfig=True), {"KUBECONFIG": str(kubeconfig)})
    informer = Informer(client, cache, NAMESPACE, resource_version="1")
    began = time.perf_counter()
    informer.start()
    wait_until(lambda: len(cache) == count, 600, "the informer's cache to fill")
    rate = count / (time.perf_counter() - began)
    informer.stop()
    informer.join(5)
    return rate


def watch_rate(kubeconfig: Path, count: int) -> float:
    from kubernetes import client, config, watch

    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    began = time.perf_counter()
    stream = watch.Watch()
    for seen, _event in enumerate(stream.stream(core.list_namespaced_pod, NAMESPACE, resource_version="1",
                                                timeout_seconds=600), 1):
        if seen == count:
            stream.stop()
            break
    return count / (time.perf_counter() - began)


def json_rate(stream_file: Path, count: int) -> float:
    lines = stream_file.read_bytes().splitlines()[:count]
    began = time.perf_counter()
    for line in lines:
        json.loads(line)
    return len(lines) / (time.perf_counter() - began)


def main() -> int:
    kind, path, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    rate = {"informer": informer_rate, "watch": watch_rate, "json": json_rate}[kind](path, count)
    print(round(rate, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
