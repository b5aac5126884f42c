"""The ``heapseg`` command line: browse and check a catalog, count, export and show SQL.

Usage::

    heapseg [--catalog FILE] [--data SOURCE] [--as-of WHEN] COMMAND ...

    heapseg catalog list [--category C] [--type dynamic|static] [--owner O] [--search TEXT]
                         [--all] [--json]
    heapseg catalog show ID [--json]
    heapseg catalog validate [--json]          (with --data: also checked against the data)
    heapseg catalog history ID [--json]
    heapseg count ID
    heapseg export ID -o FILE [--properties a,b,c] [--force]
    heapseg sql ID

``ID`` is a segment id or its name (ignoring case). The options may come before or after
the command. ``--catalog`` defaults to ``$HEAPSEG_CATALOG``; ``--data`` (a DuckDB file or a
folder of Parquet files) to ``$HEAPSEG_DATA``, else the bundled sample data; ``--as-of`` is an
ISO-8601 date or timestamp (default: the data's own default, else now).

Results go to standard output (``count`` prints the number alone), messages to standard error
as ``heapseg: error: ...``. Text from the catalog is printed with its control characters
escaped (``\x1b``, ``\u202e``): a name or description cannot drive the terminal.
``export`` refuses to replace an existing file unless given ``--force``.

Exit codes
----------
0
    Success.
1
    Problems found: ``catalog validate`` found some, or the segment asked for is not valid
    (bad definition, unknown property, unknown or cyclic segment reference).
2
    Usage error: unknown command or option, missing argument, unreadable ``--as-of``.
3
    Not found: no segment with that id or name, or no catalog file.
4
    Data error: the data cannot be opened or the backend failed (missing table, column...),
    or the export file cannot be written (missing or read-only folder, an existing file
    without ``--force``, disk full).
5
    Catalog file error: not a valid catalog (empty, truncated, other format), locked by
    another writer for too long, or not readable.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from heapseg.errors import (
    CatalogError,
    DataError,
    DefinitionError,
    HeapsegError,
    NotFoundError,
    SchemaError,
    SegmentReferenceError,
    backend_errors,
)
from heapseg.progress import progress

OK = 0
PROBLEMS = 1
USAGE = 2
NOT_FOUND = 3
DATA_ERROR = 4
CATALOG_ERROR = 5


class _Failure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _Failure(USAGE, message)


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    # Given to the main parser and to every command, so options work on either side of the
    # command. Only the main parser sets defaults; the commands' copies leave them alone.
    parent = argparse.ArgumentParser(add_help=False)
    keep = {} if defaults else {"default": argparse.SUPPRESS}
    parent.add_argument(
        "--catalog", metavar="FILE", help="the catalog file (default: $HEAPSEG_CATALOG)", **keep
    )
    parent.add_argument(
        "--data",
        metavar="SOURCE",
        help="a DuckDB file or a folder of Parquet files (default: $HEAPSEG_DATA, else the "
        "bundled sample)",
        **keep,
    )
    parent.add_argument("--as-of", metavar="WHEN", help="evaluate at this ISO-8601 moment", **keep)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation and the tests)."""
    common = _common_options(defaults=False)
    parser = _Parser(
        prog="heapseg",
        description="Browse and check a heapseg segment catalog; count, export, show SQL.",
        epilog="Exit codes: 0 ok, 1 problems found, 2 usage, 3 not found, 4 data error, "
        "5 catalog file error.",
        parents=[_common_options(defaults=True)],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    catalog = commands.add_parser("catalog", help="list, show, validate the catalog")
    sub = catalog.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    sub.required = True
    listing = sub.add_parser("list", parents=[common], help="list segments")
    listing.add_argument("--category")
    listing.add_argument("--type", choices=["dynamic", "static"])
    listing.add_argument("--owner")
    listing.add_argument("--search", metavar="TEXT", help="text in id, name, description")
    listing.add_argument("--all", action="store_true", help="include others' personal segments")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", parents=[common], help="show one segment")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the entry as stored")
    validate = sub.add_parser("validate", parents=[common], help="report every problem")
    validate.add_argument("--json", action="store_true", help="print JSON")
    history = sub.add_parser("history", parents=[common], help="saved changes of a segment")
    history.add_argument("id", metavar="ID")
    history.add_argument("--json", action="store_true", help="print JSON lines")

    count = commands.add_parser("count", parents=[common], help="count a segment's users")
    count.add_argument("id", metavar="ID")
    export = commands.add_parser("export", parents=[common], help="write members to a file")
    export.add_argument("id", metavar="ID")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help=".csv or .parquet")
    export.add_argument(
        "--properties", metavar="A,B", help="user properties after user_id (default: all)"
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    sql = commands.add_parser("sql", parents=[common], help="print the SQL of a segment")
    sql.add_argument("id", metavar="ID")
    return parser


# ------------------------------------------------------------------------------------- commands


def _catalog(args: argparse.Namespace) -> Any:
    from heapseg.catalog import Catalog

    path = args.catalog or os.environ.get("HEAPSEG_CATALOG")
    if not path:
        raise _Failure(USAGE, "no catalog: pass --catalog FILE or set HEAPSEG_CATALOG")
    try:
        found = Path(path).is_file()
    except OSError as exc:  # a folder on the way that you may not open
        raise CatalogError(f"cannot read the catalog {path}: {exc.strerror}") from None
    if not found:
        raise _Failure(NOT_FOUND, f"no catalog file at {path}")
    return Catalog(path)


def _dataset(args: argparse.Namespace) -> Any:
    import heapseg

    source = args.data or os.environ.get("HEAPSEG_DATA")
    # A file that is not a database, a folder without tables: the backend's words, as a DataError.
    with backend_errors(f"cannot open the data {source or '(sample)'}"):
        return heapseg.connect(source) if source else heapseg.connect()


def _as_of(args: argparse.Namespace) -> Any:
    if args.as_of is None:
        return None
    from heapseg.as_of import resolve_as_of

    try:
        resolve_as_of(args.as_of)
    except HeapsegError as exc:
        raise _Failure(USAGE, f"--as-of: {exc}") from None
    return args.as_of


#: What must not reach a terminal raw: C0/C1 controls (ESC, BEL, CR, CSI...), DEL, the bidi
#: controls that reorder what follows, line separators, and lone surrogates (unprintable).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
#: The same in JSON text, but for the whitespace between its tokens (JSON itself escapes
#: controls inside strings; what it leaves raw there is escaped as \uXXXX, meaning the same).
_UNSAFE_IN_JSON = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _printable(text: str) -> str:
    """Text from the catalog as a terminal may show it: unsafe characters escaped (``\\x1b``)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _json_text(value: Any, indent: int | None = 2) -> str:
    """JSON of catalog values, with what must not reach a terminal as ``\\u`` escapes."""
    from heapseg.catalog.jsontext import to_json

    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", to_json(value, indent))


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    rows = [[_printable(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _list(args: argparse.Namespace) -> int:
    entries = _catalog(args).list(
        category=args.category,
        type=args.type,
        owner=args.owner,
        text=args.search,
        everyone=args.all,
    )
    if args.json:
        print(_json_text([e.to_dict() for e in entries]))
        return OK
    rows = [
        [e.id, e.name, e.category, e.type, e.visibility, e.owner, str(e.revision)] for e in entries
    ]
    _print_table(rows, ["ID", "NAME", "CATEGORY", "TYPE", "VISIBILITY", "OWNER", "REV"])
    return OK


def _show(args: argparse.Namespace) -> int:
    entry = _catalog(args).get(args.id)
    if args.json:
        print(_json_text(entry.to_dict()))
        return OK
    fields = [
        ("id", entry.id),
        ("name", entry.name),
        ("description", entry.description),
        ("category", entry.category),
        ("type", entry.type),
        ("visibility", entry.visibility),
        ("owner", entry.owner),
        ("created", entry.created_at.isoformat()),
        ("updated", entry.updated_at.isoformat()),
        ("revision", str(entry.revision)),
    ]
    if entry.snapshot is not None:
        snap = entry.snapshot
        fields.append(
            ("frozen", f"{snap.count} users at {snap.as_of.isoformat()} ({snap.members})")
        )
    fields.append(("selects", entry.segment.describe()))
    for key, value in fields:
        print(f"{key + ':':13s}{_printable(value)}")
    print("definition:")
    print(_json_text(entry.definition))
    return OK


def _validate(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    dataset = _dataset(args) if (args.data or os.environ.get("HEAPSEG_DATA")) else None
    problems = catalog.validate(dataset)
    if args.json:
        print(
            _json_text(
                [
                    {"id": p.segment_id, "index": p.index, "path": p.path, "message": p.message}
                    for p in problems
                ]
            )
        )
    else:
        for problem in problems:
            print(_printable(str(problem)))
    usable = len(catalog.list(everyone=True))
    if problems:
        _say(f"{len(problems)} problem(s) found; {usable} segment(s) usable")
        return PROBLEMS
    _say(f"no problems; {usable} segment(s)")
    return OK


def _history(args: argparse.Namespace) -> int:
    records = _catalog(args).history(args.id)
    if args.json:
        for record in records:
            print(_json_text(record.to_dict(), indent=None))
        return OK
    rows = [
        [str(r.revision), r.action, r.user, r.at.isoformat(), _change_summary(r)] for r in records
    ]
    _print_table(rows, ["REV", "ACTION", "USER", "AT", "CHANGE"])
    return OK


def _change_summary(record: Any) -> str:
    before, after = record.before or {}, record.after or {}
    changed = sorted(
        key
        for key in set(before) | set(after)
        if key not in ("revision", "updated_at") and before.get(key) != after.get(key)
    )
    if record.action in ("create", "delete", "duplicate"):
        return ""
    return ", ".join(changed)


def _count(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    entry = catalog.get(args.id)
    with progress(f"counting {entry.id}"):
        count = catalog.count(entry, _dataset(args), _as_of(args))
    print(count)
    return OK


def _export(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    entry = catalog.get(args.id)
    properties = None
    if args.properties is not None:
        properties = [p.strip() for p in args.properties.split(",") if p.strip()]
    with progress(f"exporting {entry.id}"):
        target = catalog.export(
            entry, _dataset(args), args.output, properties, _as_of(args), overwrite=args.force
        )
    _say(f"wrote the members of {entry.id} to {target}")
    return OK


def _sql(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    entry = catalog.get(args.id)
    print(catalog.sql(entry, _dataset(args), _as_of(args)))
    return OK


_COMMANDS = {
    ("catalog", "list"): _list,
    ("catalog", "show"): _show,
    ("catalog", "validate"): _validate,
    ("catalog", "history"): _history,
    ("count", None): _count,
    ("export", None): _export,
    ("sql", None): _sql,
}


# ------------------------------------------------------------------------------------- main


def _say(message: str, kind: str = "") -> None:
    print(f"heapseg: {kind + ': ' if kind else ''}{message}", file=sys.stderr)


def _exit_code(error: HeapsegError) -> int:
    if isinstance(error, NotFoundError):
        return NOT_FOUND
    if isinstance(error, (DefinitionError, SchemaError, SegmentReferenceError)):
        return PROBLEMS
    if isinstance(error, DataError):
        return DATA_ERROR
    if isinstance(error, CatalogError):
        return CATALOG_ERROR
    return DATA_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
        command = _COMMANDS[(args.command, getattr(args, "action", None))]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = command(args)
            finally:
                # Only heapseg's own warnings (an unknown event name...) concern the user;
                # the libraries' deprecation notices would only bury the results.
                for warning in caught:
                    if warning.category.__module__.startswith("heapseg"):
                        _say(str(warning.message), "warning")
        sys.stdout.flush()
        return code
    except _Failure as failure:
        _say(str(failure), "error")
        return failure.code
    except HeapsegError as error:
        _say(str(error), "error")
        return _exit_code(error)
    except BrokenPipeError:  # `heapseg catalog list | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
