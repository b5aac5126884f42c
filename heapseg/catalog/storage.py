"""The catalog file on disk: a lock, atomic replacement, and a parser that survives hostile JSON."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from heapseg.errors import CatalogError, CatalogFormatError, LockTimeoutError

FORMAT_NAME = "heapseg-catalog"
FORMAT_VERSION = 1

#: Deepest JSON nesting kept as Python objects. A segment nests two JSON levels per group,
#: so this allows ~95 nested groups; anything deeper is kept verbatim as text (``RawJSON``)
#: so that neither the parser, the validator nor the writer ever recurses without bound.
MAX_DEPTH = 200

DEFAULT_LOCK_TIMEOUT = 10.0


class RawJSON:
    """A JSON subtree nested too deep to load, kept as its exact source text.

    It is written back unchanged when the catalog is rewritten, so a deep entry that this
    version refuses to load is still not lost.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawJSON(<{len(self.text)} characters>)"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.text == self.text  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.text))


class LongNumber(RawJSON):
    """An integer with more digits than Python converts safely, kept as its source text.

    Python refuses to convert integers of more than ``sys.get_int_max_str_digits()`` digits
    (4300 by default: the conversion time grows with the square of the length). Such a
    number is kept as text, reported where a number is expected, and written back unchanged.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<a {len(self.text.lstrip('-'))}-digit number>"

    def __str__(self) -> str:
        return self.text

    @property
    def digits(self) -> int:
        return len(self.text.lstrip("-"))


def _int_or_long(literal: str) -> int | LongNumber:
    try:
        return int(literal)
    except ValueError:  # more digits than Python converts
        return LongNumber(literal)


# --------------------------------------------------------------------------------------------
# Reading


# The "unrolled" string pattern: much faster than an alternation per character.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRING_OR_BRACKET_RE = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_WS_RE = re.compile(r"[ \t\n\r]*")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_CONSTANTS = {"true": True, "false": False, "null": None}


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text, counted without building any object.

    Vectorised with numpy: a catalog of several MB is measured in a few milliseconds, so that
    the fast C parser can be used whenever it is safe.
    """
    import numpy as np

    data = text.encode("utf-8", "surrogatepass")
    chars = np.frombuffer(data, dtype=np.uint8)
    quotes = chars == ord('"')
    # A quote after an odd run of backslashes is inside a string, not the end of one.
    for position in np.flatnonzero(quotes[1:] & (chars[:-1] == ord("\\"))) + 1:
        start = int(position) - 1
        while start >= 0 and data[start] == ord("\\"):
            start -= 1
        if (position - 1 - start) % 2:
            quotes[position] = False
    inside = np.logical_xor.accumulate(quotes)
    opening = ((chars == ord("[")) | (chars == ord("{"))) & ~inside
    closing = ((chars == ord("]")) | (chars == ord("}"))) & ~inside
    brackets = np.flatnonzero(opening | closing)
    if brackets.size == 0:
        return 0
    steps = np.where(opening[brackets], 1, -1)
    return int(np.cumsum(steps).max())


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON; subtrees nested deeper than ``max_depth`` become ``RawJSON``.

    The fast C parser is used whenever the text is shallow enough; otherwise an iterative
    parser that cannot hit Python's recursion limit. Integers too long for Python to convert
    become ``LongNumber``. Raises ``ValueError`` on bad JSON.
    """
    return loads_measured(text, max_depth).value


class Loaded(NamedTuple):
    """Parsed JSON, its nesting depth, and whether some integer was kept as ``LongNumber``.

    Callers skip the checks for deep or unconverted values when neither can be there.
    """

    value: Any
    depth: int
    long_numbers: bool


def loads_measured(text: str, max_depth: int = MAX_DEPTH) -> Loaded:
    """``loads``, with what its callers need to know to skip checks (see ``Loaded``)."""
    depth = nesting_depth(text)
    if depth > max_depth:
        parser = _BoundedParser(text, max_depth)
        return Loaded(parser.parse(), depth, parser.long_numbers)
    try:
        return Loaded(json.loads(text), depth, False)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer too long to convert: parse again, keeping it as text
        return Loaded(json.loads(text, parse_int=_int_or_long), depth, True)
    except RecursionError as exc:  # cannot happen below MAX_DEPTH; kept as a last guard
        raise ValueError("JSON nested too deeply to read") from exc


class _BoundedParser:
    """An explicit-stack JSON parser: no recursion, so any depth is safe."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.max_depth = max_depth
        self.long_numbers = False

    def _ws(self, idx: int) -> int:
        return _WS_RE.match(self.text, idx).end()  # type: ignore[union-attr]

    def _fail(self, what: str, idx: int) -> ValueError:
        line = self.text.count("\n", 0, idx) + 1
        col = idx - (self.text.rfind("\n", 0, idx) + 1) + 1
        return ValueError(f"{what}: line {line} column {col} (char {idx})")

    def _key(self, idx: int) -> tuple[str, int]:
        if self.text[idx : idx + 1] != '"':
            raise self._fail("Expecting property name enclosed in double quotes", idx)
        key, idx = json.decoder.scanstring(self.text, idx + 1)  # type: ignore[attr-defined]
        idx = self._ws(idx)
        if self.text[idx : idx + 1] != ":":
            raise self._fail("Expecting ':' delimiter", idx)
        return key, self._ws(idx + 1)

    def _skip_subtree(self, idx: int) -> int:
        depth = 0
        for match in _STRING_OR_BRACKET_RE.finditer(self.text, idx):
            token = match.group()
            if token in ("[", "{"):
                depth += 1
            elif token in ("]", "}"):
                depth -= 1
                if depth == 0:
                    return match.end()
        raise self._fail("Unterminated array or object", len(self.text))

    def _scalar(self, idx: int) -> tuple[Any, int]:
        text = self.text
        ch = text[idx : idx + 1]
        if ch == '"':
            return json.decoder.scanstring(text, idx + 1)  # type: ignore[attr-defined]
        number = _NUMBER_RE.match(text, idx)
        if number:
            literal = number.group()
            if number.group(1) or number.group(2):
                return float(literal), number.end()
            value = _int_or_long(literal)
            self.long_numbers = self.long_numbers or isinstance(value, LongNumber)
            return value, number.end()
        for word, value in _CONSTANTS.items():
            if text.startswith(word, idx):
                return value, idx + len(word)
        raise self._fail("Expecting value", idx)

    def parse(self) -> Any:
        text = self.text
        stack: list[tuple[dict | list, str | None]] = []
        idx = self._ws(0)
        while True:
            ch = text[idx : idx + 1]
            if ch in ("[", "{") and len(stack) >= self.max_depth:
                end = self._skip_subtree(idx)
                value: Any = RawJSON(text[idx:end])
                idx = end
            elif ch == "{":
                idx = self._ws(idx + 1)
                if text[idx : idx + 1] == "}":
                    value, idx = {}, idx + 1
                else:
                    key, idx = self._key(idx)
                    stack.append(({}, key))
                    continue
            elif ch == "[":
                idx = self._ws(idx + 1)
                if text[idx : idx + 1] == "]":
                    value, idx = [], idx + 1
                else:
                    stack.append(([], None))
                    continue
            else:
                value, idx = self._scalar(idx)
            # Attach the finished value to its parent; close every parent that ends here.
            while True:
                if not stack:
                    idx = self._ws(idx)
                    if idx != len(text):
                        raise self._fail("Extra data", idx)
                    return value
                container, key = stack[-1]
                if isinstance(container, dict):
                    container[key] = value  # type: ignore[index]
                else:
                    container.append(value)
                idx = self._ws(idx)
                ch = text[idx : idx + 1]
                if ch == ",":
                    idx = self._ws(idx + 1)
                    if isinstance(container, dict):
                        key, idx = self._key(idx)
                        stack[-1] = (container, key)
                    break
                closer = "}" if isinstance(container, dict) else "]"
                if ch != closer:
                    raise self._fail(f"Expecting ',' or '{closer}' delimiter", idx)
                idx += 1
                stack.pop()
                value = container


