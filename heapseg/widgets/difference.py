"""Two versions of a saved segment told apart in words, and the segments that refer to one."""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from typing import Any

from heapseg.model import Group
from heapseg.widgets.history import loose_group

__all__ = ["describe_difference", "rule_texts", "users_of"]


def users_of(catalog: Any, segment_id: str) -> list[str]:
    """The names of the catalog's segments (everyone's) whose definitions refer to this one."""
    return [
        entry.name
        for entry in catalog.list(everyone=True)
        if entry.id != segment_id and segment_id in entry.segment.referenced_segments()
    ]


def _text(rule: Any) -> str:
    try:
        return rule.describe(top=False) if isinstance(rule, Group) else rule.describe()
    except Exception:  # a rule still being filled in may not describe itself
        return json.dumps(rule.to_dict() if hasattr(rule, "to_dict") else str(rule))


def rule_texts(group: Group) -> list[str]:
    """The plain-English text of each rule and nested group of a definition, in order."""
    return [_text(rule) for rule in group.rules]


def _group_of(definition: Any) -> Group:
    return definition if isinstance(definition, Group) else loose_group(definition)


def describe_difference(
    theirs: Any, mine: dict, mine_segment: Group | None = None, who: str | None = None
) -> str:
    """HTML: what the saved version (``theirs``, a catalog entry) has that ``mine`` has not.

    ``mine`` holds what the builder would save (``definition``, ``name``, ``description``,
    ``category``, ``visibility``, ``type``); ``who`` saved theirs. Rules are compared by their description: those
    only in theirs, those only in mine; then the combinator, ``not``, the name and the texts.
    """
    ours = _group_of(mine_segment if mine_segment is not None else mine["definition"])
    saved: Group = theirs.segment
    lines: list[str] = []
    only_theirs = Counter(rule_texts(saved)) - Counter(rule_texts(ours))
    only_mine = Counter(rule_texts(ours)) - Counter(rule_texts(saved))
    for text in only_theirs.elements():
        lines.append(f"<li class='heapseg-diff-removed'>only in theirs: {escape(text)}</li>")
    for text in only_mine.elements():
        lines.append(f"<li class='heapseg-diff-added'>only in yours: {escape(text)}</li>")
    if saved.combinator != ours.combinator:
        lines.append(
            f"<li>theirs combines the rules with {saved.combinator.upper()}, "
            f"yours with {ours.combinator.upper()}</li>"
        )
    if saved.negate != ours.negate:
        lines.append(f"<li>{'theirs' if saved.negate else 'yours'} is negated (not)</li>")
    fields = (
        ("name", theirs.name, mine["name"]),
        ("description", theirs.description, mine["description"]),
        ("category", theirs.category, mine["category"]),
        ("visibility", theirs.visibility, mine["visibility"]),
        ("type", theirs.type, mine["type"]),
    )
    for label, their_value, my_value in fields:
        if (their_value or "") != (my_value or ""):
            lines.append(
                f"<li>{label}: theirs “{escape(str(their_value or ''))}”, "
                f"yours “{escape(str(my_value or ''))}”</li>"
            )
    by = f", by {escape(who)}" if who else ""
    head = f"<b>Theirs</b> (revision {theirs.revision}{by}) against <b>yours</b>:"
    if not lines:
        return f"{head} <i>the same definition and texts</i>"
    return f"{head}<ul>{''.join(lines)}</ul>"
