"""The sample's rows: a seeded, Heap-like e-commerce / SaaS shop, simulated block by block
of users (their lives, sessions, events, identity merges and property histories)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from heapseg.sample.schema import (
    ACCOUNT_HISTORY_SCHEMA,
    ACCOUNTS_SCHEMA,
    EVENT_NAMES,
    EVENTS_SCHEMA,
    MIGRATIONS_SCHEMA,
    SAMPLE_AS_OF,
    SAMPLE_START,
    USER_HISTORY_SCHEMA,
    USER_TRAIT_CHANGES_SCHEMA,
    USERS_SCHEMA,
)

__all__ = ["tables"]

log = logging.getLogger(__name__)

# Users are generated in fixed blocks, each with its own random stream derived from the seed, so the
# data depends on (seed, n_users) only and not on how many users are written per chunk.
_BLOCK_USERS = 1_000
_MAX_SESSIONS = 999  # session ids are built from user_id * 1000 + session index

# Event codes: indexes into EVENT_NAMES.
(
    _SESSION,
    _PAGEVIEW,
    _SEARCH,
    _CART,
    _ORDER,
    _REFUND,
    _REVIEW,
    _CREATED,
    _TRIAL,
    _UPGRADE,
    _LOGIN,
    _SUPPORT,
) = range(len(EVENT_NAMES))

# ---------------------------------------------------------------------------------------------
# Vocabularies: (value, weight) pairs; weights need not sum to one.

_COUNTRIES = (
    ("US", 34),
    ("GB", 8),
    ("DE", 8),
    ("IN", 8),
    ("FR", 6),
    ("CA", 5),
    ("BR", 5),
    ("JP", 4),
    ("AU", 3),
    ("ES", 3),
    ("NL", 3),
    ("IT", 3),
    ("MX", 3),
    ("SE", 2),
    ("PL", 2),
    ("KR", 2),
    ("SG", 1),
)
_ROLES = (
    ("analyst", 16),
    ("engineer", 18),
    ("marketer", 14),
    ("manager", 12),
    ("product manager", 9),
    ("founder", 5),
    ("designer", 7),
    ("data scientist", 6),
    ("sales", 6),
    ("executive", 3),
    ("support", 4),
)
_PERSONAL_DOMAINS = (
    ("gmail.com", 50),
    ("yahoo.com", 14),
    ("outlook.com", 10),
    ("hotmail.com", 8),
    ("icloud.com", 8),
    ("proton.me", 3),
    ("gmx.de", 3),
    ("yahoo.co.jp", 2),
    ("orange.fr", 2),
)
_COMPANY_WORDS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "vandelay",
    "soylent", "tyrell", "cyberdyne", "aperture", "oscorp", "piedpiper", "massive", "northwind",
    "contoso", "fabrikam", "tailspin", "litware", "adatum", "bluth", "dunder", "gringotts",
    "monarch", "nakatomi", "octan", "prestige", "sterling", "wernham", "zenith", "orbit", "lumen",
    "vertex", "nimbus", "quanta", "helix", "atlas", "cobalt",
)  # fmt: skip
_COMPANY_SUFFIXES = ("", "labs", "corp", "tech", "systems", "group", "data", "works", "hq", "io")
_COMPANY_TLDS = ("com", "com", "com", "io", "co", "de", "fr", "co.uk", "com.br", "in")
_FIRST_NAMES = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "daniel", "karen", "matthew", "nancy", "anthony", "lisa", "mark", "betty", "paul", "sandra",
    "priya", "arjun", "ananya", "rahul", "wei", "li", "yuki", "haruto", "sofia", "lucas", "emma",
    "noah", "lea", "lukas", "chloe", "hugo", "maria", "jose", "ana", "pedro", "olivia", "liam",
    "fatima", "omar", "ingrid", "lars", "zofia", "jakub", "min-jun", "seo-yeon", "chen", "aisha",
)  # fmt: skip
_LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
    "clark", "lewis", "walker", "hall", "patel", "sharma", "singh", "kumar", "wang", "zhang",
    "tanaka", "suzuki", "sato", "muller", "schmidt", "schneider", "fischer", "dubois", "bernard",
    "moreau", "silva", "santos", "oliveira", "rossi", "russo", "nowak", "kowalski", "kim", "park",
    "choi", "andersson", "johansson", "dejong", "ivanova",
)  # fmt: skip
_TIERS = (("bronze", 45), ("silver", 30), ("gold", 18), ("platinum", 7))
_VERTICALS = (
    ("ecommerce", 22),
    ("saas", 20),
    ("fintech", 10),
    ("media", 8),
    ("healthcare", 7),
    ("education", 7),
    ("travel", 6),
    ("retail", 8),
    ("gaming", 5),
    ("logistics", 4),
    ("nonprofit", 3),
)
_LOCATIONS = (
    ("New York", 14),
    ("San Francisco", 12),
    ("Austin", 5),
    ("Chicago", 5),
    ("Seattle", 4),
    ("Toronto", 5),
    ("London", 10),
    ("Berlin", 7),
    ("Paris", 6),
    ("Amsterdam", 4),
    ("Stockholm", 2),
    ("Madrid", 3),
    ("Bangalore", 7),
    ("São Paulo", 4),
    ("Mexico City", 3),
    ("Tokyo", 4),
    ("Seoul", 2),
    ("Singapore", 3),
    ("Sydney", 3),
)
_PAGES = (
    ("/", 14),
    ("/products", 10),
    ("/deals", 3),
    ("/pricing", 4),
    ("/features", 2.5),
    ("/search", 4),
    ("/cart", 5),
    ("/checkout", 3),
    ("/login", 2),
    ("/signup", 1),
    ("/account", 3),
    ("/account/orders", 2),
    ("/account/settings", 1.2),
    ("/blog", 2),
    ("/blog/how-to-choose-running-shoes", 1),
    ("/blog/spring-collection-2026", 0.8),
    ("/blog/summer-sale", 0.8),
    ("/help", 1.5),
    ("/help/returns", 1),
    ("/help/shipping", 1),
    ("/docs/getting-started", 0.8),
    ("/docs/api", 0.5),
    ("/integrations", 0.6),
    ("/changelog", 0.4),
    ("/about", 0.7),
    ("/careers", 0.3),
    ("/contact", 0.5),
)
_PRODUCT_PAGE_SHARE = 0.3  # of all pageviews land on a product page
_SEARCH_TERMS = (
    "running shoes", "rain jacket", "yoga mat", "wireless headphones", "backpack",
    "coffee grinder", "gift card", "sneakers", "water bottle", "laptop stand", "desk lamp",
    "sunglasses", "winter coat", "hiking boots", "phone case", "usb-c cable",
    "mechanical keyboard", "standing desk", "tent", "sleeping bag", "espresso machine",
    "smart watch", "bluetooth speaker", "jeans", "t-shirt", "hoodie", "socks", "dress",
    "sandals", "face cream", "shampoo", "perfume", "board game", "lego", "puzzle", "notebook",
    "fountain pen", "office chair", "monitor", "webcam", "cast iron pan", "knife set",
    "blender", "air fryer", "duvet", "pillow", "candle", "plant pot", "bike helmet", "sale",
)  # fmt: skip
_CATEGORIES = (
    "Shoes", "Apparel", "Outdoor", "Electronics", "Home", "Kitchen", "Beauty", "Sports",
    "Books", "Toys", "Accessories", "Office",
)  # fmt: skip
_PAYMENT_METHODS = (
    ("credit_card", 55),
    ("paypal", 20),
    ("apple_pay", 12),
    ("google_pay", 7),
    ("gift_card", 3),
    ("invoice", 3),
)
# promo code, share of promo orders, discount
_PROMO_CODES = (
    ("WELCOME10", 35, 0.10),
    ("SUMMER25", 20, 0.25),
    ("BLACKFRIDAY30", 15, 0.30),
    ("VIP15", 10, 0.15),
    ("FREESHIP", 20, 0.0),
)
_N_PRODUCTS = 400
_FIRST_PRODUCT_ID = 1001
_PLAN_PRICE_PER_MONTH = 49.0

# Random streams: each gets its own generator, keyed by (seed, stream, block). The histories have
# streams of their own so that adding them left the other tables' values unchanged.
_STREAM_CATALOG, _STREAM_ACCOUNTS, _STREAM_USERS = 0, 1, 2
_STREAM_USER_HISTORY, _STREAM_ACCOUNT_HISTORY = 3, 4
_SUBSCRIPTIONS = ("trial", "free", "paid")  # codes 0, 1, 2 of the subscription arrays

_DAY = 86_400.0
_SPAN = (SAMPLE_AS_OF - SAMPLE_START).total_seconds()
_START_US = int((SAMPLE_START - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
_START_DAYS = (SAMPLE_START - datetime(1970, 1, 1)).days
_SPAN_MS = round(_SPAN * 1_000)
# Share of sessions per hour of day (UTC): quiet nights, busy afternoons and evenings.
_HOUR_WEIGHTS = np.array(
    [2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5, 6, 6.5, 7, 7, 7, 7, 7, 6.5, 6.5, 7, 7.5, 7, 6, 4.5, 3]
)


def _weights(pairs: Sequence[tuple]) -> tuple[list[str], np.ndarray]:
    values = [p[0] for p in pairs]
    w = np.asarray([p[1] for p in pairs], dtype=np.float64)
    return values, w / w.sum()


def _mix(x: np.ndarray) -> np.ndarray:
    """Scramble non-negative ints below 2**53 bijectively (multiplication by an odd constant)."""
    with np.errstate(over="ignore"):
        y = x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return (y & np.uint64((1 << 53) - 1)).astype(np.int64)


def _strings(vocab: Sequence[str], idx: np.ndarray) -> pa.Array:
    """Strings from vocabulary indices; a negative index is NULL."""
    return pc.take(pa.array(vocab, pa.string()), pa.array(idx, pa.int32(), mask=idx < 0))


def _nullable(values: np.ndarray, null: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type_, mask=null)


def _rng(seed: int, stream: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, block])


def _ms(t: np.ndarray) -> np.ndarray:
    """Seconds since SAMPLE_START to whole milliseconds, the precision events are stored with."""
    return np.floor(t * 1_000).astype(np.int64)


def _timestamps(ms: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Milliseconds since SAMPLE_START as a timestamp column; ``null`` marks NULLs."""
    return pa.array(_START_US + ms * 1_000, pa.timestamp("us"), mask=null)


