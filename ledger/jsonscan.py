"""Cheap checks of JSON text before anything parses it: nesting depth, and duplicate keys.

Python's JSON parser recurses once per level of nesting, so a body of 80,000 ``[`` would crash a
process whose recursion limit is high (py_ecc raises it to 100,000 on import). Both the API's
body guard (:mod:`api.body_guard`) and the embedded chain's node process
(:mod:`ledger.chain.node`) refuse such text with :func:`json_depth_problem` first, which neither
parses nor recurses: it deletes the strings with one regular expression, keeps only the
brackets, and removes innermost ``[]`` pairs at most ``limit`` times (each pass one C-level
``bytes.replace``). Any bracket left over is nesting deeper than the limit, or an opening bracket
that never closes. The text must be UTF-8 (no byte of a multi-byte character is an ASCII bracket
or quote).

:func:`refuse_duplicate_keys` is an ``object_pairs_hook`` for the one full parse that follows.
"""

from __future__ import annotations

import re
import sys
from typing import Any

__all__ = [
    "RECURSION_LIMIT",
    "DuplicateKey",
    "json_depth_problem",
    "pin_recursion_limit",
    "refuse_duplicate_keys",
]

#: The interpreter's recursion limit in a Voisin process (set by :func:`pin_recursion_limit`).
#:
#: Two libraries raise it when imported. py_ecc (8.0, imported by eth_keyfile, which
#: eth_account loads) sets 100,000 for its recursive field exponentiation, which in fact
#: recurses once per bit of the exponent (a few hundred frames). py-evm sets 1,024 x 12, so
#: that the embedded chain's EVM can reach 1,024 nested calls. At 100,000, Python's C JSON
#: parser no longer stops a deeply nested text before the thread's C stack (8 MiB) runs out: a
#: body of 80,000 ``[`` killed ``voisin serve`` with a segmentation fault. Voisin keeps
#: py-evm's figure, the most that any library it runs needs, measured to fit the C stack of the
#: main thread and of request threads when parsing JSON, validating it with pydantic, ``repr``
#: and deep copies alike.
RECURSION_LIMIT = 1024 * 12

#: A JSON string: a quote, then any bytes but a quote or a backslash, or a backslash and the
#: byte it escapes, up to the closing quote. DOTALL, so that an escaped newline (invalid JSON,
#: but the scan must stay aligned with the parser, which stops there) cannot shift it.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Every byte but the four brackets, deleted by ``bytes.translate``.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: Objects and arrays nest alike: count ``{}`` as ``[]``.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


class DuplicateKey(Exception):
    """A JSON object had the same key twice (not a ``ValueError``: it is no syntax error)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An ``object_pairs_hook`` for :func:`json.loads` that raises :class:`DuplicateKey`."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def json_depth_problem(body: bytes, limit: int) -> tuple[str, str] | None:
    """The error code and message if the JSON text ``body`` (UTF-8) nests deeper than
    ``limit`` (``json_too_deep``) or opens brackets it never closes (``invalid_input``: not
    JSON, but its parser would recurse into them all the same), else None.

    Linear in the body's size times ``limit`` at worst, with no recursion and no parse: strings
    removed, brackets kept, then up to ``limit`` passes that each remove the innermost pairs.
    After ``k`` passes every pair nested at most ``k`` deep is gone, so whatever is left after
    ``limit`` passes is either deeper or unbalanced.
    """
    brackets = _STRING.sub(b"", body).translate(_AS_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if b"[]" not in brackets:
            break
        brackets = brackets.replace(b"[]", b"")
    if b"[]" in brackets:
        return "json_too_deep", f"JSON bodies nest at most {limit} arrays and objects deep"
    if b"[" in brackets:
        unclosed = brackets.count(b"[")
        return "invalid_input", f"the body must be a JSON document: {unclosed} unclosed [ or {{"
    return None


def pin_recursion_limit() -> None:
    """Load the library that raises the recursion limit at import, then set Voisin's own
    (:data:`RECURSION_LIMIT`). Idempotent: call it after the imports that may raise it."""
    import py_ecc  # noqa: F401  (its first import raises the limit to 100,000)

    sys.setrecursionlimit(RECURSION_LIMIT)
