"""JSON that survives hostile input: a parser with no recursion limit to hit, and the writer.

Subtrees nested deeper than :data:`MAX_DEPTH` are kept as their source text (``RawJSON``) and
integers too long to convert as theirs (``LongNumber``): both are written back unchanged.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
import secrets
from collections.abc import Iterator
from typing import Any, NamedTuple

#: Deepest JSON nesting kept as Python objects. A segment nests two JSON levels per group,
#: so this allows ~95 nested groups; anything deeper is kept verbatim as text (``RawJSON``)
#: so that neither the parser, the validator nor the writer ever recurses without bound.
MAX_DEPTH = 200


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
# NaN and the infinities as Python's own reader takes them, so that a deep file reads alike.
_CONSTANTS = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def nesting_depth(text: str | bytes) -> int:
    """Deepest bracket nesting of a JSON text (or its UTF-8 bytes), counted without building
    any object.

    Vectorised with numpy and looking only at quotes and brackets: a catalog of several MB
    is measured in a few milliseconds, so that the fast C parser can be used whenever it is
    safe. Bytes as read from a file are measured as they are (every byte of a multi-byte
    UTF-8 character is >= 0x80, so none is taken for a quote or a bracket).
    """
    import numpy as np

    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    chars = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(chars == ord('"'))
    # A quote after an odd run of backslashes is inside a string, not the end of one.
    after_backslash = quotes[chars[quotes - 1] == ord("\\")] if quotes.size else quotes
    escaped = []
    for position in after_backslash.tolist():
        if position == 0:  # chars[-1] wrapped around: nothing precedes the first byte
            continue
        start = position - 1
        while start >= 0 and data[start] == ord("\\"):
            start -= 1
        if (position - 1 - start) % 2:
            escaped.append(position)
    if escaped:
        quotes = np.setdiff1d(quotes, escaped, assume_unique=True)
    # "[" and "]" differ from "{" and "}" by bit 5 only: one fold, two comparisons.
    folded = chars | 0x20
    brackets = np.flatnonzero((folded == ord("{")) | (folded == ord("}")))
    # A bracket is outside every string when an even number of quotes come before it.
    brackets = brackets[(np.searchsorted(quotes, brackets) & 1) == 0]
    if brackets.size == 0:
        return 0
    # "[" and "{" have bit 1 set, "]" and "}" do not: +1 to open, -1 to close.
    steps = (chars[brackets] & 2).astype(np.int64) - 1
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


def loads_measured(
    text: str, max_depth: int = MAX_DEPTH, *, encoded: bytes | None = None
) -> Loaded:
    """``loads``, with what its callers need to know to skip checks (see ``Loaded``).

    ``encoded``: the text's UTF-8 bytes when the caller has them (a file just read), so that
    its depth is measured without encoding the text again.
    """
    depth = nesting_depth(text if encoded is None else encoded)
    with collection_paused():
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


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a catalog's objects are built.

    Reading a catalog of thousands of entries creates about a million dicts, lists and
    model objects that all stay alive: left running, the collector walks them again and
    again as they pile up (a sixth of the time of a load). Reference counting still frees
    everything else meanwhile, and the few cycles that may arise (an exception caught while
    checking an entry) are collected when it runs again, as usual, afterwards. Nested and
    concurrent uses are harmless: it is left disabled only if it was disabled before.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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


# --------------------------------------------------------------------------------------------
# Writing


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

    # Every entry sits at the same indent: the start of each key's line (indent, key, colon)
    # is made once per key name, not once per entry.
    line_starts: dict[str, str] = {}

    def entry(value: Any, indent: str) -> str:
        if not isinstance(value, dict):
            return encode(value)
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            start = line_starts.get(k)
            if start is None:
                start = line_starts[k] = f"{indent}  {key_text(k)}: "
            lines.append(start + (quote(v) if type(v) is str else encode_any(v)))
        return "{\n" + ",\n".join(lines) + f"\n{indent}}}"

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
    # where its escape says exactly the same. ASCII text (most catalogs) has none: that test
    # runs at memory speed, the pattern's scan of a catalog of several MB does not.
    if text.isascii():
        return text
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
    """A compact JSON encoder, built once (``JSONEncoder.encode`` builds a C encoder per call)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json: slower, same output
        return json.JSONEncoder(ensure_ascii=False, default=default).encode
    encoder = make(
        None, default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encoder(value, 0))


def json_type(value: Any) -> str:
    """What a JSON value is, in words, for messages ("a list", "a number of 5000 digits")."""
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
