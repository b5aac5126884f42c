"""From the builder's tree to what to count: the segment, each rule alone, each group, and the errors."""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from heapseg.errors import HeapsegError
from heapseg.hints import DataHintWarning
from heapseg.model import Group
from heapseg.resolver import Resolver
from heapseg.widgets.group import GroupBox
from heapseg.widgets.node import Node

__all__ = ["WITHOUT", "Plan", "make_plan", "owner_of", "without_rules"]

#: The kinds of rows that select users on their own (and so get a count of their own).
COUNTED = ("user", "account", "event", "funnel", "segment")
_WRAPPED = "rules[0]"
#: Prefix of the query keys that count the segment without one rule: ``without:rules[1]``.
WITHOUT = "without:"
_STEP = re.compile(r"(\w+)(?:\[(\d+)\])?")
#: What a rule still needs, by the key that has no value yet.
_NEEDS = {
    "event": "choose an event",
    "id": "choose a segment",
    "field": "choose a property",
    "from": "pick the dates",
    "to": "pick the dates",
    "window": "pick the dates",
}


@dataclass
class Plan:
    """What one edit asks of the backend, and what is wrong with the definition.

    Attributes
    ----------
    definition
        The format-1 dict the inputs spell (possibly invalid).
    segment
        The validated segment, or None while a rule is invalid.
    segment
        The validated segment without its incomplete rules, or None while a rule is invalid.
    queries
        Path -> segment to count: ``""`` for the whole segment, ``rules[1]`` for a rule alone,
        ``rules[2]`` for a nested group, ``without:rules[1]`` for the segment without that rule
        or group (what the rule costs).
    errors, warnings
        Path of the row (or group) -> message.
    incomplete
        Path of a row still being filled in (no value, no event name yet) -> what it needs.
        Not an error: the rule is left out of the counts until it is complete.
    skipped
        The paths of the rules left out of the counts because they are incomplete.
    """

    definition: dict
    segment: Group | None = None
    queries: dict[str, Group] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    incomplete: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


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


def _lookup(definition: Any, path: str) -> tuple[bool, Any]:
    """The value at a format-1 path (``rules[0].where.rules[1].value``): (found, value)."""
    node = definition
    for part in path.split("."):
        match = _STEP.fullmatch(part)
        if match is None or not isinstance(node, dict) or match.group(1) not in node:
            return False, None
        node = node[match.group(1)]
        if match.group(2) is not None:
            index = int(match.group(2))
            if not isinstance(node, list) or index >= len(node):
                return False, None
            node = node[index]
    return True, node


def _missing(definition: dict, error_path: str) -> str | None:
    """What a rule still needs, when its error is only that something is not filled in yet."""
    found, value = _lookup(definition, error_path)
    if found and value not in (None, "", [], {}):
        return None
    key = error_path.rsplit(".", 1)[-1].split("[", 1)[0]
    return _NEEDS.get(key, "enter a value")


def without_rules(definition: dict, paths: list[str]) -> dict:
    """A copy of a group's definition with the rules (or groups) at ``paths`` taken out."""
    out = copy.deepcopy(definition)
    # Deepest and last first: taking one out does not move the others.
    steps = sorted(
        ([int(i) for i in re.findall(r"rules\[(\d+)\]", path)] for path in paths), reverse=True
    )
    for indexes in steps:
        group = out
        for index in indexes[:-1]:
            group = group["rules"][index]
        del group["rules"][indexes[-1]]
    return out


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

    def unfinished(error: Exception, path: str) -> bool:
        """Record an error that is only something not filled in yet as "incomplete"."""
        error_path = _relocate(getattr(error, "path", "") or _WRAPPED, path)
        needs = _missing(plan.definition, error_path)
        if needs is None:
            return False
        owner = owner_of(error_path, paths)
        plan.incomplete[owner] = needs
        if owner != path:
            plan.incomplete[path] = "not counted until its filters are complete"
        plan.skipped.append(path)
        return True

    for path, node in nodes.items():
        if node.kind not in COUNTED:
            continue
        try:
            single = Group.from_dict({"combinator": "and", "rules": [node.to_dict()]})
        except HeapsegError as exc:
            if not unfinished(exc, path):
                record(exc, _relocate(getattr(exc, "path", "") or _WRAPPED, path))
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DataHintWarning)
                dataset.predicate(single, as_of, resolver)
        except HeapsegError as exc:
            record(exc, _relocate(getattr(exc, "path", "") or _WRAPPED, path))
            continue
        for warning in caught:
            if issubclass(warning.category, DataHintWarning):
                # On the row it is about: a value hint of a filter goes on the filter's row.
                where = _relocate(getattr(warning.message, "path", "") or _WRAPPED, path)
                plan.warnings.setdefault(owner_of(where, paths), _strip_path(str(warning.message)))
        valid.add(path)
        plan.queries[path] = single

    def inside(path: str) -> list[str]:
        return [p for p in paths if p != path and owner_of(p, [path]) == path]

    def group_ok(path: str) -> bool:
        counted = [p for p in inside(path) if nodes[p].kind in COUNTED]
        return all(p in valid or p in plan.skipped for p in counted) and not any(
            p in plan.errors for p in inside(path)
        )

    def complete_part(path: str) -> dict:
        """The group at ``path`` without its incomplete rules."""
        below = [p[len(path) :].lstrip(".") for p in plan.skipped if p in inside(path)]
        return without_rules(nodes[path].to_dict(), below)

    groups = [
        path
        for path, node in nodes.items()
        if isinstance(node, GroupBox) and path and node.rule_kinds != ("event_property",)
    ]
    for path in groups:
        if not group_ok(path):
            continue
        try:
            plan.queries[path] = Group.from_dict(complete_part(path))
        except HeapsegError as exc:
            record(exc, path)
    if group_ok(""):
        try:
            plan.segment = Group.from_dict(complete_part(""))
            plan.queries[""] = plan.segment
        except HeapsegError as exc:
            record(exc, getattr(exc, "path", "") or "")
    if plan.segment is not None:
        # What each rule costs: the segment without it, counted in the same query.
        costed = [p for p in paths if p in valid or (p in groups and p in plan.queries)]
        for path in costed:
            without = without_rules(plan.definition, [path, *plan.skipped])
            plan.queries[WITHOUT + path] = Group.from_dict(without)
    return plan
