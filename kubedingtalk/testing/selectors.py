"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[Mapping[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_TERM = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>{_VALUE})"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<set>[-A-Za-z0-9_.,\s]*)\))?)\s*$"
)
FIELDS = ("metadata.name", "metadata.namespace", "status.phase")


class SelectorError(ValueError):
    """The selector does not parse; the message is what the API server would say."""


def _split(text: str) -> list[str]:
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t for t in terms if t.strip()]


def _requirement(term: str) -> tuple[str, str, frozenset[str]]:
    """(key, operator, values) for one term; operators: exists, !exists, =, !=, in, notin."""
    m = _TERM.match(term)
    if not m:
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    if m["nkey"]:
        return m["nkey"], "!exists", frozenset()
    if m["op"]:
        return m["key"], "!=" if m["op"] == "!=" else "=", frozenset({m["value"]})
    if m["setop"]:
        return m["key"], m["setop"], frozenset(v.strip() for v in m["set"].split(",") if v.strip())
    return m["key"], "exists", frozenset()


def _satisfied(labels: Mapping[str, str], key: str, op: str, values: frozenset[str]) -> bool:
    if op == "exists":
        return key in labels
    if op == "!exists":
        return key not in labels
    if op in ("=", "in"):
        return labels.get(key) in values
    return labels.get(key) not in values


def label_matcher(selector: str) -> Matcher:
    """A predicate over an object's ``metadata.labels`` for ``selector``."""
    requirements = [_requirement(term) for term in _split(selector)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_satisfied(labels, key, op, values) for key, op, values in requirements)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    section, _, name = path.partition(".")
    return str((obj.get(section) or {}).get(name) or "")


def field_matcher(selector: str, supported: tuple[str, ...] = FIELDS) -> Matcher:
    """A predicate for a field selector over the fields the API supports for pods."""
    requirements: list[tuple[str, str, bool]] = []
    for term in _split(selector):
        m = re.match(r"^\s*([a-zA-Z.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise SelectorError(f"invalid selector: {term.strip()!r}; can't understand it")
        path, op, value = m.groups()
        if path not in supported:
            raise SelectorError(f"field label not supported: {path}")
        requirements.append((path, value, op == "!="))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) != negate for path, value, negate in requirements)

    return matches
