"""Structured logs: one JSON object per line on stdout, secrets removed.

structlog and the standard ``logging`` module (the kubernetes client, urllib3)
share one pipeline, so every line has the same shape whatever wrote it. The
redactor is the last step before rendering: whatever reaches a field (a
message, a bound value, an exception's text) is scrubbed there, rather than
trusting every call site to remember.
"""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

REDACTED = "***"
# Credentials that travel in URLs: the robot token and the request signature.
_URL_SECRETS = re.compile(r"(?i)\b(access_token|sign)=[^&\s\"'#<>]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")


class Redactor:
    """Removes known secrets and credential-looking URL parameters from values."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
                if len(form) >= 4 and form not in self._secrets:
                    self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def clear(self) -> None:
        self._secrets.clear()

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self._scrub_text(repr(value))

    def _scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _URL_SECRETS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {key: self.scrub(value) for key, value in event_dict.items()}


redactor = Redactor()


def configure(level: str = "info", fmt: str = "json", secrets: Iterable[str] = (),
              stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout) in one format."""
    redactor.clear()
    redactor.add(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: Any
    if fmt == "console":
        exceptions: Any = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        exceptions = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions,
                    structlog.processors.UnicodeDecoder(), redactor, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The kubernetes client and urllib3 are chatty at debug; their warnings matter.
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.INFO))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> Any:
    """A logger named for its component, e.g. ``kubedingtalk.informer``."""
    return structlog.stdlib.get_logger(component)
