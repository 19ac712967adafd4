"""The sender against the DingTalk emulator on real sockets: limits, every answer class, outages, shutdown."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

import pytest

from kubedingtalk.config import Secret
from kubedingtalk.dingtalk import DingTalkClient
from kubedingtalk.ledger import Announcement, IncidentKey
from kubedingtalk.messages import Renderer
from kubedingtalk.rules import Finding
from kubedingtalk.sender import Sender, SenderSettings
from kubedingtalk.testing.dingtalk import DingTalkServer, Robot
from tests.helpers import LogCapture, wait_for

FAST = SenderSettings(retry_initial=0.05, retry_cap=0.2, throttle_pause=0.5, config_pause=0.3,
                      shutdown_timeout=3.0)


def announce(workload: str, state: str = "firing", message: str = "Back-off pulling image", pods: int = 1,
             reason: str = "ImagePullBackOff") -> Announcement:
    f = Finding("shop", f"{workload}-0", "Deployment", workload, "waiting", reason, message, container="app")
    return Announcement(state, IncidentKey.of(f), f, tuple(f"{workload}-{i}" for i in range(pods)), 0.0, 60.0)


class Harness:
    """A sender wired to a robot of the emulator, stopped after the test."""

    def __init__(self, robot_server: DingTalkServer) -> None:
        self.server = robot_server
        self.senders: list[Sender] = []

    def __call__(self, token: str = "test-token", secret: str | None = None, keyword: str = "",
                 settings: SenderSettings = FAST, timeout: float = 2.0) -> Sender:
        client = DingTalkClient(Secret(self.server.webhook_url(token)), Secret(secret) if secret else None,
                                timeout=timeout, environ={})
        sender = Sender(queue.Queue(), client, Renderer(cluster="test", keyword=keyword), settings)
        sender.start()
        self.senders.append(sender)
        return sender


@pytest.fixture()
def make(dingtalk: DingTalkServer) -> Iterator[Harness]:
    harness = Harness(dingtalk)
    yield harness
    for sender in harness.senders:
        sender.stop()
        sender.join(5)


def test_signed_requests_are_accepted(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make("signed", secret="SECtest")
    sender.inbox.put(announce("web"))
    wait_for(lambda: sender.stats["sent"] == 1)
    (msg,) = dingtalk.messages
    assert msg.title == "🔴 ImagePullBackOff in shop/web" and dingtalk.answers == {0: 1}


def test_a_wrong_secret_is_one_clear_error_with_a_hint_and_no_retry_loop(dingtalk: DingTalkServer, make: Harness,
                                                                         logs: LogCapture) -> None:
    sender = make("signed", secret="SECwrong")
    for i in range(3):
        sender.inbox.put(announce(f"w{i}"))
    wait_for(lambda: sender.stats["undelivered"] == 3, what="all three reported undelivered")
    (problem,) = logs.events("DingTalk did not accept the message")
    assert problem["errcode"] == 310000 and "check DINGTALK_SECRET" in problem["hint"]
    assert problem["level"] == "error"
    assert {e["incident"] for e in logs.events("announcement not delivered")} == {
        f"firing ImagePullBackOff shop/Deployment/w{i}" for i in range(3)}
    assert dingtalk.requests <= 3 and sender.is_alive() and sender.queued == 0


def test_keyword_is_in_every_message_and_its_absence_is_explained(dingtalk: DingTalkServer, make: Harness,
                                                                  logs: LogCapture) -> None:
    good = make("keyworded", keyword="k8s")
    good.inbox.put(announce("web"))
    (msg,) = dingtalk.wait_for_messages(1)
    assert msg.title.startswith("k8s ") and "k8s" in msg.text
    bad = make("keyworded")
    bad.inbox.put(announce("api"))
    wait_for(lambda: bad.stats["failed_config"] == 1)
    assert "set DINGTALK_KEYWORD" in logs.events("DingTalk did not accept the message")[0]["hint"]


def test_an_unknown_token_names_dingtalk_token(make: Harness, logs: LogCapture) -> None:
    sender = make("no-such-robot")
    sender.inbox.put(announce("web"))
    wait_for(lambda: sender.stats["failed_config"] == 1)
    assert "check DINGTALK_TOKEN" in logs.events("DingTalk did not accept the message")[0]["hint"]


def test_mentions_reach_the_group(dingtalk: DingTalkServer) -> None:
    client = DingTalkClient(Secret(dingtalk.webhook_url("test-token")), environ={})
    renderer = Renderer(at_mobiles=("13800000000",), at_user_ids=("ops-lead",))
    sender = Sender(queue.Queue(), client, renderer, FAST)
    sender.start()
    try:
        sender.inbox.put(announce("web"))
        (msg,) = dingtalk.wait_for_messages(1)
    finally:
        sender.stop()
        sender.join(5)
    assert msg.at_mobiles == ["13800000000"] and msg.at_user_ids == ["ops-lead"]
    assert "@13800000000" in msg.text and "@ops-lead" in msg.text


def test_huge_messages_and_many_pods_stay_within_the_size_limit(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make()
    sender.inbox.put(announce("web", message="镜像拉取失败: " + "x" * 30_000, pods=5000))
    (msg,) = dingtalk.wait_for_messages(1)
    assert "and 4990 more" in msg.text
    assert 460101 not in dingtalk.answers


def test_a_storm_of_200_workloads_is_merged_within_the_rate_and_names_every_incident(dingtalk: DingTalkServer,
                                                                                     make: Harness) -> None:
    sender = make()
    for i in range(200):
        sender.inbox.put(announce(f"svc-{i:03d}", pods=3))
    wait_for(lambda: sender.stats["announcements_sent"] == 200, what="every incident sent")
    assert len(dingtalk.messages) <= 20
    assert 130101 not in dingtalk.answers and not dingtalk.throttled("test-token")
    text = dingtalk.transcript()
    assert all(f"shop/svc-{i:03d}" in text for i in range(200))


@contextlib.contextmanager
def windowed(rate: int, window: float) -> Iterator[tuple[DingTalkServer, Sender]]:
    """A robot and a sender sharing a short rate window (``rate`` per ``window`` seconds), so windows pass quickly."""
    with DingTalkServer([Robot("t")], rate_limit=rate, window=window, penalty=30.0) as robot:
        settings = SenderSettings(rate_per_minute=rate, window=window, retry_initial=0.05, shutdown_timeout=3.0)
        sender = Sender(queue.Queue(), DingTalkClient(Secret(robot.webhook_url("t")), environ={}), Renderer(),
                        settings)
        sender.start()
        try:
            yield robot, sender
        finally:
            sender.stop()
            sender.join(5)


def test_the_rate_holds_across_windows_without_throttling() -> None:
    with windowed(3, 1.0) as (robot, sender):
        for i in range(3):
            sender.inbox.put(announce(f"first-{i}"))
        robot.wait_for_messages(3)
        for i in range(2):
            sender.inbox.put(announce(f"second-{i}"))
        wait_for(lambda: sender.stats["announcements_sent"] == 5)
        assert robot.answers == {0: len(robot.messages)}
        stamps = [m.arrived for m in robot.messages]
        assert all(later - earlier >= 1.0 for earlier, later in zip(stamps, stamps[3:], strict=False))


def test_once_half_the_budget_is_spent_the_rest_is_paced_and_merged_not_stalled() -> None:
    with windowed(6, 3.0) as (robot, sender):
        for i in range(3):
            sender.inbox.put(announce(f"first-{i}"))
        robot.wait_for_messages(3)
        for i in range(8):
            sender.inbox.put(announce(f"late-{i}"))
        # Paced, not stalled until the first sends leave the window: a digest within a second or so.
        wait_for(lambda: sender.stats["announcements_sent"] == 11, timeout=2.5)
        assert 4 <= len(robot.messages) <= 6 and robot.answers == {0: len(robot.messages)}
        assert all(f"late-{i}" in robot.transcript() for i in range(8))


@pytest.mark.parametrize("fault", [{"errcode": -1}, {"http_status": 502}, {"drop": True}])
def test_transient_failures_are_retried_in_order(dingtalk: DingTalkServer, make: Harness,
                                                 fault: dict[str, object]) -> None:
    sender = make()
    dingtalk.fail_next(2, **fault)  # type: ignore[arg-type]
    sender.inbox.put(announce("first"))
    sender.inbox.put(announce("second"))
    messages = dingtalk.wait_for_messages(2)
    assert [m.title for m in messages] == ["🔴 ImagePullBackOff in shop/first", "🔴 ImagePullBackOff in shop/second"]
    assert sender.stats["retried"] == 2


def test_a_timeout_is_retried_preferring_a_duplicate_to_a_loss(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make(timeout=0.3)
    dingtalk.fail_next(1, delay=1.0)
    sender.inbox.put(announce("web"))
    wait_for(lambda: sender.stats["sent"] == 1)
    assert sender.stats["retried"] == 1 and "shop/web" in dingtalk.transcript()


def test_throttled_robot_is_paused_and_what_waits_is_merged(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make()
    dingtalk.fail_next(1, errcode=130101)
    for i in range(30):
        sender.inbox.put(announce(f"svc-{i}"))
    wait_for(lambda: sender.stats["announcements_sent"] == 30)
    assert sender.stats["throttled"] == 1
    assert dingtalk.requests == 2  # the throttled attempt, then one digest after the pause
    assert all(f"shop/svc-{i}" in dingtalk.transcript() for i in range(30))


def test_rejected_content_is_dropped_and_reported(dingtalk: DingTalkServer, make: Harness, logs: LogCapture) -> None:
    sender = make()
    dingtalk.fail_next(1, errcode=430102)
    sender.inbox.put(announce("bad"))
    sender.inbox.put(announce("good"))
    wait_for(lambda: sender.stats["sent"] == 1)
    assert sender.stats["rejected"] == 1 and "shop/good" in dingtalk.transcript()
    assert logs.events("announcement not delivered")[0]["incident"] == "firing ImagePullBackOff shop/Deployment/bad"


def test_too_large_is_shortened_and_resent(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make()
    dingtalk.fail_next(1, errcode=460101)
    sender.inbox.put(announce("web", message="y" * 3000))
    (msg,) = dingtalk.wait_for_messages(1)
    assert sender.stats["too_large"] == 1 and "shop/web" in msg.title


def test_an_outage_followed_by_recovery_loses_nothing(dingtalk: DingTalkServer, make: Harness) -> None:
    sender = make()
    dingtalk.stop()
    for i in range(5):
        sender.inbox.put(announce(f"svc-{i}"))
    wait_for(lambda: sender.stats["retried"] >= 3, what="retries during the outage")
    wait_for(lambda: _restarted(dingtalk), what="the robot endpoint back on its port")
    wait_for(lambda: sender.stats["announcements_sent"] == 5)
    assert all(f"shop/svc-{i}" in dingtalk.transcript() for i in range(5))


def _restarted(server: DingTalkServer) -> bool:
    try:
        server.start()
    except OSError:
        return False
    return True


def test_stop_flushes_what_is_queued(dingtalk: DingTalkServer) -> None:
    client = DingTalkClient(Secret(dingtalk.webhook_url("test-token")), environ={})
    sender = Sender(queue.Queue(), client, Renderer(), FAST)
    for i in range(40):
        sender.inbox.put(announce(f"svc-{i}"))
    sender.start()
    sender.stop()
    sender.join(5)
    assert not sender.is_alive()
    assert sender.stats["announcements_sent"] == 40 and len(dingtalk.messages) <= 20


def test_what_cannot_be_sent_by_the_deadline_is_logged_by_incident(dingtalk: DingTalkServer,
                                                                   logs: LogCapture) -> None:
    client = DingTalkClient(Secret(dingtalk.webhook_url("test-token")), environ={})
    settings = SenderSettings(retry_initial=0.05, retry_cap=0.1, shutdown_timeout=0.5)
    sender = Sender(queue.Queue(), client, Renderer(), settings)
    dingtalk.stop()
    sender.inbox.put(announce("web"))
    sender.start()
    wait_for(lambda: sender.stats["retried"] >= 1)
    sender.stop()
    sender.join(3)
    assert not sender.is_alive()
    (lost,) = logs.events("announcement not delivered")
    assert lost["incident"] == "firing ImagePullBackOff shop/Deployment/web"
    assert lost["reason"] == "shutting down before it could be sent"


def test_the_token_and_signature_never_reach_the_logs(logs: LogCapture) -> None:
    token, secret = "tok-5ecret-0123456789abcdef", "SEC0123456789abcdef0123456789"
    with DingTalkServer([Robot(token, secret=secret)]) as robot:
        client = DingTalkClient(Secret(robot.webhook_url(token)), Secret(secret), timeout=1.0, environ={})
        sender = Sender(queue.Queue(), client, Renderer(), FAST)
        sender.start()
        robot.fail_next(1, drop=True)
        robot.fail_next(1, errcode=310000)
        sender.inbox.put(announce("a"))
        sender.inbox.put(announce("b"))
        wait_for(lambda: sender.stats["failed_config"] == 1 and sender.stats["retried"] == 1)
        robot.stop()
        sender.inbox.put(announce("c"))
        wait_for(lambda: sender.stats["retried"] >= 2)
        sender.stop()
        sender.join(5)
    assert logs.events("DingTalk did not accept the message")
    assert token not in logs.text and secret not in logs.text and "sign=" not in logs.text.replace("sign=***", "")
    assert token not in repr(client) and "access_token" not in repr(client)


def test_dry_run_renders_and_logs_without_posting(logs: LogCapture) -> None:
    sender = Sender(queue.Queue(), None, Renderer(cluster="c"), SenderSettings(dry_run=True))
    sender.start()
    sender.inbox.put(announce("web"))
    wait_for(lambda: sender.stats["sent"] == 1)
    sender.stop()
    sender.join(5)
    (line,) = logs.events("dry run: message not posted")
    assert line["title"] == "🔴 ImagePullBackOff in shop/web" and "### 🔴 ImagePullBackOff" in line["text"]
