"""``/healthz``, ``/readyz`` and ``/metrics`` on ``HTTP_PORT``, read from the pipeline when asked.

Metrics are collected at scrape time from the components' own counters, so
the hot paths carry no instrumentation; only DingTalk request latency is a
histogram the sender observes. Labels are namespaces, causes and outcomes,
never pod names: cardinality stays bounded whatever the cluster does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kubedingtalk import log

if TYPE_CHECKING:
    from kubedingtalk.service import Pipeline

_log = log.get_logger("kubedingtalk.health")


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("kubedingtalk_dingtalk_request_seconds", "Time for one request to the DingTalk robot.",
                     buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)


class _PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline, is_leader: Callable[[], bool]) -> None:
        self.pipeline, self.is_leader = pipeline, is_leader

    def collect(self) -> Iterator[Any]:
        p = self.pipeline
        events = CounterMetricFamily("kubedingtalk_watch_events", "Watch events received.", labels=["scope", "type"])
        restarts = CounterMetricFamily("kubedingtalk_watch_restarts", "Watches restarted, by cause.",
                                       labels=["scope", "cause"])
        relists = CounterMetricFamily("kubedingtalk_relists", "Full lists, by cause.", labels=["scope", "cause"])
        skipped = CounterMetricFamily("kubedingtalk_malformed_skipped", "Malformed objects or events skipped.",
                                      labels=["scope"])
        synced = GaugeMetricFamily("kubedingtalk_informer_synced", "1 once the first list is done.", labels=["scope"])
        age = GaugeMetricFamily("kubedingtalk_informer_last_event_age_seconds", "Seconds since the last event.",
                                labels=["scope"])
        now = time.monotonic()
        for informer in p.informers:
            scope, h = informer.namespace or "*", informer.health
            for kind, n in h.events.items():
                events.add_metric([scope, kind], n)
            for cause, n in h.watch_restarts.items():
                restarts.add_metric([scope, cause], n)
            for cause, n in h.relists.items():
                relists.add_metric([scope, cause], n)
            skipped.add_metric([scope], h.skipped)
            synced.add_metric([scope], 1.0 if h.synced else 0.0)
            if h.last_event is not None:
                age.add_metric([scope], now - h.last_event)
        yield from (events, restarts, relists, skipped, synced, age)
        yield GaugeMetricFamily("kubedingtalk_pods_cached", "Pods in the local cache.", value=len(p.cache))
        yield GaugeMetricFamily("kubedingtalk_failing_pods", "Pods with at least one finding.",
                                value=p.scanner.failing_pods)
        yield GaugeMetricFamily("kubedingtalk_incidents_open", "Incidents currently failing.",
                                value=p.scanner.ledger.open_incidents)
        yield CounterMetricFamily("kubedingtalk_scans", "Scanner passes.", value=p.scanner.passes)
        messages = CounterMetricFamily("kubedingtalk_messages", "Sender outcomes (sent, merged, retried, throttled, "
                                       "too_large, rejected, failed_config, undelivered, standby_skipped).",
                                       labels=["outcome"])
        outcomes = p.sender.stats.copy()
        outcomes["standby_skipped"] += p.scanner.standby_skipped
        for outcome, n in sorted(outcomes.items()):
            messages.add_metric([outcome], n)
        yield messages
        yield GaugeMetricFamily("kubedingtalk_send_queue_depth", "Announcements waiting to be sent.",
                                value=p.sender.queued)
        yield GaugeMetricFamily("kubedingtalk_leader", "1 when this replica may send.",
                                value=1.0 if self.is_leader() else 0.0)


class HealthServer:
    """The probes and metrics endpoint; a component like the others."""

    def __init__(self, pipeline: Pipeline, port: int, registry: CollectorRegistry, host: str = "0.0.0.0",
                 is_leader: Callable[[], bool] = lambda: True, wedged_after: float = 120.0) -> None:
        self.pipeline, self.registry, self.wedged_after = pipeline, registry, wedged_after
        self.name = "health"
        registry.register(_PipelineCollector(pipeline, is_leader))
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Probes every few seconds would drown the log."""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/livez"):
                    problems = server.liveness_problems()
                    self._reply(500 if problems else 200, ("\n".join(problems) or "ok").encode())
                elif path == "/readyz":
                    waiting = server.not_ready()
                    self._reply(503 if waiting else 200, ("\n".join(waiting) or "ok").encode())
                else:
                    self._reply(404, b"not found")

            def _reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="health", daemon=True)

    def liveness_problems(self) -> list[str]:
        """Dead threads, or a scanner that has not finished a pass for far longer than its tick."""
        p = self.pipeline
        problems = [f"{c.name} is not running" for c in p.components if not c.is_alive()]
        idle = p.scanner.seconds_since_pass()
        if idle is not None and idle > self.wedged_after:
            problems.append(f"scanner has not completed a pass for {idle:.0f}s")
        return problems

    def not_ready(self) -> list[str]:
        return [f"{i.name} has not completed its first list" for i in self.pipeline.informers if not i.health.synced]

    def start(self) -> None:
        self._thread.start()
        _log.info("serving health and metrics", port=self.port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()
