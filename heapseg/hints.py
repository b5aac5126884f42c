"""Hints about what a definition names that the data does not hold: values, with the nearest ones.

A rule may test a value nobody has yet (that is allowed), but ``account.tier == "Gold"`` on data
that says ``"gold"`` selecting nobody is a typo far more often. Compiling warns, as it does for
event names, with the closest values the data has; the builder shows the same words on the row.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from heapseg.model import PropertyRule

__all__ = [
    "VALUE_CHECK_LIMIT",
    "DataHintWarning",
    "UnknownValueWarning",
    "check_value",
    "outside_stacklevel",
    "value_hint",
]

#: A property is checked only when it has at most this many distinct values: beyond, the values
#: fetched would be only some of them, and a value missing from those proves nothing.
VALUE_CHECK_LIMIT = 1000
#: Operators whose value must equal a value of the data to select anyone (or, for the negative
#: ones, to exclude anyone).
CHECKED_OPERATORS = ("=", "!=", "in", "not in")
_NOUNS = {"user": "user", "account": "account", "event": "event", "event_property": "event"}
#: heapseg's own folder: a warning points at the first line outside it (the analyst's).
_PACKAGE = os.path.dirname(__file__) + os.sep


def outside_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the caller point at the first line
    outside heapseg: the analyst's cell, not heapseg's own code.

    How deep heapseg is when a definition is checked varies (a count, a count whose SQL is
    reused, a chart, the builder's worker), so no fixed level is right. Python 3.12's
    ``skip_file_prefixes`` does this; 3.10 and 3.11 need the stack walked.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


class DataHintWarning(UserWarning):
    """A definition names something the data does not hold (yet): allowed, but worth a look.

    ``path`` locates the rule's part in the definition (``rules[1].value``).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnknownValueWarning(DataHintWarning):
    """A property rule compares with a value that no user, account or event has."""


def value_hint(value: str, known: Sequence[str]) -> str:
    """What to say about ``value``, absent from ``known``: the same value in another case, or
    the closest values, or a few of the values there are.

    Examples
    --------
    >>> value_hint("Gold", ["bronze", "silver", "gold"])
    "the data has 'gold' (= and in compare case-sensitively; contains does not)"
    >>> value_hint("electronic", ["Kitchen", "Electronics", "Toys"])
    "did you mean 'Electronics'?"
    >>> value_hint("zzz", ["a", "b"])
    "the data's values include 'a', 'b'"
    """
    folded = value.casefold()
    same = [k for k in known if k.casefold() == folded]
    if same:
        listed = ", ".join(repr(k) for k in same[:3])
        return f"the data has {listed} (= and in compare case-sensitively; contains does not)"
    by_folded: dict[str, str] = {}
    for k in known:
        by_folded.setdefault(k.casefold(), k)
    close = difflib.get_close_matches(folded, list(by_folded), n=3, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(repr(by_folded[c]) for c in close)}?"
    return f"the data's values include {', '.join(repr(k) for k in list(known)[:5])}"


def check_value(
    rule: PropertyRule,
    kind: str,
    is_string: bool,
    known_values: Callable[[str, str], Sequence[Any] | None] | None,
    path: str,
) -> None:
    """Warn (:class:`UnknownValueWarning`) for each value of a ``=`` / ``in`` rule (or their
    negations) on a string property that the data does not hold.

    ``known_values(kind, field)`` gives the property's distinct values, or None when they are
    too many to tell (the rule is then not checked).
    """
    if known_values is None or not is_string or rule.operator not in CHECKED_OPERATORS:
        return
    wanted = [v for v in rule.values if isinstance(v, str) and v != ""]
    if not wanted:
        return
    known = known_values(kind, rule.field)
    if not known:
        return
    present = set(known)
    noun = _NOUNS.get(kind, kind)
    for value in wanted:
        if value in present:
            continue
        warnings.warn(
            UnknownValueWarning(
                f"{path}.value: no {noun} has {rule.field} {value!r}; {value_hint(value, known)}",
                f"{path}.value" if path else "value",
            ),
            stacklevel=outside_stacklevel(),
        )
