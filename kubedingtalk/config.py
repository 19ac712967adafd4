"""Settings: one frozen object built from the environment, validated in one place.

Every variable is declared once in ``VARIABLES``; parsing, defaults, the
``config`` command and the README's settings table all read that list, so a
variable cannot be parsed in one place and documented differently in another.
Problems are collected, not raised one by one, so a user fixes them all at once.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DINGTALK_SEND_URL = "https://oapi.dingtalk.com/robot/send"


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class ConfigError(Exception):
    """Start-up settings are invalid; ``problems`` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Invalid(ValueError):
    """A value does not have the expected form (the message says which form)."""


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LEVELS = ("debug", "info", "warning", "error")
_SELECTOR_TERM = re.compile(
    r"^\s*!?\s*[A-Za-z0-9][-A-Za-z0-9_./]*\s*"
    r"((=|==|!=)\s*[-A-Za-z0-9_.]*|\s+(in|notin)\s*\([-A-Za-z0-9_.,\s]*\))?\s*$"
)


def parse_bool(raw: str) -> bool:
    try:
        return _BOOLEANS[raw.strip().lower()]
    except KeyError:
        raise _Invalid("one of true/false, 1/0, yes/no, on/off") from None


def _integer(expected: str, minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number within bounds; ``expected`` is the form named in the error."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise _Invalid(expected) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _Invalid(expected)
        return value

    return parse


def _milliseconds(minimum: int) -> Callable[[str], int]:
    return _integer(f"a whole number of milliseconds >= {minimum}", minimum)


def _count(minimum: int, maximum: int) -> Callable[[str], int]:
    return _integer(f"a whole number from {minimum} to {maximum}", minimum, maximum)


_port = _integer("a TCP port number from 0 to 65535", 0, 65535)


def _split_list(raw: str) -> list[str]:
    """A JSON array of strings, or a comma-separated list (the seed took both)."""
    text = raw.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            raise _Invalid('a JSON array of strings such as ["a","b"], or a comma-separated list') from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _Invalid('a JSON array of strings such as ["a","b"], or a comma-separated list')
        return [i.strip() for i in items if i.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def _namespaces(raw: str) -> tuple[str, ...]:
    names = _split_list(raw)
    bad = [n for n in names if not _DNS_LABEL.match(n)]
    if bad:
        raise _Invalid(f"namespace names (lowercase DNS labels); not valid: {', '.join(bad)}")
    return tuple(dict.fromkeys(names))


def _mentions(raw: str) -> tuple[str, ...]:
    items = _split_list(raw)
    bad = [i for i in items if any(c.isspace() or c in "@," for c in i)]
    if bad:
        raise _Invalid("mobile numbers or user ids without '@' or spaces, comma-separated")
    return tuple(dict.fromkeys(items))


def _label_selector(raw: str) -> str:
    text = raw.strip()
    if text and not all(_SELECTOR_TERM.match(term) for term in _split_selector(text)):
        raise _Invalid("a Kubernetes label selector such as app=web,tier!=cache,env in (prod)")
    return text


def _split_selector(text: str) -> list[str]:
    """Split on commas that are not inside ``in (...)`` sets."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Invalid("one of " + ", ".join(choices))
        return value

    return parse


def _dns_name(raw: str) -> str:
    value = raw.strip()
    if not _DNS_LABEL.match(value):
        raise _Invalid("a lowercase DNS label (letters, digits and '-', at most 63)")
    return value


def _text(raw: str) -> str:
    return raw.strip()


def _token(raw: str) -> Secret:
    value = raw.strip()
    if not value:
        raise _Invalid("a robot access token, or its full webhook URL")
    if "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Invalid("a robot access token, or a webhook URL starting http:// or https:// with a host")
        if "access_token" not in urllib.parse.parse_qs(parts.query):
            raise _Invalid("a webhook URL with an access_token query parameter")
    elif any(c.isspace() or c in "&?=/" for c in value):
        raise _Invalid("a bare access token (letters and digits), or a full webhook URL")
    return Secret(value)


def _signing_secret(raw: str) -> Secret:
    value = raw.strip()
    if not value:
        raise _Invalid("the robot's signing secret (it starts with SEC)")
    return Secret(value)


@dataclass(frozen=True)
class Variable:
    """One environment variable: where it goes, how it parses, what it means."""

    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False

    @property
    def default_text(self) -> str:
        """The default as a user would write it in the environment."""
        if self.default in (None, "", ()):
            return "(unset)"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    def table_row(self) -> str:
        """This variable's row in the README's settings table."""
        return f"| `{self.env}` | `{self.default_text}` | {self.doc} |"


VARIABLES: tuple[Variable, ...] = (
    Variable("DINGTALK_TOKEN", "dingtalk_token", _token, None,
             "Robot access token, or the full webhook URL (any scheme, host and port). "
             "Required unless DRY_RUN is on.", secret=True),
    Variable("DINGTALK_SECRET", "dingtalk_secret", _signing_secret, None,
             "Signing secret (`SEC...`) when the robot uses signed requests.", secret=True),
    Variable("DINGTALK_KEYWORD", "dingtalk_keyword", _text, "",
             "Keyword put in every message when the robot requires one."),
    Variable("DINGTALK_AT_MOBILES", "dingtalk_at_mobiles", _mentions, (),
             "Mobile numbers to @mention in every message (JSON array or comma-separated)."),
    Variable("DINGTALK_AT_USER_IDS", "dingtalk_at_user_ids", _mentions, (),
             "DingTalk user ids to @mention in every message (JSON array or comma-separated)."),
    Variable("DINGTALK_RATE_PER_MINUTE", "dingtalk_rate_per_minute", _count(1, 20), 20,
             "Most requests sent to the robot in any 60 s (DingTalk's limit is 20); more is merged."),
    Variable("TICK_RATE", "tick_rate_ms", _milliseconds(100), 15000,
             "How often the cache is evaluated, in milliseconds."),
    Variable("FLOOD_EXPIRE", "flood_expire_ms", _milliseconds(0), 60000,
             "An incident is not announced again until this long after it returned to normal (ms)."),
    Variable("NOT_READY_MIN_TIME", "not_ready_min_time_ms", _milliseconds(0), 60000,
             "How long a pod must be not ready (or unschedulable) before it is announced (ms)."),
    Variable("KUBE_USE_KUBECONFIG", "kube_use_kubeconfig", parse_bool, False,
             "Load credentials from `$KUBECONFIG` or `~/.kube/config` (wins over KUBE_USE_CLUSTER)."),
    Variable("KUBE_USE_CLUSTER", "kube_use_cluster", parse_bool, True,
             "Load the in-cluster service account's credentials."),
    Variable("KUBE_NAMESPACES_ONLY", "kube_namespaces_only", _namespaces, (),
             "Watch only these namespaces (JSON array or comma-separated); unset watches all."),
    Variable("KUBE_NAMESPACES_EXCLUDE", "kube_namespaces_exclude", _namespaces, (),
             "Namespaces never watched nor announced (JSON array or comma-separated)."),
    Variable("KUBE_LABEL_SELECTOR", "kube_label_selector", _label_selector, "",
             "Label selector applied to the pod list and watch, e.g. `team=payments`."),
    Variable("RECOVERY_ALERT", "recovery_alert", parse_bool, True,
             "Announce when an incident has recovered."),
    Variable("CLUSTER_NAME", "cluster_name", _text, "kubernetes",
             "Cluster name shown in every message."),
    Variable("DRY_RUN", "dry_run", parse_bool, False,
             "Print the messages instead of posting them; no token needed."),
    Variable("LOG_LEVEL", "log_level", _choice(*_LEVELS), "info",
             "Lowest level logged: debug, info, warning or error."),
    Variable("LOG_FORMAT", "log_format", _choice("json", "console"), "json",
             "`json` (one object per line) or `console` (for people)."),
    Variable("HTTP_PORT", "http_port", _port, 8080,
             "Port of the health and metrics endpoints (0 picks a free port)."),
    Variable("LEADER_ELECT", "leader_elect", parse_bool, False,
             "Elect a leader among replicas through a Lease; only the leader sends."),
    Variable("LEASE_NAME", "lease_name", _dns_name, "kube-dingtalk",
             "Name of the Lease used for leader election (in POD_NAMESPACE)."),
    Variable("POD_NAME", "pod_name", _text, "",
             "This replica's identity in the Lease (the manifests set it from the downward API); unset: hostname."),
    Variable("POD_NAMESPACE", "pod_namespace", _dns_name, "",
             "Namespace of the Lease and the state ConfigMap; unset: the service account's namespace, else "
             "`default`."),
    Variable("STATE_CONFIGMAP", "state_configmap", _dns_name, "kube-dingtalk-state",
             "ConfigMap (in POD_NAMESPACE) where the leader keeps the alert state across restarts and failovers."),
    Variable("SHUTDOWN_TIMEOUT", "shutdown_timeout_ms", _milliseconds(0), 10000,
             "On SIGTERM, how long queued messages may take to flush (ms); keep under the pod's grace period."),
)


@dataclass(frozen=True)
class Settings:
    """The effective settings. Build it with ``Settings.from_env``."""

    dingtalk_token: Secret | None = None
    dingtalk_secret: Secret | None = None
    dingtalk_keyword: str = ""
    dingtalk_at_mobiles: tuple[str, ...] = ()
    dingtalk_at_user_ids: tuple[str, ...] = ()
    dingtalk_rate_per_minute: int = 20
    tick_rate_ms: int = 15000
    flood_expire_ms: int = 60000
    not_ready_min_time_ms: int = 60000
    kube_use_kubeconfig: bool = False
    kube_use_cluster: bool = True
    kube_namespaces_only: tuple[str, ...] = ()
    kube_namespaces_exclude: tuple[str, ...] = ()
    kube_label_selector: str = ""
    recovery_alert: bool = True
    cluster_name: str = "kubernetes"
    dry_run: bool = False
    log_level: str = "info"
    log_format: str = "json"
    http_port: int = 8080
    leader_elect: bool = False
    lease_name: str = "kube-dingtalk"
    pod_name: str = ""
    pod_namespace: str = ""
    state_configmap: str = "kube-dingtalk-state"
    shutdown_timeout_ms: int = 10000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Parse every variable; raise ``ConfigError`` naming each bad one."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for var in VARIABLES:
            raw = environ.get(var.env)
            if raw is None or (raw.strip() == "" and not var.secret):
                values[var.attr] = var.default
                continue
            try:
                values[var.attr] = var.parse(raw)
            except _Invalid as exc:
                shown = "***" if var.secret else raw
                problems.append(f"{var.env}={shown!r}: expected {exc}")
        problems.extend(_cross_checks(values))
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    @property
    def webhook_url(self) -> Secret | None:
        """The URL messages are posted to (the token is part of it)."""
        if self.dingtalk_token is None:
            return None
        token = self.dingtalk_token.reveal()
        if "://" in token:
            return Secret(token)
        return Secret(f"{DINGTALK_SEND_URL}?access_token={urllib.parse.quote(token, safe='')}")

    def secrets(self) -> list[str]:
        """Every secret string, for the log redactor."""
        return [s.reveal() for s in (self.dingtalk_token, self.dingtalk_secret, self.webhook_url) if s]

    def redacted(self) -> dict[str, Any]:
        """The settings by variable name, secrets shown as ``***`` (or null when unset)."""
        out: dict[str, Any] = {}
        for var in VARIABLES:
            value = getattr(self, var.attr)
            if var.secret:
                out[var.env] = None if value is None else "***"
            elif isinstance(value, tuple):
                out[var.env] = list(value)
            else:
                out[var.env] = value
        return out


def read_variable(environ: Mapping[str, str], env: str) -> Any:
    """One variable alone, for commands that need a setting but not a whole service's worth."""
    var = next(v for v in VARIABLES if v.env == env)
    raw = environ.get(env)
    if raw is None or raw.strip() == "":
        return var.default
    try:
        return var.parse(raw)
    except _Invalid as exc:
        raise ConfigError([f"{env}={'***' if var.secret else raw!r}: expected {exc}"]) from None


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values.get("dingtalk_token") is None and not values.get("dry_run"):
        problems.append("DINGTALK_TOKEN is not set: expected the robot's access token "
                        "or webhook URL (or DRY_RUN=true to print messages instead)")
    if not values.get("kube_use_kubeconfig") and not values.get("kube_use_cluster"):
        problems.append("KUBE_USE_KUBECONFIG and KUBE_USE_CLUSTER are both off: "
                        "expected one of them on to know where the cluster is")
    both = set(values.get("kube_namespaces_only", ())) & set(values.get("kube_namespaces_exclude", ()))
    if both:
        problems.append(f"KUBE_NAMESPACES_EXCLUDE names {', '.join(sorted(both))} which "
                        "KUBE_NAMESPACES_ONLY includes: expected each namespace in one list at most")
    return problems
