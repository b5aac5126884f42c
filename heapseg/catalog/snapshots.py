"""Static segments: members frozen into Parquet (or JSON) files beside the catalog, refreshed."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from heapseg.catalog.analysis import as_of_moment, member_ids
from heapseg.catalog.entries import SegmentEntry, check_members_path, slugify
from heapseg.catalog.files import fsync_dir, open_regular, read_regular
from heapseg.catalog.jsontext import RawJSON, loads
from heapseg.errors import CatalogError

if TYPE_CHECKING:
    from heapseg.dataset import Dataset
    from heapseg.model import Segment
    from heapseg.resolver import Resolver


@dataclass(frozen=True)
class Refresh:
    """What refreshing a static segment changed.

    A refresh compares two lists of frozen ids: ``entered`` counts every user new to the
    members, whether or not they were users at the previous freeze (``Catalog.movement``
    tells those apart, as ``new`` and ``entered``).

    Attributes
    ----------
    entered, left
        How many users joined and left the frozen members.
    entered_users, left_users
        Their ids (empty lists unless asked for with ``users=True``).
    """

    entry: SegmentEntry
    before: int
    after: int
    entered: int
    left: int
    entered_users: list = field(default_factory=list)
    left_users: list = field(default_factory=list)


def freeze_members(
    resolver: Resolver,
    catalog_path: Path,
    segment: Segment,
    label: str,
    dataset: Dataset,
    as_of: Any,
) -> tuple[dict[str, Any], pa.Array]:
    """Compute and write the members of ``segment``; the entry's new ``snapshot`` and the ids.

    The catalog entry is changed by the caller (see :func:`removed_unless_saved`).
    """
    moment = as_of_moment(as_of, dataset)
    ids = member_ids(resolver, dataset, segment, moment)
    relative = write_members(catalog_path, label, moment, ids)
    return {"as_of": moment.isoformat(), "count": len(ids), "members": relative}, ids


@contextlib.contextmanager
def removed_unless_saved(catalog_path: Path, snapshot: dict[str, Any] | None) -> Iterator[None]:
    """Remove the members file of ``snapshot`` if the change that records it fails."""
    try:
        yield
    except BaseException:
        if snapshot is not None:
            remove_members(catalog_path, snapshot["members"])
        raise


def compare(old_ids: pa.Array, new_ids: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The ids that entered (in ``new_ids`` only) and that left (in ``old_ids`` only)."""
    if old_ids.type != new_ids.type:
        old_ids = old_ids.cast(new_ids.type)
    entered = new_ids.filter(pc.invert(pc.is_in(new_ids, value_set=old_ids)))
    left = old_ids.filter(pc.invert(pc.is_in(old_ids, value_set=new_ids)))
    return entered, left


def snapshot_dir(catalog_path: Path) -> Path:
    """``team.json`` keeps its frozen members in ``team.snapshots/``."""
    return catalog_path.with_name(catalog_path.stem + ".snapshots")


def write_members(catalog_path: Path, segment_id: str, as_of: datetime, user_ids: pa.Array) -> str:
    """Write frozen members atomically; returns their path relative to the catalog's folder.

    Every freeze gets a new file (never overwritten), so the history can still point at the
    members of an earlier revision.
    """
    folder = snapshot_dir(catalog_path)
    stamp = as_of.strftime("%Y%m%dT%H%M%S")
    name = f"{slugify(segment_id, 60)}-{stamp}-{secrets.token_hex(3)}.parquet"
    target = folder / name
    try:
        _check_folder(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(pa.table({"user_id": user_ids}), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        fsync_dir(folder)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        with contextlib.suppress(OSError):
            os.unlink(target)
        if isinstance(exc, OSError):  # a full disk, a quota, a permission
            raise _cannot_write(target, exc) from None
        raise
    return f"{folder.name}/{name}"


def _check_folder(folder: Path) -> None:
    """Create the snapshots folder; refuse a link in its place (writes would land elsewhere)."""
    if folder.is_symlink():
        raise CatalogError(
            f"the snapshots folder {folder} is a symbolic link; heapseg does not write frozen "
            "members through links: replace it with a folder"
        )
    folder.mkdir(exist_ok=True)


def _cannot_write(target: Path, exc: OSError) -> CatalogError:
    return CatalogError(
        f"cannot write the frozen members {target}: {exc.strerror or exc}; nothing was saved"
    )


def remove_members(catalog_path: Path, relative: str) -> None:
    """Remove a members file that no catalog revision refers to (a freeze that did not land)."""
    with contextlib.suppress(OSError):
        (catalog_path.parent / relative).unlink()


def read_members(catalog_path: Path, relative: str) -> pa.Array:
    """The frozen ``user_id``s of a snapshot.

    Raises
    ------
    CatalogError
        The path leaves the catalog's folder, the file is missing, or it holds no
        ``user_id`` column (Parquet) / is not a JSON array of ids.
    """
    check_members_path(relative)
    base = catalog_path.parent.resolve()
    path = (catalog_path.parent / relative).resolve()
    if not path.is_relative_to(base):
        raise CatalogError(f"snapshot members {relative!r} point outside the catalog's folder")
    try:
        if path.suffix.lower() == ".json":
            return _json_members(path, relative)
        # Opened here, not by Arrow: a FIFO in the file's place is refused instead of hanging.
        fd = open_regular(path, os.O_RDONLY, "frozen members file", follow=True)
        with os.fdopen(fd, "rb") as handle:
            table = pq.read_table(handle, columns=["user_id"])
    except FileNotFoundError:
        raise CatalogError(
            f"the frozen members file {relative!r} is missing (next to {catalog_path.name})"
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"cannot read the frozen members {relative!r}: {exc}") from None
    return table.column("user_id").combine_chunks()


def _json_members(path: Path, relative: str) -> pa.Array:
    data = read_regular(path, "frozen members file", follow=True)[0]
    try:
        values = loads(data.decode("utf-8"), max_depth=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"frozen members {relative!r} are not valid JSON: {exc}") from None
    if not isinstance(values, list) or isinstance(values, RawJSON):
        raise CatalogError(f"frozen members {relative!r} must be a JSON array of user ids")
    kinds = {type(v) for v in values}
    if not (kinds <= {str} or kinds <= {int}):
        raise CatalogError(
            f"frozen members {relative!r} must be all strings or all integers, "
            f"found {sorted(k.__name__ for k in kinds)}"
        )
    return pa.array(values, type=pa.int64() if kinds == {int} else pa.string())