def dumps(document: Any) -> str:
    """Serialize a catalog: one line per key of each entry, each value compact.

    Readable and diff-friendly (a change shows as the lines of the keys it touched), and every
    value goes through the C encoder, which the ``indent=`` mode of ``json`` does not use.
    Every ``RawJSON`` is written back as its original text.
    """
    raw = _RawValues()
    encode_any = _compact_encoder(raw.placeholder)
    quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
    keys: dict[str, str] = {}

    def encode(value: Any) -> str:
        # Most values are strings: the C string quoter alone is much cheaper than an encoder.
        return quote(value) if type(value) is str else encode_any(value)

    def key_text(key: Any) -> str:
        text = keys.get(key)
        if text is None:
            text = keys[key] = quote(str(key))
        return text

    def block(mapping: dict, indent: str, inner: Any) -> str:
        if not mapping:
            return "{}"
        inner_indent = indent + "  "
        lines = [
            f"{inner_indent}{key_text(k)}: {inner(v, inner_indent)}" for k, v in mapping.items()
        ]
        return "{\n" + ",\n".join(lines) + f"\n{indent}}}"

    def value_text(value: Any, _indent: str) -> str:
        return encode(value)

    def entry(value: Any, indent: str) -> str:
        return block(value, indent, value_text) if isinstance(value, dict) else encode(value)

    def top(value: Any, indent: str) -> str:
        if isinstance(value, list) and value is document.get("segments"):
            if not value:
                return "[]"
            items = [f"{indent}  {entry(v, indent + '  ')}" for v in value]
            return "[\n" + ",\n".join(items) + f"\n{indent}]"
        return encode(value)

    text = block(document, "", top) if isinstance(document, dict) else encode(document)
    return _escape_surrogates(raw.put_back(text)) + "\n"


