"""From the builder's tree to what to count: the segment, each rule alone, each group, and the errors."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from heapseg.compile import UnknownEventWarning
from heapseg.errors import HeapsegError
from heapseg.model import Group
from heapseg.resolver import Resolver
from heapseg.widgets.group import GroupBox
from heapseg.widgets.node import Node

__all__ = ["Plan", "make_plan", "owner_of"]

#: The kinds of rows that select users on their own (and so get a count of their own).
COUNTED = ("user", "account", "event", "segment")
_WRAPPED = "rules[0]"


@dataclass
class Plan:
    """What one edit asks of the backend, and what is wrong with the definition.

    Attributes
    ----------
    definition
        The format-1 dict the inputs spell (possibly invalid).
    segment
        The validated segment, or None while a rule is invalid.
    queries
        Path -> segment to count: ``""`` for the whole segment, ``rules[1]`` for a rule alone,
        ``rules[2]`` for a nested group.
    errors, warnings
        Path of the row (or group) -> message.
    """

    definition: dict
    segment: Group | None = None
    queries: dict[str, Group] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)


def owner_of(error_path: str, paths: list[str]) -> str:
    """The path of the deepest row or group that contains ``error_path``."""
    best = ""
    for path in paths:
        if not path or not error_path.startswith(path):
            continue
        rest = error_path[len(path) :]
        if (rest == "" or rest[0] in ".[") and len(path) > len(best):
            best = path
    return best


def _message(error: Exception, error_path: str, owner: str) -> str:
    reason = getattr(error, "reason", None) or str(error)
    rest = error_path[len(owner) :].lstrip(".")
    return f"{rest}: {reason}" if rest else reason


def _relocate(path: str, base: str) -> str:
    """A path inside a one-rule wrapper group (``rules[0]...``) as a path in the whole segment."""
    if path.startswith(_WRAPPED):
        return base + path[len(_WRAPPED) :]
    return base


def _strip_path(text: str) -> str:
    # Compiler warnings start with the rule's path inside the wrapper; the row already says where.
    return re.sub(r"^[\w\[\].<>-]*: ", "", text)


def make_plan(root: GroupBox, dataset: Any, as_of: Any, resolver: Resolver | None) -> Plan:
    """Validate every row on its own (so each shows its own error) and list what to count.

    Rules are parsed and compiled one by one (compiling runs nothing on the backend); the whole
    segment is counted only when every rule is valid, and a nested group when all of its rules
    are.
    """
    plan = Plan(definition=root.to_dict())
    nodes: dict[str, Node] = dict(root.walk(""))
    paths = list(nodes)
    valid: set[str] = set()

    def record(error: Exception, error_path: str) -> None:
        owner = owner_of(error_path, paths)
        plan.errors.setdefault(owner, _message(error, error_path, owner))

    for path, node in nodes.items():
        if node.kind not in COUNTED:
            continue
        try:
            single = Group.from_dict({"combinator": "and", "rules": [node.to_dict()]})
        except HeapsegError as exc:
            record(exc, _relocate(getattr(exc, "path", "") or _WRAPPED, path))
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnknownEventWarning)
                dataset.predicate(single, as_of, resolver)
        except HeapsegError as exc:
            record(exc, _relocate(getattr(exc, "path", "") or _WRAPPED, path))
            continue
        for warning in caught:
            if issubclass(warning.category, UnknownEventWarning):
                plan.warnings.setdefault(path, _strip_path(str(warning.message)))
        valid.add(path)
        plan.queries[path] = single

    def group_ok(path: str) -> bool:
        inside = [p for p in paths if p != path and owner_of(p, [path]) == path]
        counted = [p for p in inside if nodes[p].kind in COUNTED]
        return all(p in valid for p in counted) and not any(p in plan.errors for p in inside)

    for path, node in nodes.items():
        if node.kind != "group" or not isinstance(node, GroupBox) or path == "":
            continue
        if node.rule_kinds == ("event_property",) or not group_ok(path):
            continue
        try:
            plan.queries[path] = Group.from_dict(node.to_dict())
        except HeapsegError as exc:
            record(exc, path)
    if group_ok(""):
        try:
            plan.segment = Group.from_dict(plan.definition)
            plan.queries[""] = plan.segment
        except HeapsegError as exc:
            record(exc, getattr(exc, "path", "") or "")
    return plan
