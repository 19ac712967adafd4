"""A DingTalk custom-robot emulator on loopback: the real endpoint's answers, limits and checks.

It answers as DingTalk does (HTTP 200 with an ``errcode``), checks tokens,
signatures and keywords, enforces the 20-messages-a-minute limit with a
throttle penalty and the 20,000-byte body limit, validates every message
type's shape, and keeps each accepted message for assertions. Faults (errcode
-1, HTTP 5xx, slow answers, dropped connections) are plain method calls.

Run alone::

    python -m kubedingtalk.testing.dingtalk --port N [--token T] [--secret S] [--keyword K]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubedingtalk.signing import signature
from kubedingtalk.testing.loopback import run_until_interrupted, serve, shutdown

MAX_BODY_BYTES = 20_000
TIMESTAMP_TOLERANCE_MS = 3_600_000

OK = (0, "ok")
ERRORS = {
    "busy": (-1, "系统繁忙"),
    "too_fast": (130101, "send too fast, exceed 20 times per minute"),
    "sign": (310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"),
    "timestamp": (310000, "invalid timestamp"),
    "keyword": (310000, "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"),
    "token": (300001, "token is not exist"),
    "no_token": (40035, "缺少参数 access_token"),
    "post": (43002, "需要POST请求"),
    "msgtype": (400105, "不支持的消息类型"),
    "too_long": (460101, "message too long, exceed 20000 bytes"),
}


@dataclass(frozen=True)
class Robot:
    """A group robot: its token and security settings (a secret, keywords, or both)."""

    token: str
    secret: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    """A message the group received."""

    token: str
    body: Mapping[str, Any]
    arrived: float

    @property
    def msgtype(self) -> str:
        return str(self.body["msgtype"])

    @property
    def title(self) -> str:
        content = self.body.get(self.msgtype) or {}
        return str(content.get("title") or "")

    @property
    def text(self) -> str:
        """The readable content: markdown or text body, or a card's text."""
        content = self.body.get(self.msgtype) or {}
        if self.msgtype == "text":
            return str(content.get("content", ""))
        if self.msgtype == "feedCard":
            return "\n".join(str(link.get("title", "")) for link in content.get("links", []))
        return str(content.get("text", ""))

    @property
    def at_mobiles(self) -> list[str]:
        return list((self.body.get("at") or {}).get("atMobiles") or [])

    @property
    def at_user_ids(self) -> list[str]:
        return list((self.body.get("at") or {}).get("atUserIds") or [])

    def render(self) -> str:
        """As the group shows it: the title line, then the content."""
        head = f"[{time.strftime('%H:%M:%S', time.localtime(self.arrived))}] "
        return head + (f"{self.title}\n{self.text}" if self.title else self.text)


@dataclass
class _Fault:
    count: int
    errcode: int | None = None
    http_status: int | None = None
    delay: float = 0.0
    drop: bool = False


@dataclass
class _RobotState:
    sent: deque[float] = field(default_factory=deque)
    throttled_until: float = 0.0


def _strings(content: Mapping[str, Any], *keys: str) -> str | None:
    """The name of the first required key that is not a non-empty string, else None."""
    for key in keys:
        if not isinstance(content.get(key), str) or not content[key]:
            return key
    return None


