"""One catalog entry: its metadata checked field by field, and the read-only view users get."""

from __future__ import annotations

import copy
import re
import secrets
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from heapseg.catalog.jsontext import MAX_DEPTH, LongNumber, RawJSON, json_type
from heapseg.errors import DefinitionError

if TYPE_CHECKING:
    from heapseg.model import Segment

#: The keys of an entry that this version understands; every other key is kept as it is.
KNOWN_KEYS = (
    "id",
    "name",
    "description",
    "category",
    "type",
    "visibility",
    "owner",
    "created_at",
    "updated_at",
    "revision",
    "definition",
    "snapshot",
)
TYPES = ("dynamic", "static")
VISIBILITIES = ("shared", "personal")
MAX_NAME_LENGTH = 200
#: A definition written by heapseg stays well inside the nesting the reader loads as objects
#: (an entry's definition starts four levels down in the file).
MAX_DEFINITION_DEPTH = MAX_DEPTH - 50
SNAPSHOT_SUFFIXES = (".parquet", ".json")

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class EntryProblem:
    """Why one entry of the catalog cannot be used.

    Attributes
    ----------
    segment_id
        The entry's id when it has a readable one, else None.
    index
        Position of the entry in the file's ``segments`` list.
    path
        The offending key inside the entry (``definition.rules[0].kind``).
    message
        What is wrong and what would be valid.
    """

    segment_id: str | None
    index: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"segment {self.segment_id!r}" if self.segment_id else f"segments[{self.index}]"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(frozen=True)
class Snapshot:
    """The frozen members of a static segment.

    Attributes
    ----------
    as_of
        The moment the members were computed.
    count
        How many members were frozen.
    members
        Path of the members file, relative to the catalog file's folder.
    """

    as_of: datetime
    count: int
    members: str

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "count": self.count, "members": self.members}


@dataclass(frozen=True)
class SegmentEntry:
    """A saved segment as read from the catalog (read-only; change it through the Catalog).

    ``revision`` is what the catalog compares on update: an entry you got from
    ``catalog.get`` can be passed back to ``catalog.update`` and the save fails with a
    ``ConflictError`` if someone changed the segment in the meantime.

    Attributes
    ----------
    segment
        The validated definition as a ``heapseg.Segment``, ready for ``ds.count``.
    definition
        The definition as stored (format 1), a fresh copy at each access.
    extra
        Keys this version of heapseg does not know (kept on every rewrite).
    """

    id: str
    name: str
    description: str
    category: str
    type: str
    visibility: str
    owner: str
    created_at: datetime
    updated_at: datetime
    revision: int
    segment: Segment = field(repr=False, compare=False)
    snapshot: Snapshot | None = None
    # The stored entry, shared with the catalog's cache and never mutated: copies are made
    # only when asked for, so loading thousands of entries costs no deep copies.
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_static(self) -> bool:
        return self.type == "static"

    @property
    def definition(self) -> dict[str, Any]:
        return copy.deepcopy(self._raw["definition"])

    @property
    def extra(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self._raw.items() if k not in KNOWN_KEYS}

    def to_dict(self) -> dict[str, Any]:
        """The entry exactly as stored in the catalog (format 1), unknown keys included."""
        return copy.deepcopy(dict(self._raw))


# --------------------------------------------------------------------------------------------
# Checking a raw entry


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


def entry_id(raw: Any) -> str | None:
    """The entry's id if it is a usable string, else None."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and value.strip() and not _CONTROL_RE.search(value):
            return value
    return None


def check_metadata(raw: Any) -> list[tuple[str, str]]:
    """Problems with the entry's metadata (everything but the definition) as (path, message)."""
    return _checked_metadata(raw)[0]


def read_entry(
    raw: Any, *, check_depth: bool = True
) -> tuple[list[tuple[str, str]], SegmentEntry | None]:
    """An entry checked whole, each part once: the problems of its metadata (else of its
    definition, see ``load_definition``) as (path, message), or its read-only view."""
    problems, parts = check_entry(raw, check_depth=check_depth)
    return problems, build_entry(raw, *parts) if parts is not None else None


def check_entry(
    raw: Any, *, check_depth: bool = True
) -> tuple[list[tuple[str, str]], tuple[Segment, _Times] | None]:
    """``read_entry`` without making the view: the problems, or what ``build_entry`` takes
    besides the entry (its definition as the model, its created_at and updated_at)."""
    problems, times = _checked_metadata(raw)
    if problems:
        return problems, None
    try:
        segment = load_definition(raw["definition"], check_depth=check_depth)
    except DefinitionError as exc:
        return [(exc.path, exc.reason)], None
    return [], (segment, times)  # type: ignore[return-value]  # times: set when no problems


_Times = tuple[datetime, datetime]


