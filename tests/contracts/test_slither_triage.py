"""scripts/slither's decision, without Slither: high and medium findings fail unless the triage
file justifies them, entries that match nothing fail, and lower impacts never fail."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "slither_check", ROOT / "scripts" / "slither_check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sc = _module()


def _result(check: str, impact: str, where: str) -> dict[str, object]:
    return {
        "check": check,
        "impact": impact,
        "confidence": "Medium",
        "description": f"{where} (contracts/Voisin.sol#12-14) says something\nmore lines",
    }


def test_the_finding_is_named_by_detector_and_place_without_line_numbers() -> None:
    f = sc.finding_from_result(_result("reentrancy-eth", "High", "Voisin.takeOffer(uint32)"))
    assert (f.check, f.where, f.impact) == ("reentrancy-eth", "Voisin.takeOffer(uint32)", "High")
    assert f.description == "Voisin.takeOffer(uint32) (contracts/Voisin.sol#12-14) says something"


def test_untriaged_high_or_medium_fails_and_low_never_does() -> None:
    findings = [
        sc.finding_from_result(_result("reentrancy-eth", "High", "Voisin.a()")),
        sc.finding_from_result(_result("uninitialized-local", "Medium", "Voisin.b().x")),
        sc.finding_from_result(_result("missing-zero-check", "Low", "Voisin.c()")),
        sc.finding_from_result(_result("assembly", "Informational", "Voisin.d()")),
    ]
    v = sc.verdict(findings, {"findings": []})
    assert not v.ok
    assert [f.check for f in v.untriaged] == ["reentrancy-eth", "uninitialized-local"]
    triage = {
        "findings": [
            {"check": "uninitialized-local", "where": "Voisin.b().x", "justification": "zero"}
        ]
    }
    v = sc.verdict(findings, triage)
    assert [f.check for f in v.untriaged] == ["reentrancy-eth"] and not v.ok
    v = sc.verdict(findings[1:], triage)
    assert v.ok and [f.where for f in v.triaged] == ["Voisin.b().x"]


def test_a_triage_entry_matching_no_finding_or_without_justification_fails() -> None:
    stale = {
        "findings": [{"check": "reentrancy-eth", "where": "Voisin.gone()", "justification": "x"}]
    }
    v = sc.verdict([], stale)
    assert not v.ok and v.stale == stale["findings"]
    blank = {"findings": [{"check": "reentrancy-eth", "where": "Voisin.a()", "justification": " "}]}
    finding = sc.finding_from_result(_result("reentrancy-eth", "High", "Voisin.a()"))
    v = sc.verdict([finding], blank)
    assert not v.ok and v.problems and [f.where for f in v.untriaged] == ["Voisin.a()"]
    assert not sc.verdict([], {}).ok


def test_the_committed_triage_file_justifies_every_entry() -> None:
    triage = json.loads((ROOT / "contracts" / "slither-triage.json").read_text())
    assert triage["findings"]
    for entry in triage["findings"]:
        assert entry["check"] and entry["where"]
        # A justification says why, at some length, and names the test that backs it.
        assert len(entry["justification"]) > 80 and "tests/" in entry["justification"]
