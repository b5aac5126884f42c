"""The three examples at the end of the segment format spec, as format-1 JSON."""

from __future__ import annotations

NEW_TRIALS = {
    "combinator": "and",
    "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "trial"},
        {
            "kind": "event",
            "event": "Session",
            "did": True,
            "first_time": True,
            "window": {"last": 90, "unit": "day"},
        },
    ],
}
WINDOW_SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}
POSSIBLE_CHURN = {
    "combinator": "and",
    "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"},
        {"kind": "event", "event": "Session", "did": False, "window": {"last": 90, "unit": "day"}},
    ],
}