# ---------------------------------------------------------------------------------------------
# Catalog and accounts (small, generated once)


@dataclass(frozen=True)
class _Catalog:
    """The shop's products and the page paths that show them."""

    product_id: np.ndarray
    category: np.ndarray  # index into _CATEGORIES
    price: np.ndarray
    popularity: np.ndarray  # probabilities, sum to one
    paths: list[str]  # static pages, then one page per product
    path_p: np.ndarray


def _catalog(seed: int) -> _Catalog:
    rng = _rng(seed, _STREAM_CATALOG)
    category = rng.integers(0, len(_CATEGORIES), _N_PRODUCTS)
    price = np.maximum(np.round(np.exp(rng.normal(3.4, 0.8, _N_PRODUCTS))) - 0.01, 4.99)
    # A few best sellers, a long tail: Zipf-like popularity over shuffled products.
    popularity = rng.permutation(1.0 / np.arange(1, _N_PRODUCTS + 1) ** 1.05)
    popularity /= popularity.sum()
    product_id = np.arange(_FIRST_PRODUCT_ID, _FIRST_PRODUCT_ID + _N_PRODUCTS, dtype=np.int64)
    static, static_p = _weights(_PAGES)
    paths = static + [f"/products/{p}" for p in product_id]
    path_p = np.concatenate(
        [static_p * (1 - _PRODUCT_PAGE_SHARE), popularity * _PRODUCT_PAGE_SHARE]
    )
    return _Catalog(product_id, category, price, popularity, paths, path_p)