def shape_error(body: Any) -> str | None:
    """Why a message body is not one DingTalk accepts, or None when it is."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    kind = body.get("msgtype")
    content = body.get(kind) if isinstance(kind, str) else None
    if kind not in ("text", "markdown", "link", "actionCard", "feedCard") or not isinstance(content, dict):
        return f"unsupported msgtype {kind!r} or missing {kind!r} object"
    missing = {
        "text": lambda: _strings(content, "content"),
        "markdown": lambda: _strings(content, "title", "text"),
        "link": lambda: _strings(content, "title", "text", "messageUrl"),
        "actionCard": lambda: _strings(content, "title", "text") or _action_buttons(content),
        "feedCard": lambda: _feed_links(content),
    }[kind]()
    if missing:
        return f"{kind}.{missing} is required"
    at = body.get("at")
    if at is not None:
        if not isinstance(at, dict):
            return "at must be an object"
        for key in ("atMobiles", "atUserIds"):
            if key in at and not (isinstance(at[key], list) and all(isinstance(v, str) for v in at[key])):
                return f"at.{key} must be a list of strings"
        if "isAtAll" in at and not isinstance(at["isAtAll"], bool):
            return "at.isAtAll must be a boolean"
    return None


def _action_buttons(content: Mapping[str, Any]) -> str | None:
    if "btns" in content:
        buttons = content["btns"]
        if not isinstance(buttons, list) or not buttons:
            return "btns"
        return next(("btns[].title/actionURL" for b in buttons
                     if not isinstance(b, dict) or _strings(b, "title", "actionURL")), None)
    return _strings(content, "singleTitle", "singleURL")


def _feed_links(content: Mapping[str, Any]) -> str | None:
    links = content.get("links")
    if not isinstance(links, list) or not links:
        return "links"
    return next(("links[].title/messageURL/picURL" for link in links
                 if not isinstance(link, dict) or _strings(link, "title", "messageURL", "picURL")), None)


def _searchable(body: Mapping[str, Any]) -> str:
    """Every piece of text a keyword may stand in."""
    kind = body["msgtype"]
    content = body[kind]
    parts = [str(content.get(k, "")) for k in ("content", "title", "text", "singleTitle")]
    parts += [str(link.get("title", "")) for link in content.get("links", []) if isinstance(link, dict)]
    parts += [str(b.get("title", "")) for b in content.get("btns", []) if isinstance(b, dict)]
    return "\n".join(parts)


class DingTalkServer:
    """An in-process robot endpoint. ``start()`` it and post to ``webhook_url(token)``."""

    def __init__(self, robots: Iterable[Robot] = (Robot("test-token"),), host: str = "127.0.0.1", port: int = 0,
                 *, rate_limit: int = 20, window: float = 60.0, penalty: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.robots = {r.token: r for r in robots}
        self.host, self.port = host, port
        self.rate_limit, self.window, self.penalty = rate_limit, window, penalty
        self.clock = clock
        self.messages: list[Message] = []
        self.answers: Counter[int] = Counter()
        self.requests = 0
        self.on_message: Callable[[Message], None] | None = None
        self._state: dict[str, _RobotState] = {}
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def webhook_url(self, token: str | None = None) -> str:
        token = token if token is not None else next(iter(self.robots))
        return f"{self.url}/robot/send?access_token={urllib.parse.quote(token, safe='')}"

    def start(self) -> DingTalkServer:
        self._httpd, self._thread = serve(_RobotHandler, self.host, self.port, "dingtalk-emulator",
                                          robot_server=self)
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None and self._thread is not None:
            shutdown(httpd, self._thread)

    def __enter__(self) -> DingTalkServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- faults and observation -------------------------------------------------

    def fail_next(self, count: int = 1, *, errcode: int | None = None, http_status: int | None = None,
                  delay: float = 0.0, drop: bool = False) -> None:
        """The next ``count`` requests get an errcode, an HTTP status, a delay, or a dropped connection."""
        with self._lock:
            self._faults.append(_Fault(count, errcode, http_status, delay, drop))

    def throttled(self, token: str | None = None) -> bool:
        token = token if token is not None else next(iter(self.robots))
        with self._lock:
            return self._state.get(token, _RobotState()).throttled_until > self.clock()

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[Message]:
        """Block until at least ``count`` messages were accepted; return them all."""
        with self._accepted:
            self._accepted.wait_for(lambda: len(self.messages) >= count, timeout)
            if len(self.messages) < count:
                raise AssertionError(f"expected {count} messages within {timeout}s, got {len(self.messages)}: "
                                     f"{[m.title or m.text[:60] for m in self.messages]}")
            return list(self.messages)

    def transcript(self) -> str:
        with self._lock:
            return "\n\n".join(m.render() for m in self.messages)

    # -- the endpoint --------------------------------------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.popleft()
            return fault

    def answer(self, method: str, query: Mapping[str, str], raw: bytes) -> tuple[int, str]:
        """The errcode and errmsg for one request; accepted messages are kept."""
        if method != "POST":
            return ERRORS["post"]
        token = query.get("access_token")
        if not token:
            return ERRORS["no_token"]
        robot = self.robots.get(token)
        if robot is None:
            return ERRORS["token"]
        now = self.clock()
        if robot.secret is not None:
            problem = self._check_signature(robot.secret, query, now)
            if problem:
                return ERRORS[problem]
        with self._lock:
            state = self._state.setdefault(token, _RobotState())
            if state.throttled_until > now:
                return ERRORS["too_fast"]
        if len(raw) > MAX_BODY_BYTES:
            return ERRORS["too_long"]
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return ERRORS["msgtype"]
        problem = shape_error(body)
        if problem:
            return ERRORS["msgtype"][0], f"{ERRORS['msgtype'][1]}: {problem}"
        if robot.keywords and not any(k in _searchable(body) for k in robot.keywords):
            return ERRORS["keyword"]
        with self._accepted:
            while state.sent and state.sent[0] <= now - self.window:
                state.sent.popleft()
            if len(state.sent) >= self.rate_limit:
                state.throttled_until = now + self.penalty
                return ERRORS["too_fast"]
            state.sent.append(now)
            message = Message(token, body, now)
            self.messages.append(message)
            self._accepted.notify_all()
        if self.on_message:
            self.on_message(message)
        return OK

    def _check_signature(self, secret: str, query: Mapping[str, str], now: float) -> str | None:
        stamp, sign = query.get("timestamp", ""), query.get("sign", "")
        if not stamp or not sign:
            return "sign"
        try:
            timestamp = int(stamp)
        except ValueError:
            return "timestamp"
        if abs(now * 1000 - timestamp) > TIMESTAMP_TOLERANCE_MS:
            return "timestamp"
        return None if sign == signature(secret, timestamp) else "sign"


class _RobotHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DingTalk-emulator"
    robot_server: DingTalkServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the kept messages and counters."""

    def _handle(self, method: str) -> None:
        srv = self.robot_server
        if srv._httpd is None:  # stopped: a kept-alive connection must not still be answered
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with srv._lock:
            srv.requests += 1
        fault = srv._take_fault()
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.http_status:
            self._reply(fault.http_status, b"<html><body>upstream error</body></html>", "text/html")
            return
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path != "/robot/send":
            self._reply(404, b'{"errcode":404,"errmsg":"not found"}')
            return
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        if fault and fault.errcode is not None:
            errcode, errmsg = fault.errcode, "injected fault"
        else:
            errcode, errmsg = srv.answer(method, query, raw)
        with srv._lock:
            srv.answers[errcode] += 1
        self._reply(200, json.dumps({"errcode": errcode, "errmsg": errmsg}, ensure_ascii=False).encode())

    def _reply(self, status: int, data: bytes, ctype: str = "application/json;charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubedingtalk.testing.dingtalk",
                                     description="Serve an emulated DingTalk robot and print what the group sees.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--secret", help="require signed requests with this secret")
    parser.add_argument("--keyword", action="append", default=[], help="require a keyword (repeatable)")
    parser.add_argument("--penalty", type=float, default=600.0, help="seconds a robot stays throttled")
    args = parser.parse_args(argv)
    server = DingTalkServer([Robot(args.token, args.secret, tuple(args.keyword))], port=args.port,
                            penalty=args.penalty)
    server.on_message = lambda m: print(m.render() + "\n", flush=True)
    server.start()
    print(f"DingTalk robot emulator: DINGTALK_TOKEN={server.webhook_url(args.token)}", flush=True)
    return run_until_interrupted(server.stop)


if __name__ == "__main__":
    sys.exit(main())
