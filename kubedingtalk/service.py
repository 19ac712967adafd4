"""The imperative shell's lifecycle: start the components, wait for a signal, stop them.

Components are threads with a ``start``/``stop``/``join`` life; the service
starts them in order, stops them one by one in reverse order (so what feeds a
component has stopped before it is told to finish), and reports the ones that
did not stop in time.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from prometheus_client import CollectorRegistry

from kubedingtalk import __version__, kube_client, log
from kubedingtalk.cache import PodCache
from kubedingtalk.config import ConfigError, Settings
from kubedingtalk.dingtalk import DingTalkClient
from kubedingtalk.health import HealthServer, request_histogram
from kubedingtalk.informer import Informer, InformerOptions, informers
from kubedingtalk.leader import LeaderElector, LeaseSettings
from kubedingtalk.ledger import Announcement, Ledger, LedgerSettings
from kubedingtalk.messages import Renderer
from kubedingtalk.rules import RuleSettings
from kubedingtalk.scanner import Scanner, ScannerSettings
from kubedingtalk.sender import Sender, SenderSettings
from kubedingtalk.state import StatePersister, StateStore

_log = log.get_logger("kubedingtalk.service")
EXIT_USAGE = 2


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


class Service:
    """Runs components until ``stop`` is called (by a signal handler, or a test)."""

    def __init__(self, components: Sequence[Component], stop_timeout: float = 10.0) -> None:
        self.components = list(components)
        self.stop_timeout = stop_timeout
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        started: list[Component] = []
        try:
            for component in self.components:
                component.start()
                started.append(component)
            _log.info("service started", components=[c.name for c in started])
            self._stopping.wait()
        finally:
            # One at a time, in reverse: the scanner finishes its pass before the sender is told to
            # flush, and the state is written before the lease is released. One deadline for all.
            deadline = time.monotonic() + self.stop_timeout
            stuck = []
            for component in reversed(started):
                component.stop()
                component.join(max(0.0, deadline - time.monotonic()))
                if component.is_alive():
                    stuck.append(component.name)
        if stuck:
            _log.error("components did not stop in time", components=stuck, timeout_s=self.stop_timeout)
            return 1
        _log.info("service stopped")
        return 0


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM (Kubernetes) and SIGINT (a person) both mean: stop cleanly."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("signal received, stopping", signal=signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@dataclass
class Pipeline:
    """The service's parts, cluster to robot, kept together so health checks and tests can look in."""

    cache: PodCache
    informers: list[Informer]
    scanner: Scanner  # owns the ledger (replaced by the persisted one when this replica takes over)
    sender: Sender
    persister: StatePersister
    leader: LeaderElector | None = None

    @property
    def components(self) -> list[Component]:
        """In start order: election, state, sender, informers, scanner. Stopped in reverse: the scanner's
        last pass ends, then the sender flushes it all, then the state is written while this replica
        still holds the lease, and the lease is released last."""
        first: list[Component] = [self.leader] if self.leader else []
        return [*first, self.persister, self.sender, *self.informers, self.scanner]


def _pod_namespace(settings: Settings, service_account: Path) -> str:
    if settings.pod_namespace:
        return settings.pod_namespace
    try:
        return (service_account / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def build(settings: Settings, environ: Mapping[str, str] = os.environ,
          service_account: Path = kube_client.SERVICE_ACCOUNT) -> Pipeline:
    """Wire the pipeline from settings; raises ``ConfigError`` when the cluster credentials cannot load."""
    client = kube_client.load(settings, environ, service_account)
    cache = PodCache()
    options = InformerOptions(label_selector=settings.kube_label_selector,
                              exclude=frozenset(settings.kube_namespaces_exclude))
    inbox: queue.Queue[Announcement] = queue.Queue()
    ledger_settings = LedgerSettings(flood_expire=settings.flood_expire_ms / 1000,
                                     recovery_alert=settings.recovery_alert)
    scanner = Scanner(cache, Ledger(ledger_settings), inbox, ScannerSettings(
        tick=settings.tick_rate_ms / 1000, rules=RuleSettings(settings.not_ready_min_time_ms / 1000)))
    renderer = Renderer(settings.cluster_name, settings.dingtalk_keyword, settings.dingtalk_at_mobiles,
                        settings.dingtalk_at_user_ids)
    url = settings.webhook_url
    robot = None if settings.dry_run or url is None else DingTalkClient(url, settings.dingtalk_secret,
                                                                         environ=environ)
    sender = Sender(inbox, robot, renderer, SenderSettings(
        rate_per_minute=settings.dingtalk_rate_per_minute, shutdown_timeout=settings.shutdown_timeout_ms / 1000,
        dry_run=settings.dry_run))
    namespace = _pod_namespace(settings, service_account)
    store = StateStore(client, namespace, settings.state_configmap)
    persister = StatePersister(store)
    scanner.load_state = lambda: store.load(ledger_settings)
    scanner.on_snapshot = persister.offer
    leader = None
    if settings.leader_elect:
        identity = settings.pod_name or socket.gethostname()
        leader = LeaderElector(client, LeaseSettings(namespace, settings.lease_name, identity))
        sender.may_send = scanner.may_announce = persister.may_write = leader.is_leader
        scanner.term = _term_of(leader)
        leader.on_change = lambda _leading: scanner.wake()
    return Pipeline(cache, informers(client, cache, settings.kube_namespaces_only, options), scanner, sender,
                    persister, leader)


def _term_of(leader: LeaderElector) -> Callable[[], int]:
    return lambda: leader.transitions


def components(pipeline: Pipeline, settings: Settings) -> list[Component]:
    """The pipeline plus its health and metrics endpoint (started first, stopped last)."""
    registry = CollectorRegistry()
    pipeline.sender.observe = request_histogram(registry).observe
    is_leader = pipeline.leader.is_leader if pipeline.leader else (lambda: True)
    health = HealthServer(pipeline, settings.http_port, registry, is_leader=is_leader,
                          wedged_after=max(120.0, 4 * settings.tick_rate_ms / 1000))
    return [health, *pipeline.components]


def run(settings: Settings, environ: Mapping[str, str] = os.environ) -> int:
    _log.info("kube-dingtalk starting", version=__version__, settings=settings.redacted())
    try:
        pipeline = build(settings, environ)
    except ConfigError as err:
        for problem in err.problems:
            _log.error("cannot start", problem=problem)
        return EXIT_USAGE
    try:
        parts = components(pipeline, settings)
    except OSError as err:
        _log.error("cannot start", problem=f"HTTP_PORT={settings.http_port}: cannot listen ({err})")
        return EXIT_USAGE
    service = Service(parts, stop_timeout=settings.shutdown_timeout_ms / 1000 + 5)
    install_signal_handlers(service.stop)
    return service.run()