def to_json(value: Any, indent: int | None = None) -> str:
    """``json.dumps`` for values read from a catalog (Unicode kept, ``RawJSON`` as its text)."""
    raw = _RawValues()
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=raw.placeholder)
    return _escape_surrogates(raw.put_back(text))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(text: str) -> str:
    # A lone surrogate (what a "\ud800" escape in a file gives) has no UTF-8 form: one such
    # entry would make the whole catalog unwritable. It occurs only inside JSON strings,
    # where its escape says exactly the same.
    return _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def lone_surrogate(value: Any) -> str | None:
    """The first string (or key) in ``value`` holding a lone surrogate, else None."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE_RE.search(node):
                return node
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


class _RawValues:
    """``RawJSON`` values met while encoding: a unique placeholder string each, then the
    original text put back in their place."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(8)
        self.texts: dict[str, str] = {}

    def placeholder(self, obj: Any) -> str:
        if isinstance(obj, RawJSON):
            key = f"@@heapseg-raw-{self.token}-{len(self.texts)}@@"
            self.texts[key] = obj.text
            return key
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    def put_back(self, text: str) -> str:
        for key, source in self.texts.items():
            text = text.replace(f'"{key}"', source, 1)
        return text


def _compact_encoder(default: Any) -> Any:
    """A compact JSON encoder built once (``JSONEncoder.encode`` rebuilds its C encoder per call)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json: slower, same output
        return json.JSONEncoder(ensure_ascii=False, default=default).encode
    encoder = make(
        None, default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encoder(value, 0))


class FileContent(NamedTuple):
    """A catalog as read: the document, the file version it came from, its nesting depth,
    and whether some integer in it was kept as text (``LongNumber``)."""

    document: dict | None
    signature: tuple[int, int, int, int] | None
    depth: int
    long_numbers: bool = False


def parse_document(text: str, source: str) -> dict:
    """Parse and check the top level of a catalog file (see ``parse_document_measured``)."""
    return parse_document_measured(text, source).value


def parse_document_measured(text: str, source: str) -> Loaded:
    """Parse and check the top level of a catalog file; entries are checked one by one later.

    Raises
    ------
    CatalogFormatError
        Empty, not JSON (with line and column), not a catalog, or another format version.
    """
    if not text.strip():
        raise CatalogFormatError(f"{source} is empty: it is not a heapseg catalog")
    try:
        loaded = loads_measured(text)
    except ValueError as exc:
        raise CatalogFormatError(
            f"{source} is not valid JSON (truncated or damaged?): {exc}"
        ) from None
    document = loaded.value
    if not isinstance(document, dict):
        raise CatalogFormatError(
            f"{source}: the top level must be a JSON object with "
            f'"format": "{FORMAT_NAME}", found {_json_type(document)}'
        )
    if document.get("format") != FORMAT_NAME:
        raise CatalogFormatError(
            f'{source} is not a heapseg catalog: "format" is {document.get("format")!r}, '
            f"expected {FORMAT_NAME!r}"
        )
    version = document.get("version")
    if type(version) is not int:
        raise CatalogFormatError(
            f'{source}: "version" must be the integer {FORMAT_VERSION}, found {version!r}'
        )
    if version != FORMAT_VERSION:
        newer = " by a newer heapseg" if version > FORMAT_VERSION else ""
        raise CatalogFormatError(
            f"{source} was written{newer} in catalog format version {version}; "
            f"this heapseg reads version {FORMAT_VERSION} only"
        )
    if not isinstance(document.get("segments"), list):
        raise CatalogFormatError(
            f'{source}: "segments" must be a list, found {_json_type(document.get("segments"))}'
        )
    return loaded


def new_document() -> dict:
    """An empty catalog document."""
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "segments": []}


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "nothing (null or missing)"
    if isinstance(value, LongNumber):
        return f"a number of {value.digits} digits (too long to read)"
    if isinstance(value, RawJSON):
        return "a structure nested too deeply"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------
# Opening heapseg's own files


def open_regular(path: Path, flags: int, what: str, *, follow: bool = False) -> int:
    """Open a regular file; refuse what would block, damage another file or mislead.

    A FIFO, device or folder in the file's place is refused before anything is read or
    written (opened non-blocking, so a FIFO cannot hang the caller). Unless ``follow``, a
    symbolic link is refused too (``O_NOFOLLOW``), and so is a file with other hard links:
    writing through either would change a file that is not heapseg's.
    ``FileNotFoundError`` passes through; every other failure is a ``CatalogError``
    naming ``what`` and the path.
    """
    nofollow = 0 if follow else os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | nofollow | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _open_error(path, what, exc, follow) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CatalogError(
                f"the {what} {path} is not a regular file (a FIFO, device or folder is in "
                "its place); heapseg does not read or write it: remove it"
            )
        if not follow and st.st_nlink > 1:
            raise CatalogError(
                f"the {what} {path} has {st.st_nlink - 1} other hard link(s); writing it would "
                "change those files too: replace it with a copy of its own"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_error(path: Path, what: str, exc: OSError, follow: bool) -> CatalogError:
    if exc.errno == errno.ELOOP and not follow:
        return CatalogError(
            f"the {what} {path} is a symbolic link; heapseg does not follow links for its own "
            "files (that could overwrite the file it points to): replace it with the file itself"
        )
    if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO without a reader, a folder
        return CatalogError(
            f"the {what} {path} is not a regular file (a FIFO, device or folder is in its "
            "place); heapseg does not read or write it: remove it"
        )
    return CatalogError(f"cannot open the {what} {path}: {exc.strerror or exc}")


def read_regular(path: Path, what: str, *, follow: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and its ``stat`` (see ``open_regular``)."""
    fd = open_regular(path, os.O_RDONLY, what, follow=follow)
    try:
        st = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
    except OSError as exc:
        raise CatalogError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks), st


