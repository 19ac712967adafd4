"""The sender: announcements from the scanner's queue to the robot, within DingTalk's limits.

It never sends more than ``rate_per_minute`` requests in any window. While
the budget is plentiful each announcement goes out at once; once half of it
is spent, the rest is spread over the window and whatever waits is merged
into digest messages, so every incident is still named, nothing is dropped
for being too many, and the robot is never throttled.
Each class of DingTalk answer has one response: retry with backoff (busy,
5xx, timeouts), pause the robot (throttled), shrink and resend (too large),
report and move on (rejected content, configuration errors: no retry loop).
On stop it flushes what is queued within ``shutdown_timeout`` and names, by
incident, whatever it could not deliver.
"""

from __future__ import annotations

import queue
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from kubedingtalk import log
from kubedingtalk.dingtalk import CONFIG, OK, REJECTED, RETRY, THROTTLED, TOO_LARGE, Answer, DingTalkClient
from kubedingtalk.ledger import Announcement
from kubedingtalk.messages import Message, Renderer, incident_name
from kubedingtalk.worker import Worker

_log = log.get_logger("kubedingtalk.sender")
MIN_LIMIT = 2_000


@dataclass(frozen=True)
class SenderSettings:
    rate_per_minute: int = 20
    window: float = 60.0
    throttle_pause: float = 600.0  # DingTalk throttles an over-eager robot for about ten minutes
    config_pause: float = 300.0
    retry_initial: float = 1.0
    retry_cap: float = 60.0
    shutdown_timeout: float = 10.0
    max_pending: int = 10_000
    dry_run: bool = False


