"""A griffe extension for the API reference: heapseg's numpy docstrings as mkdocstrings needs them.

* The docstrings name other objects with Sphinx roles (:func:`trend`, :class:`~heapseg.Dataset`),
  which read well in a notebook's help. mkdocstrings does not know roles, so each one becomes
  the object's name in code, linked to its entry when the API reference documents it (an
  optional cross-reference: plain code otherwise).
* Parameters documented together (``last, start``) each keep their own type and default:
  griffe's numpy parser gives them all the first one's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const):"
    r"`(?P<tilde>~?)(?P<text>[^`<]+?)(?:\s*<(?P<target>[^`>]+)>)?`"
)


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """The object and everything defined in it (aliases, i.e. imports, left out)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _lookup(package: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    if path == package.path:
        return package
    if not path.startswith(package.path + "."):
        return None
    try:
        return package[path[len(package.path) + 1 :]]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _target(package: griffe.Module, where: griffe.Object, name: str) -> str | None:
    """The full path a role's name means where it is written: itself, or in an enclosing scope."""
    scope: Any = where
    candidates = [name]
    while scope is not None:
        candidates.append(f"{scope.path}.{name}")
        scope = scope.parent
    found = next((hit for c in candidates if (hit := _lookup(package, c)) is not None), None)
    return found.path if found is not None else None


def _replace(package: griffe.Module, where: griffe.Object, match: re.Match[str]) -> str:
    name = (match["target"] or match["text"]).strip().removesuffix("()")
    shown = match["text"].strip() if match["target"] else name
    if match["tilde"]:
        shown = shown.rsplit(".", 1)[-1]
    code = f"<code>{html.escape(shown)}</code>"
    path = _target(package, where, name)
    if path is None:
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _own_signatures(obj: griffe.Object) -> None:
    """Each documented parameter with the type and default of its own signature entry."""
    try:
        signature = obj.parameters  # functions, and classes through their __init__
    except AttributeError:
        return
    for section in obj.docstring.parsed:
        if section.kind is not griffe.DocstringSectionKind.parameters:
            continue
        for item in section.value:
            if item.name in signature:
                item.value = signature[item.name].default
                item.annotation = signature[item.name].annotation


class NumpyDocstrings(griffe.Extension):
    """Rewrite every docstring of the package once it is loaded, then fix its parameters."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is None:
                continue
            obj.docstring.value = ROLE.sub(
                lambda m, where=obj: _replace(pkg, where, m), obj.docstring.value
            )
            _own_signatures(obj)