def resolve_link(path: Path) -> Path:
    """The file a symbolic link points to (the path itself when it is not a link).

    A catalog opened through a link is its target: writing the target keeps the link and
    the shared file one (replacing the link would split them), and the lock, history and
    snapshots then sit beside the target, where every writer finds them.
    """
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


# --------------------------------------------------------------------------------------------
# Writing


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux shows it.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some network filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def temp_prefix(path: Path) -> str:
    """Prefix of the temporary files a writer of ``path`` creates next to it."""
    return f".{path.name}."


def atomic_write(path: Path, data: bytes) -> os.stat_result:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    The data goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the target (atomic on POSIX), and the directory entry itself is flushed.
    The file keeps its permissions (a shared catalog must stay readable by the team).
    Returns the new file's ``stat``.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise _unchanged(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        written = os.stat(tmp)  # a rename keeps inode, size and mtime: the new file's signature
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a quota, a permission: nothing replaced
            raise _unchanged(path, exc) from None
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise CatalogError(
            f"{path} was saved, but its folder could not be flushed to disk "
            f"({exc.strerror or exc}): the change may be lost if the machine crashes now"
        ) from None
    return written


def _unchanged(path: Path, exc: OSError) -> CatalogError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return CatalogError(
        f"cannot save {path}: {exc.strerror or exc}{where}; nothing was saved, the file is "
        "unchanged"
    )