class Sender(Worker):
    """Consumes ``inbox`` on its own thread; ``stats`` counts outcomes for metrics and tests."""

    def __init__(self, inbox: queue.Queue[Announcement], client: DingTalkClient | None, renderer: Renderer,
                 settings: SenderSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if client is None and not (settings and settings.dry_run):
            raise ValueError("a DingTalk client is required unless dry_run is on")
        super().__init__("sender")
        self.inbox, self.client, self.renderer = inbox, client, renderer
        self.settings = settings or SenderSettings()
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self.may_send: Callable[[], bool] = lambda: True  # leader election gates sending here
        self.observe: Callable[[float], None] = lambda seconds: None  # request latency, for metrics
        self._pending: deque[Announcement] = deque()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._retries = 0
        self._limit = renderer.limit
        self._last_problem: tuple[str, int | None] | None = None
        self._deadline: float | None = None

    # -- lifecycle ------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking new work; flush what is queued within the shutdown timeout."""
        if self._deadline is None:
            self._deadline = self.clock() + self.settings.shutdown_timeout
        self._stop.set()

    @property
    def queued(self) -> int:
        return len(self._pending) + self.inbox.qsize()

    # -- the loop -----------------------------------------------------------------

    def _drain(self, block: float) -> None:
        try:
            self._take(self.inbox.get(timeout=block) if block > 0 else self.inbox.get_nowait())
            while True:
                self._take(self.inbox.get_nowait())
        except queue.Empty:
            pass

    def _take(self, item: Announcement) -> None:
        self._pending.append(item)
        while len(self._pending) > self.settings.max_pending:
            self._undelivered([self._pending.popleft()], "the send queue is full")

    def _wait(self, seconds: float) -> None:
        """Sleep while still collecting announcements; cut short by a stop (then bounded by the deadline)."""
        end = self.clock() + seconds
        if self._deadline is not None:
            end = min(end, self._deadline)
        while (left := end - self.clock()) > 0:
            self._drain(min(left, 0.2))
            if self._stop.is_set() and self._deadline is not None and self.clock() >= self._deadline:
                return

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            self._drain(0 if self._pending or stopping else 0.2)
            if not self._pending:
                if stopping:
                    break
                continue
            if stopping and self._deadline is not None and self.clock() >= self._deadline:
                break
            if not self.may_send():
                # A standby: the leader announces these. Holding them would replay them on takeover.
                self.stats["standby_skipped"] += len(self._pending)
                self._pending.clear()
                continue
            now = self.clock()
            if self._paused_until > now:
                if stopping and self._deadline is not None and self._paused_until > self._deadline:
                    break
                self._wait(self._paused_until - now)
                continue
            while self._sent and self._sent[0] <= now - self.settings.window:
                self._sent.popleft()
            budget = self.settings.rate_per_minute - len(self._sent)
            wait = self._pace(now, budget, stopping)
            if wait > 0:
                free_at = now + wait
                if stopping and self._deadline is not None and free_at > self._deadline:
                    break
                self._wait(wait)
                continue
            self._send_one(self._compose(budget, stopping))
        if self._pending:
            self._undelivered(list(self._pending), "shutting down before it could be sent")
            self._pending.clear()

    def _pace(self, now: float, budget: int, stopping: bool) -> float:
        """Seconds to wait before the next request.

        While at least half the window's budget is left, send at once. Below that, spread
        what is left evenly until the oldest request leaves the window, so a long run of
        failures gets a digest every few seconds instead of twenty messages and then a
        silent minute. A flush on shutdown uses whatever budget is left.
        """
        if budget <= 0:
            return self._sent[0] + self.settings.window - now
        if stopping or budget * 2 >= self.settings.rate_per_minute or not self._sent:
            return 0.0
        spacing = (self._sent[0] + self.settings.window - now) / budget
        return max(0.0, self._sent[-1] + spacing - now)

    def _compose(self, budget: int, stopping: bool) -> Message:
        """The oldest announcement alone while the budget is plentiful, else a digest of what waits."""
        renderer = self.renderer if self._limit == self.renderer.limit else _with_limit(self.renderer, self._limit)
        plenty = budget * 2 >= self.settings.rate_per_minute and len(self._pending) <= budget
        if len(self._pending) == 1 or (plenty and not stopping):
            return renderer.render(self._pending[0])
        return next(renderer.digests(list(self._pending)))

    def _send_one(self, message: Message) -> None:
        count = len(message.announcements)
        answer = self._post(message)
        self._sent.append(self.clock())
        if answer.outcome == OK:
            for _ in range(count):
                self._pending.popleft()
            self.stats["sent"] += 1
            self.stats["announcements_sent"] += count
            if count > 1:
                self.stats["merged"] += count
            self._retries, self._limit = 0, self.renderer.limit
            if self._last_problem is not None:
                _log.info("DingTalk accepts messages again")
                self._last_problem = None
            _log.info("message sent", title=message.title, incidents=list(message.incidents), bytes=len(
                message.body()))
            return
        self._problem(answer)
        if answer.outcome == RETRY:
            self.stats["retried"] += 1
            delay = min(self.settings.retry_cap, self.settings.retry_initial * 2 ** self._retries)
            self._retries += 1
            self._wait(delay * (0.5 + random.random() / 2))
        elif answer.outcome == THROTTLED:
            self.stats["throttled"] += 1
            self._paused_until = self.clock() + self.settings.throttle_pause
        elif answer.outcome == TOO_LARGE:
            self.stats["too_large"] += 1
            self._limit //= 2
            if self._limit < MIN_LIMIT:
                self._drop(count, "DingTalk refuses it as too large even when shortened")
                self._limit = self.renderer.limit
        elif answer.outcome == REJECTED:
            self.stats["rejected"] += 1
            self._drop(count, "DingTalk rejected its content")
        else:
            self.stats["failed_config"] += 1
            self._drop(count, "DingTalk refused the request (configuration)")
            self._paused_until = self.clock() + self.settings.config_pause

    def _post(self, message: Message) -> Answer:
        if self.settings.dry_run or self.client is None:
            _log.info("dry run: message not posted", title=message.title, text=message.text,
                      at_mobiles=list(message.at_mobiles), at_user_ids=list(message.at_user_ids))
            return Answer(OK, 0, "dry run")
        began = time.monotonic()
        answer = self.client.post(message.body())
        self.observe(time.monotonic() - began)
        return answer

    def _problem(self, answer: Answer) -> None:
        """One clear line per change of problem; repeats of the same one go to debug."""
        state = (answer.outcome, answer.errcode)
        fields = {"outcome": answer.outcome, "errcode": answer.errcode, "errmsg": answer.errmsg,
                  "http_status": answer.http_status, "hint": answer.hint or None}
        if state == self._last_problem:
            _log.debug("DingTalk still refusing", **fields)
            return
        self._last_problem = state
        level = _log.error if answer.outcome in (CONFIG, REJECTED) else _log.warning
        level("DingTalk did not accept the message", **fields)

    def _drop(self, count: int, why: str) -> None:
        self._undelivered([self._pending.popleft() for _ in range(count)], why)

    def _undelivered(self, items: list[Announcement], why: str) -> None:
        self.stats["undelivered"] += len(items)
        for item in items:
            _log.error("announcement not delivered", incident=incident_name(item), pods=list(item.pods[:10]),
                       reason=why)


def _with_limit(renderer: Renderer, limit: int) -> Renderer:
    return Renderer(renderer.cluster, renderer.keyword, renderer.at_mobiles, renderer.at_user_ids, limit)