def _n_accounts(n_users: int) -> int:
    return max(1, math.ceil(n_users / 8))


def _accounts(seed: int, n_users: int) -> pa.Table:
    rng = _rng(seed, _STREAM_ACCOUNTS)
    n = _n_accounts(n_users)
    columns = {"account_id": pa.array(np.arange(1, n + 1, dtype=np.int64))}
    for name, pairs in (("tier", _TIERS), ("vertical", _VERTICALS), ("location", _LOCATIONS)):
        values, p = _weights(pairs)
        columns[name] = _strings(values, rng.choice(len(values), n, p=p))
    return pa.table(columns, schema=ACCOUNTS_SCHEMA)


# ---------------------------------------------------------------------------------------------
# One block of users with all their events


# Narrow dtypes: generating is bound by copying these columns around.
_EVENT_DTYPES = {
    "user_id": np.int64,
    "t": np.float64,  # seconds since SAMPLE_START
    "event": np.int8,  # index into EVENT_NAMES
    "session_id": np.int64,
    "path": np.int16,  # index into _Catalog.paths
    "search_term": np.int8,
    "product": np.int16,  # index into the catalog
    "quantity": np.int16,
    "revenue": np.float64,
    "item_count": np.int32,
    "payment": np.int8,
    "promo": np.int8,
    "rating": np.int8,
}


@dataclass
class _Events:
    """Events as numpy columns (see _EVENT_DTYPES); -1 / NaN mean NULL."""

    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, user_id: np.ndarray, t: np.ndarray, event: int, **given: np.ndarray) -> _Events:
        n = len(t)
        given |= {"user_id": user_id, "t": t, "event": np.full(n, event)}
        columns = {}
        for name, dtype in _EVENT_DTYPES.items():
            if name in given:
                columns[name] = given[name].astype(dtype, copy=False)
            else:
                columns[name] = np.full(n, np.nan if name == "revenue" else -1, dtype)
        return cls(columns)

    @classmethod
    def concat(cls, parts: Sequence[_Events]) -> _Events:
        return cls(
            {name: np.concatenate([p.columns[name] for p in parts]) for name in _EVENT_DTYPES}
        )

    def take(self, idx: np.ndarray) -> _Events:
        return _Events({name: col[idx] for name, col in self.columns.items()})

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class _Life:
    """What _block decided for each user: seconds since SAMPLE_START, NaN where it did not happen."""

    signup: np.ndarray
    trial_start: np.ndarray
    trial_lapses: np.ndarray  # bool: the trial ended 14 days after it started, back to free
    upgrade: np.ndarray
    active_until: np.ndarray  # churn, or the end of the history
    dormant: np.ndarray  # never came back after signup


@dataclass
class _History:
    """User property history of some users, and when they referenced which account."""

    snapshots: pa.Table
    changes: pa.Table
    account_id: np.ndarray  # per snapshot row with an account: its account_id
    account_since: np.ndarray  # and the row's valid_from, in ms since SAMPLE_START


@dataclass
class _Block:
    users: pa.Table
    events: list[_Events]
    migrations: pa.Table
    history: _History


