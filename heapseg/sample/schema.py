"""What the sample data is: its dates, default size and seed, data version, and the schema
of each of its tables."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pyarrow as pa

__all__ = [
    "ACCOUNTS_SCHEMA",
    "ACCOUNT_HISTORY_SCHEMA",
    "DATA_VERSION",
    "DEFAULT_SEED",
    "DEFAULT_USERS",
    "EVENTS_SCHEMA",
    "EVENT_NAMES",
    "MIGRATIONS_SCHEMA",
    "SAMPLE_AS_OF",
    "SAMPLE_START",
    "SCHEMAS",
    "USERS_SCHEMA",
    "USER_HISTORY_SCHEMA",
    "USER_TRAIT_CHANGES_SCHEMA",
    "Format",
]

#: The moment the sample data was "exported": no event, signup or upgrade lies at or after it.
SAMPLE_AS_OF = datetime(2026, 11, 1)
#: The first day of the sample's history (the product's launch).
SAMPLE_START = datetime(2025, 5, 1)
DEFAULT_USERS = 10_000
DEFAULT_SEED = 42
#: Bump whenever the generator's output changes, so cached files are regenerated.
DATA_VERSION = 2

Format = Literal["duckdb", "parquet"]

USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("subscription_type", pa.string()),
        ("country", pa.string()),
        ("email", pa.string()),
        ("role", pa.string()),
        ("signup_date", pa.date32()),
        ("ltv", pa.float64()),
        ("email_opt_in", pa.bool_()),
        ("account_id", pa.int64()),
        ("joined_at", pa.timestamp("us")),  # the signup moment (naive UTC), = "Created Account"
    ]
)
ACCOUNTS_SCHEMA = pa.schema(
    [
        ("account_id", pa.int64()),
        ("tier", pa.string()),
        ("vertical", pa.string()),
        ("location", pa.string()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("time", pa.timestamp("us")),
        ("event", pa.string()),
        ("session_id", pa.int64()),
        ("path", pa.string()),
        ("search_term", pa.string()),
        ("product_id", pa.int64()),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
        ("category", pa.string()),
        ("revenue", pa.float64()),
        ("item_count", pa.int64()),
        ("payment_method", pa.string()),
        ("promo_code", pa.string()),
        ("rating", pa.int64()),
    ]
)
MIGRATIONS_SCHEMA = pa.schema([("from_user_id", pa.int64()), ("to_user_id", pa.int64())])
#: How users' tracked properties changed, snapshots form (SCD type 2; valid_to NULL = current).
USER_HISTORY_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("valid_from", pa.timestamp("us")),
        ("valid_to", pa.timestamp("us")),
        ("subscription_type", pa.string()),
        ("role", pa.string()),
        ("account_id", pa.int64()),
    ]
)
#: The same history in changes form (Segment ``identifies``): NULL = not set by this row.
USER_TRAIT_CHANGES_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("time", pa.timestamp("us")),
        ("subscription_type", pa.string()),
        ("role", pa.string()),
        ("account_id", pa.int64()),
    ]
)
#: How accounts' tiers changed, snapshots form.
ACCOUNT_HISTORY_SCHEMA = pa.schema(
    [
        ("account_id", pa.int64()),
        ("valid_from", pa.timestamp("us")),
        ("valid_to", pa.timestamp("us")),
        ("tier", pa.string()),
    ]
)

#: Every table of the sample, by name, in the order they are created.
SCHEMAS = {
    "users": USERS_SCHEMA,
    "accounts": ACCOUNTS_SCHEMA,
    "events": EVENTS_SCHEMA,
    "user_migrations": MIGRATIONS_SCHEMA,
    "user_history": USER_HISTORY_SCHEMA,
    "user_trait_changes": USER_TRAIT_CHANGES_SCHEMA,
    "account_history": ACCOUNT_HISTORY_SCHEMA,
}

EVENT_NAMES = (
    "Session",
    "Pageview",
    "Search Bar",
    "Add to Cart",
    "Completed Order",
    "Refund",
    "Product Review Published",
    "Created Account",
    "Started Trial",
    "Upgrade",
    "Logged In",
    "Support Request",
)
