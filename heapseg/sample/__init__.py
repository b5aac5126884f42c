"""The bundled sample data: a seeded, Heap-like e-commerce / SaaS dataset, generated rather
than shipped.

What it is lives in :mod:`~heapseg.sample.schema`, how its rows are made in
:mod:`~heapseg.sample.generator`, how it is written and cached in :mod:`~heapseg.sample.files`,
its command line (``python -m heapseg.sample``) in :mod:`~heapseg.sample.command`, and the
sample written in the warehouse layouts of the connect presets in :mod:`~heapseg.sample.layouts`.
"""

from __future__ import annotations

from heapseg.sample.command import main
from heapseg.sample.files import default_path, ensure_sample, generate
from heapseg.sample.layouts import LAYOUTS, layout_tables, write_layout
from heapseg.sample.schema import (
    ACCOUNT_HISTORY_SCHEMA,
    ACCOUNTS_SCHEMA,
    DATA_VERSION,
    DEFAULT_SEED,
    DEFAULT_USERS,
    EVENT_NAMES,
    EVENTS_SCHEMA,
    MIGRATIONS_SCHEMA,
    SAMPLE_AS_OF,
    SAMPLE_START,
    USER_HISTORY_SCHEMA,
    USER_TRAIT_CHANGES_SCHEMA,
    USERS_SCHEMA,
)

__all__ = [
    "ACCOUNTS_SCHEMA",
    "ACCOUNT_HISTORY_SCHEMA",
    "DATA_VERSION",
    "DEFAULT_SEED",
    "DEFAULT_USERS",
    "EVENTS_SCHEMA",
    "EVENT_NAMES",
    "LAYOUTS",
    "MIGRATIONS_SCHEMA",
    "SAMPLE_AS_OF",
    "SAMPLE_START",
    "USERS_SCHEMA",
    "USER_HISTORY_SCHEMA",
    "USER_TRAIT_CHANGES_SCHEMA",
    "default_path",
    "ensure_sample",
    "generate",
    "layout_tables",
    "main",
    "write_layout",
]