def _block(seed: int, n_users: int, catalog: _Catalog, index: int) -> _Block:
    """Generate users ``index * _BLOCK_USERS + 1 ...`` and everything they did."""
    rng = _rng(seed, _STREAM_USERS, index)
    first = index * _BLOCK_USERS + 1
    n = min(_BLOCK_USERS, n_users - first + 1)
    uid = np.arange(first, first + n, dtype=np.int64)

    # Signups: acquisition grows over time (density rising from 1 to 3 across the window).
    x = (np.sqrt(1 + 8 * rng.random(n)) - 1) / 2
    signup = x * (_SPAN - 3_600)

    # Lifecycle: free, trial (14 days; converts or not) or straight to paid.
    dormant = rng.random(n) < 0.07  # signed up and never came back
    plan = np.where(dormant, 0, rng.choice(3, n, p=[0.45, 0.40, 0.15]))
    trial_start = signup + rng.uniform(60, 2 * _DAY, n)
    trial_end = trial_start + 14 * _DAY
    has_trial = (plan == 1) & (trial_start < _SPAN)
    converts = (plan == 1) & (rng.random(n) < 0.38)
    upgrade_at = np.where(
        converts,
        trial_end - rng.uniform(0, 3 * _DAY, n),
        signup + rng.exponential(20 * _DAY, n) + 3_600,
    )
    upgraded = (converts | (plan == 2)) & (upgrade_at < _SPAN)
    in_trial = has_trial & ~upgraded & (trial_end > _SPAN)
    subscription = np.where(upgraded, 2, np.where(in_trial, 0, 1))  # trial / free / paid

    # When each user stops coming back: many free users and lapsed trials churn, some paid too.
    end = np.full(n, _SPAN)
    lapsed_trial = has_trial & ~upgraded & ~in_trial
    churn_free = (subscription == 1) & ~lapsed_trial & (rng.random(n) < 0.55)
    end = np.where(churn_free, signup + rng.exponential(25 * _DAY, n), end)
    churn_trial = lapsed_trial & (rng.random(n) < 0.8)
    end = np.where(churn_trial, trial_end + rng.exponential(5 * _DAY, n), end)
    churn_paid = upgraded & (rng.random(n) < 0.4)
    end = np.where(churn_paid, upgrade_at + rng.exponential(60 * _DAY, n), end)
    end = np.minimum(end, _SPAN - 60)

    # Window shoppers browse and fill carts over and over but never order.
    shopper = ~dormant & (rng.random(n) < 0.12)
    end = np.where(shopper, np.maximum(end, np.minimum(signup + 45 * _DAY, _SPAN - 60)), end)

    # Power-law activity: a lognormal visit rate times the active span.
    rate = np.exp(rng.normal(np.log(1.2), 1.25, n))  # sessions per 30 days
    active_days = np.maximum(end - signup, 0) / _DAY
    n_sessions = 1 + rng.poisson(rate * active_days / 30)
    n_sessions = np.where(shopper, np.maximum(n_sessions, 6 + rng.poisson(3, n)), n_sessions)
    n_sessions = np.where(dormant, 0, np.minimum(n_sessions, _MAX_SESSIONS))

    # Per-user habits.
    pages_per_session = np.exp(rng.normal(np.log(2.2), 0.5, n))
    searches_per_session = np.exp(rng.normal(np.log(0.3), 0.8, n))
    carts_per_session = np.exp(rng.normal(np.log(0.35), 0.7, n))
    order_p = np.where(shopper, 0.0, rng.beta(2, 3, n))
    login_p = rng.uniform(0.2, 0.7, n)
    support_p = np.where(upgraded, 0.03, 0.01)

    sessions = _sessions(rng, uid, signup, end, n_sessions)
    s_user = sessions["user"]
    st = sessions["t"]
    sid = sessions["session_id"]
    ns = len(st)
    duration = 30 + rng.exponential(360, ns)

    parts = [
        _Events.of(uid, signup, _CREATED),
        _Events.of(uid[has_trial], trial_start[has_trial], _TRIAL),
        _Events.of(uid[upgraded], upgrade_at[upgraded], _UPGRADE),
        _Events.of(uid[s_user], st, _SESSION, session_id=sid),
    ]
    login = rng.random(ns) < login_p[s_user]
    parts.append(
        _Events.of(
            uid[s_user[login]],
            st[login] + rng.uniform(1, 5, login.sum()),
            _LOGIN,
            session_id=sid[login],
        )
    )

    pv_sess = np.repeat(np.arange(ns), 1 + rng.poisson(pages_per_session[s_user]))
    parts.append(
        _Events.of(
            uid[s_user[pv_sess]],
            st[pv_sess] + rng.random(len(pv_sess)) * duration[pv_sess],
            _PAGEVIEW,
            session_id=sid[pv_sess],
            path=rng.choice(len(catalog.paths), len(pv_sess), p=catalog.path_p),
        )
    )
    sr_sess = np.repeat(np.arange(ns), rng.poisson(searches_per_session[s_user]))
    term_p = 1.0 / np.arange(1, len(_SEARCH_TERMS) + 1)
    parts.append(
        _Events.of(
            uid[s_user[sr_sess]],
            st[sr_sess] + rng.random(len(sr_sess)) * duration[sr_sess],
            _SEARCH,
            session_id=sid[sr_sess],
            search_term=rng.choice(len(_SEARCH_TERMS), len(sr_sess), p=term_p / term_p.sum()),
        )
    )
    support = rng.random(ns) < support_p[s_user]
    parts.append(
        _Events.of(
            uid[s_user[support]],
            st[support] + rng.random(support.sum()) * duration[support],
            _SUPPORT,
            session_id=sid[support],
        )
    )

    # Carts, then orders that check out a session's whole cart.
    n_carts = rng.poisson(carts_per_session[s_user])
    cart_sess = np.repeat(np.arange(ns), n_carts)
    product = rng.choice(_N_PRODUCTS, len(cart_sess), p=catalog.popularity)
    quantity = 1 + rng.poisson(0.25, len(cart_sess))
    parts.append(
        _Events.of(
            uid[s_user[cart_sess]],
            st[cart_sess] + (0.3 + 0.6 * rng.random(len(cart_sess))) * duration[cart_sess],
            _CART,
            session_id=sid[cart_sess],
            product=product,
            quantity=quantity,
        )
    )
    basket = np.bincount(cart_sess, weights=catalog.price[product] * quantity, minlength=ns)
    items = np.bincount(cart_sess, weights=quantity, minlength=ns).astype(np.int64)
    ordered = (n_carts > 0) & (rng.random(ns) < order_p[s_user])
    o_sess = np.flatnonzero(ordered)
    promo_names, promo_p = _weights([(p[0], p[1]) for p in _PROMO_CODES])
    promo = np.where(
        rng.random(len(o_sess)) < 0.18, rng.choice(len(promo_names), len(o_sess), p=promo_p), -1
    )
    discount = np.where(promo >= 0, np.array([p[2] for p in _PROMO_CODES])[promo], 0.0)
    revenue = np.round(basket[o_sess] * (1 - discount), 2)
    o_time = st[o_sess] + duration[o_sess] + rng.uniform(5, 90, len(o_sess))
    o_user = s_user[o_sess]
    pay_names, pay_p = _weights(_PAYMENT_METHODS)
    parts.append(
        _Events.of(
            uid[o_user],
            o_time,
            _ORDER,
            session_id=sid[o_sess],
            revenue=revenue,
            item_count=items[o_sess],
            payment=rng.choice(len(pay_names), len(o_sess), p=pay_p),
            promo=promo,
        )
    )

    # After an order: some are refunded, some get a review of the order's first product.
    refunded = (rng.random(len(o_sess)) < 0.06) & (o_time + 30 * _DAY < _SPAN)
    r_time = o_time + rng.uniform(1, 30, len(o_sess)) * _DAY
    parts.append(_Events.of(uid[o_user[refunded]], r_time[refunded], _REFUND))
    first_cart = np.cumsum(n_carts) - n_carts
    r_time = o_time + rng.uniform(2, 21, len(o_sess)) * _DAY
    reviewed = (rng.random(len(o_sess)) < 0.12) & (r_time < _SPAN)
    ratings = rng.choice(5, reviewed.sum(), p=[0.05, 0.07, 0.13, 0.35, 0.40]) + 1
    parts.append(
        _Events.of(
            uid[o_user[reviewed]],
            r_time[reviewed],
            _REVIEW,
            product=product[first_cart[o_sess[reviewed]]],
            rating=ratings,
        )
    )

    # Anonymous browsing before signup, later merged into the user (Heap's identity merging).
    merged = rng.random(n) < 0.03
    anon_id = n_users + uid[merged]
    parts.extend(_anonymous(rng, anon_id, signup[merged], catalog))
    migrations = pa.table(
        {"from_user_id": pa.array(anon_id), "to_user_id": pa.array(uid[merged])},
        schema=MIGRATIONS_SCHEMA,
    )

    # Lifetime value: net order revenue plus the subscription fees paid so far.
    net = revenue.copy()
    net[refunded] = 0.0
    local = uid - first
    ltv = np.bincount(local[o_user], weights=net, minlength=n)
    paid_until = np.where(churn_paid, np.minimum(end + 30 * _DAY, _SPAN), _SPAN)
    months = np.ceil(np.maximum(paid_until - upgrade_at, 0) / (30 * _DAY))
    ltv += np.where(upgraded, months * _PLAN_PRICE_PER_MONTH, 0.0)

    users = _user_table(rng, uid, n_users, signup, subscription, np.round(ltv, 2))
    life = _Life(
        signup=signup,
        trial_start=np.where(has_trial, trial_start, np.nan),
        trial_lapses=lapsed_trial,
        upgrade=np.where(upgraded, upgrade_at, np.nan),
        active_until=end,
        dormant=dormant,
    )
    return _Block(users, parts, migrations, _user_history(seed, index, n_users, users, life))


