"""Undo and redo of builder edits: the definitions the rows spelled, and how to show one again."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from heapseg.errors import HeapsegError
from heapseg.model import (
    Aggregate,
    Comparison,
    Duration,
    EventRule,
    FunnelRule,
    FunnelStep,
    Group,
    PropertyRule,
    SegmentRule,
    Then,
)

__all__ = ["EditHistory", "changed_rule", "loose_group"]


def _leaves(group: dict, path: str = "") -> dict[str, Any]:
    """Each group's own settings and each rule, by path: what an edit can change."""
    out: dict[str, Any] = {path: (group.get("combinator"), bool(group.get("not")))}
    for i, item in enumerate(group.get("rules") or []):
        where = f"{path}.rules[{i}]" if path else f"rules[{i}]"
        if isinstance(item, dict) and "rules" in item and "kind" not in item:
            out.update(_leaves(item, where))
        else:
            out[where] = item
    return out


def changed_rule(before: dict, after: dict) -> str | None:
    """The one place (a rule's or a group's path) where two definitions differ, if only one."""
    old, new = _leaves(before), _leaves(after)
    if old.keys() != new.keys():
        return None  # a rule or a group was added, removed or moved
    changed = [path for path in new if old[path] != new[path]]
    return changed[0] if len(changed) == 1 else None


