"""Log lines are JSON with the agreed fields, and secrets never reach them."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from kubedingtalk import log
from kubedingtalk.config import Settings

TOKEN = "tok3n0123456789abcdef"
SECRET = "SEC0f00ba4b4dc0ffee0123456789"
URL = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"


@pytest.fixture()
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    settings = Settings.from_env({"DINGTALK_TOKEN": TOKEN, "DINGTALK_SECRET": SECRET})
    log.configure("debug", "json", settings.secrets(), stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    log.configure("info", "json", (), stream=io.StringIO())


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_line_has_timestamp_level_event_logger_and_context(out: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(namespace="prod")
    log.get_logger("kubedingtalk.informer").info("watch started", resource_version="42")
    [line] = lines(out)
    assert line["event"] == "watch started" and line["level"] == "info"
    assert line["logger"] == "kubedingtalk.informer" and line["namespace"] == "prod"
    assert str(line["timestamp"]).endswith("Z") and "T" in str(line["timestamp"])


def test_context_is_bound_per_thread(out: io.StringIO) -> None:
    def worker(ns: str) -> None:
        structlog.contextvars.bind_contextvars(namespace=ns)
        log.get_logger("kubedingtalk.informer").info("tick")

    threads = [threading.Thread(target=worker, args=(ns,)) for ns in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(str(line["namespace"]) for line in lines(out)) == ["a", "b"]


def test_stdlib_records_come_out_as_the_same_json(out: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").warning("Retrying (%s) after %s", "Retry(total=2)", "reset")
    [line] = lines(out)
    assert line["event"] == "Retrying (Retry(total=2)) after reset"
    assert line["level"] == "warning" and line["logger"] == "urllib3.connectionpool"


def test_exceptions_render_as_json_without_locals(out: io.StringIO) -> None:
    def fail() -> None:
        local_value = "-".join(["a", "local", "that", "must", "not", "show"])  # noqa: F841
        raise RuntimeError("boom")

    try:
        fail()
    except RuntimeError:
        log.get_logger("kubedingtalk.sender").exception("send failed")
    [line] = lines(out)
    text = json.dumps(line)
    assert line["exception"][0]["exc_type"] == "RuntimeError"  # type: ignore[index]
    assert "a-local-that-must-not-show" not in text
    assert all("locals" not in frame for frame in line["exception"][0]["frames"])  # type: ignore[index]


def test_secrets_are_removed_from_every_path(out: io.StringIO) -> None:
    logger = log.get_logger("kubedingtalk.sender")
    signed = f"{URL}&timestamp=1577262236757&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
    structlog.contextvars.bind_contextvars(robot=URL)
    logger.info(f"posting to {signed}", url=signed, nested={"list": [TOKEN, {"s": SECRET}]})
    logger.warning("secret", secret=SECRET, quoted=URL.replace(":", "%3A").replace("/", "%2F"))
    logging.getLogger("urllib3.connectionpool").info('%s "POST /robot/send?access_token=%s HTTP/1.1" 200', URL, TOKEN)
    logging.getLogger("kubernetes").info("header Authorization: Bearer abc.def-ghi")
    try:
        raise ConnectionError(f"could not reach {URL} with {SECRET}")
    except ConnectionError:
        logger.exception("send failed", target=URL)
        logging.getLogger("urllib3").error("pool error for %s", signed, exc_info=True)
    try:
        raise ValueError(repr(object.__new__(type("Leaky", (), {"__repr__": lambda self: TOKEN}))))
    except ValueError as exc:
        logger.error("odd object", obj=exc)
    text = out.getvalue()
    assert len(text.splitlines()) == 7
    for leaked in (TOKEN, SECRET, "hmPWwU", "abc.def-ghi"):
        assert leaked not in text, leaked
    assert "access_token=***" in text and "sign=***" in text


def test_console_format_is_for_people(out: io.StringIO) -> None:
    stream = io.StringIO()
    log.configure("info", "console", [TOKEN], stream=stream)
    log.get_logger("kubedingtalk.x").info("hello", url=URL)
    text = stream.getvalue()
    assert "hello" in text and TOKEN not in text and not text.startswith("{")


def test_level_filters(out: io.StringIO) -> None:
    stream = io.StringIO()
    log.configure("warning", "json", (), stream=stream)
    log.get_logger("kubedingtalk.x").info("quiet")
    log.get_logger("kubedingtalk.x").warning("loud")
    assert [line["event"] for line in lines(stream)] == ["loud"]
