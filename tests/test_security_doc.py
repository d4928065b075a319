"""SECURITY.md's threat table: every row names at least one test, and every test it names
exists (the file, the class and the test function), so the table cannot drift from the suite."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)")


def _rows() -> list[str]:
    text = (ROOT / "SECURITY.md").read_text()
    table = text.split("## Threats, rules and tests", 1)[1].split("\n## ", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| **")]


def _defined(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    return classes, functions


def test_every_threat_row_names_a_test() -> None:
    rows = _rows()
    assert len(rows) >= 15
    for row in rows:
        assert TEST_ID.search(row), row.split("|")[1]


def test_every_named_test_exists() -> None:
    named = {(m[0], m[1]) for row in _rows() for m in TEST_ID.findall(row)}
    missing = []
    for file, node in sorted(named):
        path = ROOT / file
        if not path.exists():
            missing.append(f"{file}: no such file")
            continue
        classes, functions = _defined(path)
        *owners, test = node.split("::")
        missing += [f"{file}::{node}: no class {c}" for c in owners if c not in classes]
        if test not in functions or not test.startswith("test_"):
            missing.append(f"{file}::{node}: no test {test}")
    assert not missing, "\n".join(missing)


def test_the_threat_table_names_every_attack_the_ledger_must_resist() -> None:
    threats = " ".join(row.split("|")[1].lower() for row in _rows())
    for topic in (
        "forged",
        "replayed",
        "cross-contract",
        "cross-chain",
        "malleability",
        "reentrancy",
        "overselling",
        "double-spending",
        "privilege escalation",
        "token theft",
        "huge batches",
        "pagination",
        "personal meter data",
        "a database writer",
        "a holder of one signed reading",
        "an unauthenticated client",
        "a hurried user",
    ):
        assert topic in threats, topic