def _checked_metadata(raw: Any) -> tuple[list[tuple[str, str]], _Times | None]:
    """``check_metadata``, and the entry's created_at and updated_at as read when valid."""
    if not isinstance(raw, dict):
        return [("", f"an entry must be a JSON object, found {json_type(raw)}")], None
    problems: list[tuple[str, str]] = []
    times = None
    for check in _METADATA_CHECKS:
        try:
            found = check(raw)
        except _Invalid as bad:
            problems.append((bad.path, bad.message))
        else:
            if found is not None:  # only _check_times gives something back
                times = found
    if "definition" not in raw:
        problems.append(("definition", "is missing: every segment needs a definition"))
    elif not isinstance(raw["definition"], dict):
        problems.append(
            (
                "definition",
                f"must be a group object (combinator, rules), found {json_type(raw['definition'])}",
            )
        )
    return problems, times


def _string(raw: dict, key: str, *, required: bool = True, allow_empty: bool = False) -> str:
    if key not in raw:
        if required:
            raise _Invalid(key, "is missing")
        return ""
    value = raw[key]
    if not isinstance(value, str):
        raise _Invalid(key, f"must be a string, found {json_type(value)}")
    if not allow_empty and not value.strip():
        raise _Invalid(key, "must not be empty")
    return value


def _check_id(raw: dict) -> None:
    value = _string(raw, "id")
    if _CONTROL_RE.search(value) or len(value) > MAX_NAME_LENGTH:
        raise _Invalid("id", "must be printable text of at most 200 characters")


def _check_name(raw: dict) -> None:
    check_name(_string(raw, "name"), path="name")


def check_name(name: Any, path: str = "name") -> str:
    """A valid segment name (stripped), or raise DefinitionError."""
    if not isinstance(name, str):
        raise _Invalid(path, f"must be a string, found {json_type(name)}")
    name = name.strip()
    if not name:
        raise _Invalid(path, "must not be empty")
    if len(name) > MAX_NAME_LENGTH or _CONTROL_RE.search(name):
        raise _Invalid(path, "must be printable text of at most 200 characters")
    return name


def _check_texts(raw: dict) -> None:
    for key in ("description", "category"):
        _string(raw, key, required=False, allow_empty=True)


def _check_choices(raw: dict) -> None:
    for key, choices in (("type", TYPES), ("visibility", VISIBILITIES)):
        value = _string(raw, key)
        if value not in choices:
            raise _Invalid(key, f"must be one of {', '.join(choices)}; found {value!r}")


def _check_owner(raw: dict) -> None:
    _string(raw, "owner")