class EditHistory:
    """The definitions a builder showed, oldest first, and where undo / redo stand among them.

    Typing makes an edit per keystroke: edits of the same rule within ``merge_seconds`` of each
    other make one step, so one undo takes back the whole word.

    Parameters
    ----------
    limit
        How many steps are kept (the oldest go first).
    merge_seconds
        Edits of one rule closer than this are one step (0 keeps every edit).
    clock
        Seconds, for the merging (tests pass their own).
    """

    def __init__(
        self,
        limit: int = 200,
        merge_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.merge_seconds = merge_seconds
        self._clock = clock
        self._states: list[dict] = []
        self._at = -1
        self._last_place: str | None = None
        self._last_time = -float("inf")

    def reset(self, state: dict) -> None:
        """Start again from ``state`` (a definition opened or started): nothing to undo."""
        self._states = [copy.deepcopy(state)]
        self._at = 0
        self._last_place = None

    @property
    def current(self) -> dict | None:
        return self._states[self._at] if self._states else None

    @property
    def can_undo(self) -> bool:
        return self._at > 0

    @property
    def can_redo(self) -> bool:
        return 0 <= self._at < len(self._states) - 1

    def record(self, state: dict) -> bool:
        """Remember an edit's definition; returns whether it made a new step."""
        if not self._states:
            self.reset(state)
            return False
        current = self._states[self._at]
        if state == current:
            return False
        now = self._clock()
        place = changed_rule(current, state)
        merge = (
            place is not None
            and place == self._last_place
            and now - self._last_time < self.merge_seconds
            and self._at > 0
            and changed_rule(self._states[self._at - 1], state) == place
        )
        del self._states[self._at + 1 :]
        if merge:
            self._states[self._at] = copy.deepcopy(state)
        else:
            self._states.append(copy.deepcopy(state))
            if len(self._states) > self.limit:
                del self._states[0]
            self._at = len(self._states) - 1
        self._last_place, self._last_time = place, now
        return not merge

    def undo(self) -> dict | None:
        """The definition before the current one (None when there is none)."""
        if not self.can_undo:
            return None
        self._at -= 1
        self._last_place = None
        return copy.deepcopy(self._states[self._at])

    def redo(self) -> dict | None:
        """The definition undone last (None when there is none)."""
        if not self.can_redo:
            return None
        self._at += 1
        self._last_place = None
        return copy.deepcopy(self._states[self._at])

    def replace_current(self, state: dict) -> None:
        """What the rows spell once a state is shown again (the same, up to normalisation)."""
        if self._states:
            self._states[self._at] = copy.deepcopy(state)


# ---------------------------------------------------------------------- showing a state again


def _try(parse: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
    try:
        return parse()
    except (HeapsegError, TypeError, ValueError, KeyError, AttributeError):
        return fallback()


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _loose_property(raw: dict) -> PropertyRule:
    return _try(
        lambda: PropertyRule.from_dict(raw),
        lambda: PropertyRule(
            str(raw.get("kind")),
            raw.get("field"),
            raw.get("operator"),
            _tuple(raw.get("value")),
            raw.get("unit"),
        ),
    )


def _loose_where(raw: Any) -> Group | None:
    if not isinstance(raw, dict):
        return None
    return _loose(raw)


def _loose_event(raw: dict) -> EventRule:
    def window() -> Any:
        from heapseg.model import _parse_window  # the one parser of windows

        return _parse_window(raw["window"], "window")

    def comparison(data: Any) -> Comparison | None:
        if not isinstance(data, dict):
            return None
        return Comparison(data.get("operator"), _tuple(data.get("value")), data.get("unit"))

    def aggregate() -> Aggregate | None:
        data = raw.get("aggregate")
        if not isinstance(data, dict):
            return None
        return _try(
            lambda: Aggregate.from_dict(data, "aggregate"),
            lambda: Aggregate(data.get("fn"), data.get("field"), comparison(data)),
        )

    def then() -> Then | None:
        data = raw.get("then")
        if not isinstance(data, dict):
            return None
        within = data.get("within")
        return Then(
            data.get("event") or "",
            _try(lambda: Duration.from_dict(within, "within"), lambda: None) if within else None,
            _loose_where(data.get("where")),
        )

    rule = object.__new__(EventRule)  # a half-filled rule is shown, not checked
    fields = {
        "event": raw.get("event") or "",
        "did": raw.get("did", True) is not False,
        "count": comparison(raw.get("count")),
        "aggregate": aggregate(),
        "window": _try(window, lambda: None) if raw.get("window") else None,
        "where": _loose_where(raw.get("where")),
        "first_time": bool(raw.get("first_time")),
        "then": then(),
        "_given_first_time": False,
        "_given_did": True,
    }
    for name, value in fields.items():
        object.__setattr__(rule, name, value)
    return rule


def _loose_funnel(raw: dict) -> FunnelRule:
    from heapseg.model import _parse_window  # the one parser of windows

    steps = tuple(
        FunnelStep(step.get("event") or "", _loose_where(step.get("where")))
        for step in raw.get("steps") or []
        if isinstance(step, dict)
    )
    within, window = raw.get("within"), raw.get("window")

    def step_number(key: str, default: int | None) -> int | None:
        value = raw.get(key, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    rule = object.__new__(FunnelRule)  # a half-filled rule is shown, not checked
    fields = {
        "steps": steps,
        "within": _try(lambda: Duration.from_dict(within, "within"), lambda: None)
        if within
        else None,
        "window": _try(lambda: _parse_window(window, "window"), lambda: None) if window else None,
        "reached": step_number("reached", len(steps)),
        "not_reached": step_number("not_reached", None),
        "_given_reached": "reached" in raw,
    }
    for name, value in fields.items():
        object.__setattr__(rule, name, value)
    return rule


def _loose_rule(raw: Any) -> Any:
    if isinstance(raw, dict) and "kind" not in raw:
        return _loose(raw)
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind in PropertyRule.KINDS:
        return _loose_property(raw)
    if kind == "event":
        return _try(lambda: EventRule.from_dict(raw), lambda: _loose_event(raw))
    if kind == "funnel":
        return _try(lambda: FunnelRule.from_dict(raw), lambda: _loose_funnel(raw))
    if kind == "segment":
        return _try(
            lambda: SegmentRule.from_dict(raw),
            lambda: SegmentRule(raw.get("id"), raw.get("in", True) is not False),
        )
    # Kinds this module does not know (rows added by others) must be valid to come back.
    return Group.from_dict({"combinator": "and", "rules": [raw]}).rules[0]


def _loose(raw: dict) -> Group:
    rules = tuple(_loose_rule(item) for item in raw.get("rules") or [])
    return Group(raw.get("combinator", "and"), rules, bool(raw.get("not")))


def loose_group(raw: dict) -> Group:
    """The rows' definition as model objects, half-filled rules included, to show it again.

    A valid definition comes back as :meth:`Group.from_dict` would give it; a rule still being
    filled in (no value, no event name yet) comes back as it was, unchecked.
    """
    return _try(lambda: Group.from_dict(raw), lambda: _loose(raw))