# --------------------------------------------------------------------------------------------
# Locking


class FileLock:
    """An exclusive ``fcntl.flock`` on a separate lock file, with a timeout.

    The kernel releases a flock when its holder dies, however it dies (SIGKILL included), so a
    crashed writer never leaves the catalog locked. The lock file only ever holds a note about
    the current holder, used in the timeout message; it is never trusted for the lock itself.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        # Never through a link: the holder note truncates and rewrites the file.
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, "catalog lock file")
        except FileNotFoundError:
            raise CatalogError(
                f"cannot create the catalog lock file {self.path}: its folder does not exist"
            ) from None
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockTimeoutError(
                        f"the catalog is locked by another writer{holder} and stayed locked "
                        f"for more than {self.timeout:g} s (lock file {self.path}); "
                        "try again, or raise lock_timeout"
                    ) from None
                # Jitter keeps many waiting processes from waking in step.
                time.sleep(pause * (0.5 + secrets.randbelow(1000) / 1000))
                pause = min(pause * 2, 0.01)
            except OSError as exc:
                os.close(fd)
                raise CatalogError(f"cannot lock {self.path}: {exc}") from None
        self._fd = fd
        _write_holder(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_holder(fd: int) -> None:
    note = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": _login(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" ({note['user']}, pid {int(note['pid'])} on {note['host']}, since {note['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return f"uid{os.getuid()}"


# --------------------------------------------------------------------------------------------
# The file


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class CatalogFile:
    """One catalog JSON file: lock-free reads, locked read-modify-write transactions."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = resolve_link(Path(path))
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def signature(self) -> tuple[int, int, int, int] | None:
        """What changes whenever the file is replaced (inode, size, mtime); None if missing."""
        try:
            return _signature(self.path.stat())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog {self.path}: {exc.strerror}") from None

    def read(self) -> dict | None:
        """The parsed document, or None when the file does not exist yet. Never writes."""
        return self.read_content().document

    def read_content(self) -> FileContent:
        """The parsed document with the signature of exactly the file version that was read."""
        try:
            data, st = read_regular(self.path, "catalog", follow=True)
        except FileNotFoundError:
            return FileContent(None, None, 0)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CatalogFormatError(
                f"{self.path} is not UTF-8 text (byte {exc.start}): it is not a heapseg catalog"
            ) from None
        loaded = parse_document_measured(text, str(self.path))
        return FileContent(loaded.value, _signature(st), loaded.depth, loaded.long_numbers)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock; leftovers of writers that died mid-write are removed."""
        with FileLock(self.lock_path, self.lock_timeout):
            self._remove_dead_temp_files()
            yield

    def encode(self, document: dict) -> bytes:
        """The file's bytes for ``document``; fails before anything is written."""
        try:
            return dumps(document).encode("utf-8")
        except ValueError as exc:  # a Python int longer than Python converts to text
            raise CatalogError(f"cannot store this value in {self.path}: {exc}") from None

    def check_writable(self) -> None:
        """Refuse, before anything is written, a file this writer must not replace.

        A rename would replace a read-only file, or a link, without a word (the folder
        allows it): a file without write permission for anyone (root included), one the
        writer may not write, and a link that took the file's place since it was opened are
        refused. Call under ``locked()``.
        """
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog {self.path}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise CatalogError(
                f"the catalog {self.path} was replaced by a symbolic link since it was opened; "
                "nothing was saved (open the catalog again to write where the link points)"
            )
        if not st.st_mode & 0o222:
            raise CatalogError(
                f"the catalog {self.path} is read-only (mode {stat.S_IMODE(st.st_mode):04o}); "
                "nothing was saved (make it writable to save changes)"
            )
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
        except OSError as exc:
            raise CatalogError(
                f"the catalog {self.path} is not writable by you ({exc.strerror}); nothing "
                "was saved"
            ) from None

    def write(self, data: bytes) -> tuple[int, int, int, int]:
        """Atomically replace the file with ``data`` (hold ``locked()``); the new signature."""
        return _signature(atomic_write(self.path, data))

    def _remove_dead_temp_files(self) -> None:
        # Writers create temp files only while holding the lock, and we hold it now: any
        # temp file still there belongs to a writer that was killed before its rename.
        prefix = temp_prefix(self.path)
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