def parse_time(value: Any, path: str) -> datetime:
    """An ISO-8601 timestamp with a UTC offset, as stored in the catalog."""
    if not isinstance(value, str):
        raise _Invalid(path, f"must be an ISO-8601 timestamp string, found {json_type(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(
            path, f"{value!r} is not an ISO-8601 timestamp (2026-11-22T10:15:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        raise _Invalid(path, f"{value!r} needs its UTC offset (2026-11-22T10:15:00+01:00)")
    return moment


def _check_times(raw: dict) -> _Times:
    created = _time_field(raw, "created_at")
    return created, _time_field(raw, "updated_at")


def _time_field(raw: dict, key: str) -> datetime:
    if key not in raw:
        raise _Invalid(key, "is missing")
    return parse_time(raw[key], key)


def _check_revision(raw: dict) -> None:
    if "revision" not in raw:
        raise _Invalid("revision", "is missing")
    value = raw["revision"]
    if type(value) is not int or value < 1:
        raise _Invalid("revision", f"must be a whole number >= 1, found {value!r}")


def _check_snapshot(raw: dict) -> None:
    snapshot = raw.get("snapshot")
    if raw.get("type") != "static":
        if snapshot is not None:
            raise _Invalid("snapshot", "only a static segment has a snapshot")
        return
    if not isinstance(snapshot, dict):
        raise _Invalid(
            "snapshot",
            "a static segment needs a snapshot {as_of, count, members}, "
            f"found {json_type(snapshot)}",
        )
    parse_time(snapshot.get("as_of"), "snapshot.as_of")
    count = snapshot.get("count")
    if type(count) is not int or count < 0:
        raise _Invalid("snapshot.count", f"must be a whole number >= 0, found {count!r}")
    check_members_path(snapshot.get("members"))


_METADATA_CHECKS = (
    _check_id,
    _check_name,
    _check_texts,
    _check_choices,
    _check_owner,
    _check_times,
    _check_revision,
    _check_snapshot,
)


def check_members_path(value: Any) -> PurePosixPath:
    """A members path that stays inside the catalog's folder (the file is never trusted)."""
    path = "snapshot.members"
    if not isinstance(value, str) or not value:
        raise _Invalid(path, f"must be a relative file path, found {json_type(value)}")
    members = PurePosixPath(value)
    if members.is_absolute() or ".." in members.parts or "\\" in value or ":" in value:
        raise _Invalid(path, f"{value!r} must be a path relative to the catalog's folder")
    if members.suffix.lower() not in SNAPSHOT_SUFFIXES:
        raise _Invalid(path, f"{value!r} must end in .parquet or .json")
    return members


def unreadable(value: Any, limit: int, root: str = "") -> tuple[str, str] | None:
    """Path of the first part left unparsed, and why: nested deeper than ``limit`` levels, or
    an integer too long to convert (``LongNumber``); None when everything was read.

    Iterative, and it never looks below ``limit``: neither time nor memory grows with the
    depth of a hostile structure (building every path string would be quadratic).
    """
    nodes: list[tuple[Any, int, int, str]] = [(value, 1, -1, "")]
    stack = [0]
    while stack:
        index = stack.pop()
        node, depth, _, _ = nodes[index]
        if isinstance(node, LongNumber):
            return _path_to(nodes, index, root), (
                f"is a number of {node.digits} digits; heapseg reads whole numbers of at most "
                f"{sys.get_int_max_str_digits()} digits"
            )
        if isinstance(node, RawJSON) or depth > limit:
            return _path_to(nodes, index, root), (
                f"the definition is nested more than {MAX_DEFINITION_DEPTH} levels deep; "
                "heapseg refuses it rather than risk a crash"
            )
        if isinstance(node, dict):
            children = ((f".{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            children = ((f"[{i}]", v) for i, v in enumerate(node))
        else:
            continue
        for key, child in children:
            if isinstance(child, (dict, list, RawJSON)):
                nodes.append((child, depth + 1, index, key))
                stack.append(len(nodes) - 1)
    return None


def _path_to(nodes: list[tuple[Any, int, int, str]], index: int, root: str) -> str:
    keys = []
    while index > 0:
        _, _, parent, key = nodes[index]
        keys.append(key)
        index = parent
    path = root + "".join(reversed(keys))
    return path.lstrip(".")


def load_definition(
    definition: Any, path: str = "definition", *, check_depth: bool = True
) -> Segment:
    """Validate a format-1 group and return the model; never crashes on depth.

    ``check_depth=False`` skips the walk for parts left unparsed (too deep, numbers too
    long) when the caller knows the file has none.

    Raises
    ------
    DefinitionError
        With ``path`` pointing into the entry (``definition.rules[0].kind``).
    """
    from heapseg.model import Segment

    found = unreadable(definition, MAX_DEFINITION_DEPTH, path) if check_depth else None
    if found is not None:
        where, why = found
        raise DefinitionError(why, path=where)
    try:
        return Segment.from_dict(definition)
    except DefinitionError as exc:
        inner = exc.path
        full = f"{path}.{inner}" if inner and not inner.startswith("[") else f"{path}{inner}"
        raise DefinitionError(exc.reason, path=full) from None
    except RecursionError:
        raise DefinitionError("the definition is nested too deeply to read", path=path) from None


def build_entry(raw: dict, segment: Segment, times: _Times | None = None) -> SegmentEntry:
    """The read-only view of an entry whose metadata passed ``check_metadata`` (``times``:
    its created_at and updated_at, when already read)."""
    if times is None:
        times = (
            parse_time(raw["created_at"], "created_at"),
            parse_time(raw["updated_at"], "updated_at"),
        )
    snapshot = None
    if raw.get("type") == "static":
        snap = raw["snapshot"]
        snapshot = Snapshot(
            as_of=parse_time(snap["as_of"], "snapshot.as_of"),
            count=snap["count"],
            members=snap["members"],
        )
    return SegmentEntry(
        id=raw["id"],
        name=raw["name"],
        description=raw.get("description", ""),
        category=raw.get("category", ""),
        type=raw["type"],
        visibility=raw["visibility"],
        owner=raw["owner"],
        created_at=times[0],
        updated_at=times[1],
        revision=raw["revision"],
        segment=segment,
        snapshot=snapshot,
        _raw=raw,
    )


# --------------------------------------------------------------------------------------------
# New ids and timestamps


def slugify(name: str, limit: int = 40) -> str:
    """ASCII words of a name joined by dashes: "Window shoppers (EU)" -> "window-shoppers-eu"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:limit].rstrip("-") or "segment"


def new_id(name: str) -> str:
    """``seg-<slug>-<random>``; the caller checks it against every id ever used."""
    return f"seg-{slugify(name)}-{secrets.token_hex(4)}"


def now() -> datetime:
    """The current time with the writer's UTC offset, to the second."""
    return datetime.now().astimezone().replace(microsecond=0)


def timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 with the writer's UTC offset (``2026-11-22T10:15:00+01:00``)."""
    return (moment or now()).isoformat()