def _sessions(
    rng: np.random.Generator,
    uid: np.ndarray,
    signup: np.ndarray,
    end: np.ndarray,
    n_sessions: np.ndarray,
) -> dict[str, np.ndarray]:
    """Session start times between signup and churn, daytime-heavy, the first one at signup."""
    user = np.repeat(np.arange(len(uid)), n_sessions)
    lo, hi = signup[user], np.maximum(end[user], signup[user] + 60)
    raw = lo + rng.random(len(user)) * (hi - lo)
    hour = rng.choice(24, len(user), p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    t = np.floor(raw / _DAY) * _DAY + hour * 3_600 + rng.uniform(0, 3_600, len(user))
    t = np.clip(t, lo + 1, hi)
    start = np.cumsum(n_sessions) - n_sessions
    firsts = start[n_sessions > 0]
    t[firsts] = lo[firsts] + rng.uniform(2, 120, len(firsts))
    order = np.lexsort((t, user))
    user, t = user[order], t[order]
    k = np.arange(len(user)) - np.repeat(start, n_sessions)
    return {"user": user, "t": t, "session_id": _mix(uid[user] * 1_000 + k)}


def _anonymous(
    rng: np.random.Generator, anon_id: np.ndarray, signup: np.ndarray, catalog: _Catalog
) -> list[_Events]:
    """A handful of sessions with pageviews in the days before signup, under an anonymous id."""
    n_sessions = 1 + rng.poisson(1.5, len(anon_id))
    owner = np.repeat(np.arange(len(anon_id)), n_sessions)
    window = np.minimum(10 * _DAY, signup[owner])
    st = signup[owner] - rng.random(len(owner)) * window
    k = np.arange(len(owner)) - np.repeat(np.cumsum(n_sessions) - n_sessions, n_sessions)
    sid = _mix(anon_id[owner] * 1_000 + k)
    pv = np.repeat(np.arange(len(owner)), 1 + rng.poisson(2, len(owner)))
    return [
        _Events.of(anon_id[owner], st, _SESSION, session_id=sid),
        _Events.of(
            anon_id[owner[pv]],
            st[pv] + rng.uniform(0, 600, len(pv)),
            _PAGEVIEW,
            session_id=sid[pv],
            path=rng.choice(len(catalog.paths), len(pv), p=catalog.path_p),
        ),
    ]


def _user_table(
    rng: np.random.Generator,
    uid: np.ndarray,
    n_users: int,
    signup: np.ndarray,
    subscription: np.ndarray,
    ltv: np.ndarray,
) -> pa.Table:
    n = len(uid)
    n_acc = _n_accounts(n_users)
    # Most users belong to an account (big accounts more likely); a few point to a missing one.
    r = rng.random(n)
    account = np.floor(n_acc * rng.random(n) ** 1.6).astype(np.int64) + 1
    account = np.where(r < 0.02, n_acc + rng.integers(1, 50, n), account)
    no_account = r > 0.87

    countries, country_p = _weights(_COUNTRIES)
    roles, role_p = _weights(_ROLES)
    role = np.where(rng.random(n) < 0.12, -1, rng.choice(len(roles), n, p=role_p))

    # Emails: company domain for most account members, personal mailboxes otherwise.
    personal, personal_p = _weights(_PERSONAL_DOMAINS)
    mixed = _mix(account)
    company = pc.binary_join_element_wise(
        _strings(_COMPANY_WORDS, mixed % len(_COMPANY_WORDS)),
        _strings(_COMPANY_SUFFIXES, (mixed // 64) % len(_COMPANY_SUFFIXES)),
        ".",
        _strings(_COMPANY_TLDS, (mixed // 4096) % len(_COMPANY_TLDS)),
        "",
    )
    use_company = ~no_account & (rng.random(n) < 0.7)
    domain = pc.if_else(
        pa.array(use_company),
        company,
        _strings(personal, rng.choice(len(personal), n, p=personal_p)),
    )
    first_name = _strings(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), n))
    last_name = _strings(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), n))
    suffix = pc.cast(pa.array(uid % 997), pa.string())
    local_part = pc.if_else(
        pa.array(use_company),
        pc.binary_join_element_wise(first_name, last_name, "."),
        pc.binary_join_element_wise(first_name, last_name, suffix, ""),
    )
    email = pc.binary_join_element_wise(local_part, domain, "@")
    r = rng.random(n)
    email = pc.if_else(pa.array(r < 0.01), pa.scalar("", pa.string()), email)
    email = pc.if_else(pa.array((r >= 0.01) & (r < 0.03)), pa.scalar(None, pa.string()), email)

    return pa.table(
        {
            "user_id": pa.array(uid),
            "subscription_type": _strings(_SUBSCRIPTIONS, subscription),
            "country": _strings(countries, rng.choice(len(countries), n, p=country_p)),
            "email": email,
            "role": _strings(roles, role),
            "signup_date": pa.array(
                (_START_DAYS + np.floor(signup / _DAY)).astype(np.int32), pa.date32()
            ),
            "ltv": pa.array(ltv),
            "email_opt_in": pa.array(rng.random(n) < 0.62),
            "account_id": _nullable(account, no_account, pa.int64()),
            # The "Created Account" event's time: events keep milliseconds.
            "joined_at": _timestamps(_ms(signup)),
        },
        schema=USERS_SCHEMA,
    )


# ---------------------------------------------------------------------------------------------
# Property histories: the lives _block simulated, told as user and account history tables


def _user_history(seed: int, index: int, n_users: int, users: pa.Table, life: _Life) -> _History:
    """History of subscription_type, role and account_id of one block's users.

    Everyone signs up free; a trial starts at "Started Trial" and ends in paid (at "Upgrade")
    or back in free 14 days later; straight upgrades go free -> paid at "Upgrade". A few users
    change role or move account once. The last row of each user is their ``users`` row.
    """
    rng = _rng(seed, _STREAM_USER_HISTORY, index)
    n = users.num_rows
    roles, role_p = _weights(_ROLES)
    role = pc.fill_null(pc.index_in(users["role"], value_set=pa.array(roles)), -1).to_numpy()
    account = pc.fill_null(users["account_id"], -1).to_numpy()
    n_acc = _n_accounts(n_users)

    # Every draw is made for every user, so the stream's use depends on the block size only.
    role_u, role_unset_u, role_other, role_at = (
        rng.random(n),
        rng.random(n),
        rng.choice(len(roles), n, p=role_p),
        rng.random(n),
    )
    move_u, move_unset_u, account_other, move_at = (
        rng.random(n),
        rng.random(n),
        np.floor(n_acc * rng.random(n) ** 1.6).astype(np.int64) + 1,
        rng.random(n),
    )

    # Role changes and account moves happen while the user is active, hours after signup. Only
    # towards a non-NULL value: the changes form cannot set a trait to NULL.
    span = life.active_until - life.signup
    active = ~life.dormant & (span > 2 * _DAY)
    role_change = active & (role >= 0) & (role_u < 0.06)
    role_other = np.where(role_other == role, (role + 1) % len(roles), role_other)
    role_before = np.where(role_unset_u < 0.3, -1, role_other)  # 30% filled it in later
    move = active & (account >= 0) & (move_u < 0.05)
    # 30% (and those who drew their own account) joined a team later; the others moved.
    account_before = np.where((move_unset_u < 0.3) | (account_other == account), -1, account_other)

    # One entry per (user, time, trait) set: the signup sets all three, then each change one.
    i = np.arange(n)
    signup = _ms(life.signup)
    trial, upgrade, lapse = ~np.isnan(life.trial_start), ~np.isnan(life.upgrade), life.trial_lapses
    # Exactly 14 days after the stored "Started Trial", and before SAMPLE_AS_OF even at its edge.
    lapse_at = np.minimum(_ms(life.trial_start[lapse]) + 14 * 86_400_000, _SPAN_MS - 1)
    entries = [
        (i, signup, 0, np.ones(n, np.int64)),  # free
        (i, signup, 1, np.where(role_change, role_before, role)),
        (i, signup, 2, np.where(move, account_before, account)),
        (i[trial], _ms(life.trial_start[trial]), 0, 0),  # trial
        (i[lapse], lapse_at, 0, 1),  # free
        (i[upgrade], _ms(life.upgrade[upgrade]), 0, 2),  # paid
        (
            i[role_change],
            _ms((life.signup + (0.05 + 0.9 * role_at) * span)[role_change]),
            1,
            role[role_change],
        ),
        (i[move], _ms((life.signup + (0.05 + 0.9 * move_at) * span)[move]), 2, account[move]),
    ]
    user = np.concatenate([e[0] for e in entries])
    t = np.concatenate([e[1] for e in entries])
    trait = np.concatenate([np.full(len(e[0]), e[2]) for e in entries])
    value = np.concatenate([np.broadcast_to(e[3], len(e[0])) for e in entries]).astype(np.int64)
    order = np.lexsort((trait, t, user))
    user, t, trait, value = user[order], t[order], trait[order], value[order]

    # Entries at the same (user, time) make one row; each trait changes at most once per time.
    new_row = np.ones(len(user), bool)
    new_row[1:] = (user[1:] != user[:-1]) | (t[1:] != t[:-1])
    row = np.cumsum(new_row) - 1
    starts = np.flatnonzero(new_row)
    row_user, row_t = user[starts], t[starts]
    n_rows = len(starts)
    is_set = np.zeros((n_rows, 3), bool)
    is_set[row, trait] = True
    set_value = np.full((n_rows, 3), -1, np.int64)
    set_value[row, trait] = value

    # Snapshots carry each trait forward from the row that last set it; a user's first row sets
    # all three, so nothing carries over from the previous user.
    pos = np.arange(n_rows)
    state = np.empty_like(set_value)
    for k in range(3):
        state[:, k] = set_value[np.maximum.accumulate(np.where(is_set[:, k], pos, 0)), k]
    last = np.ones(n_rows, bool)
    last[:-1] = row_user[1:] != row_user[:-1]
    valid_to = np.append(row_t[1:], 0)

    user_id = pa.array(users["user_id"].to_numpy()[row_user])

    def traits(codes: np.ndarray) -> dict[str, pa.Array]:
        return {
            "subscription_type": _strings(_SUBSCRIPTIONS, codes[:, 0]),
            "role": _strings(roles, codes[:, 1]),
            "account_id": _nullable(codes[:, 2], codes[:, 2] < 0, pa.int64()),
        }

    snapshots = pa.table(
        {
            "user_id": user_id,
            "valid_from": _timestamps(row_t),
            "valid_to": _timestamps(valid_to, last),
            **traits(state),
        },
        schema=USER_HISTORY_SCHEMA,
    )
    changes = pa.table(
        {"user_id": user_id, "time": _timestamps(row_t), **traits(set_value)},
        schema=USER_TRAIT_CHANGES_SCHEMA,
    )
    with_account = state[:, 2] >= 0
    return _History(snapshots, changes, state[with_account, 2], row_t[with_account])


def _account_history(seed: int, accounts: pa.Table, since: np.ndarray) -> pa.Table:
    """Tier history of every account from ``since`` (ms after SAMPLE_START), its creation.

    Some accounts climbed one or two tiers, a few came down one; the last row of each account is
    its ``accounts`` tier.
    """
    rng = _rng(seed, _STREAM_ACCOUNT_HISTORY)
    n = accounts.num_rows
    tiers = [name for name, _ in _TIERS]
    tier = pc.index_in(accounts["tier"], value_set=pa.array(tiers)).to_numpy().astype(np.int64)
    u, two_u, f1, f2 = rng.random(n), rng.random(n), rng.random(n), rng.random(n)

    room = _SPAN_MS - since
    can = room > 2 * _DAY * 1_000
    up = can & (tier >= 1) & (u < 0.3)
    two = up & (tier >= 2) & (two_u < 0.4)
    down = can & (tier <= len(tiers) - 2) & (u > 0.95)
    n_changes = up.astype(np.int64) + two + down
    step = np.where(down, -1, 1)
    first_tier = tier - step * n_changes
    # Change times, well apart: one change anywhere, two in the first and the second half.
    times = np.stack(
        [
            since,
            since + np.floor(np.where(two, 0.05 + 0.45 * f1, 0.05 + 0.9 * f1) * room),
            since + np.floor((0.55 + 0.4 * f2) * room),
        ],
        axis=1,
    ).astype(np.int64)

    acc = np.repeat(np.arange(n), 1 + n_changes)
    k = np.arange(len(acc)) - np.repeat(np.cumsum(1 + n_changes) - 1 - n_changes, 1 + n_changes)
    valid_from = times[acc, k]
    last = np.ones(len(acc), bool)
    last[:-1] = acc[1:] != acc[:-1]
    return pa.table(
        {
            "account_id": pa.array(accounts["account_id"].to_numpy()[acc]),
            "valid_from": _timestamps(valid_from),
            "valid_to": _timestamps(np.append(valid_from[1:], 0), last),
            "tier": _strings(tiers, first_tier[acc] + step[acc] * k),
        },
        schema=ACCOUNT_HISTORY_SCHEMA,
    )


def _events_table(ev: _Events, catalog: _Catalog) -> pa.Table:
    """Drop what falls outside the history, sort by time, make typed Arrow columns."""
    keep = np.flatnonzero((ev.t >= 0) & (ev.t < _SPAN))
    time_ms = np.floor(ev.t[keep] * 1_000).astype(np.int64)
    order = np.argsort(time_ms, kind="stable")
    ev = ev.take(keep[order])
    time_us = _START_US + time_ms[order] * 1_000
    has_product = ev.product >= 0
    product = np.where(has_product, ev.product, 0)
    is_cart = ev.event == _CART
    return pa.table(
        {
            "user_id": pa.array(ev.user_id),
            "time": pa.array(time_us, pa.timestamp("us")),
            "event": _strings(EVENT_NAMES, ev.event.astype(np.int32)),
            "session_id": _nullable(ev.session_id, ev.session_id < 0, pa.int64()),
            "path": _strings(catalog.paths, ev.path),
            "search_term": _strings(_SEARCH_TERMS, ev.search_term),
            "product_id": _nullable(catalog.product_id[product], ~has_product, pa.int64()),
            "price": _nullable(catalog.price[product], ~is_cart, pa.float64()),
            "quantity": _nullable(ev.quantity, ev.quantity < 0, pa.int64()),
            "category": _strings(_CATEGORIES, np.where(is_cart, catalog.category[product], -1)),
            "revenue": _nullable(ev.revenue, np.isnan(ev.revenue), pa.float64()),
            "item_count": _nullable(ev.item_count, ev.item_count < 0, pa.int64()),
            "payment_method": _strings(_weights(_PAYMENT_METHODS)[0], ev.payment),
            "promo_code": _strings([p[0] for p in _PROMO_CODES], ev.promo),
            "rating": _nullable(ev.rating, ev.rating < 0, pa.int64()),
        },
        schema=EVENTS_SCHEMA,
    )


@dataclass
class _Chunk:
    users: pa.Table
    events: pa.Table
    migrations: pa.Table
    history: _History


def _chunks(seed: int, n_users: int, chunk_users: int) -> Iterator[_Chunk]:
    catalog = _catalog(seed)
    n_blocks = math.ceil(n_users / _BLOCK_USERS)
    per_chunk = max(1, math.ceil(chunk_users / _BLOCK_USERS))
    for lo in range(0, n_blocks, per_chunk):
        blocks = [
            _block(seed, n_users, catalog, b) for b in range(lo, min(lo + per_chunk, n_blocks))
        ]
        yield _Chunk(
            pa.concat_tables([b.users for b in blocks]),
            _events_table(_Events.concat([e for b in blocks for e in b.events]), catalog),
            pa.concat_tables([b.migrations for b in blocks]),
            _History(
                pa.concat_tables([b.history.snapshots for b in blocks]),
                pa.concat_tables([b.history.changes for b in blocks]),
                np.concatenate([b.history.account_id for b in blocks]),
                np.concatenate([b.history.account_since for b in blocks]),
            ),
        )


def tables(seed: int, n_users: int, chunk_users: int) -> Iterator[tuple[str, pa.Table]]:
    """The sample's tables as ``(name, rows)``, a chunk of users at a time: ``accounts`` first,
    then each chunk's ``users``, ``events``, ``user_migrations``, ``user_history`` and
    ``user_trait_changes``, and ``account_history`` last (an account's history starts when a
    user first belongs to it, which only the whole user history tells)."""
    started = time.perf_counter()
    accounts = _accounts(seed, n_users)
    yield "accounts", accounts
    # An account is created when a user first belongs to it (per the user history).
    created = np.full(accounts.num_rows + 1, _SPAN_MS, np.int64)  # indexed by account_id
    for i, chunk in enumerate(_chunks(seed, n_users, chunk_users)):
        yield "users", chunk.users
        yield "events", chunk.events
        yield "user_migrations", chunk.migrations
        yield "user_history", chunk.history.snapshots
        yield "user_trait_changes", chunk.history.changes
        known = chunk.history.account_id <= accounts.num_rows  # not the missing accounts
        np.minimum.at(created, chunk.history.account_id[known], chunk.history.account_since[known])
        log.debug(
            "chunk %d: %d users, %d events (%.1fs)",
            i,
            chunk.users.num_rows,
            chunk.events.num_rows,
            time.perf_counter() - started,
        )
    # Accounts no user ever belonged to exist from the start.
    created = np.where(created[1:] == _SPAN_MS, 0, created[1:])
    yield "account_history", _account_history(seed, accounts, created)
