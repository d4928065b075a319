"""Every refusal the ledger or the API can answer a household's form with has a text in both
languages (api/web/texts/refusals.py), so that a French page never shows an English message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.errors import from_ledger
from api.web import forms, i18n
from api.web.render import message
from api.web.texts.refusals import REFUSALS
from ledger import errors

ROOT = Path(__file__).resolve().parents[2]
ABI = ROOT / "contracts" / "artifacts" / "Voisin.json"

#: The API's own modules whose refusals a household's form (a price, a take) can meet.
FORM_PATHS = ("api/errors.py", "api/intents.py", "api/ratelimit.py", "api/routes/orders.py")


def _abi_error_names() -> list[str]:
    artifact = json.loads(ABI.read_text(encoding="utf-8"))
    abi = artifact["abi"] if isinstance(artifact, dict) else artifact
    names = sorted(str(item["name"]) for item in abi if item["type"] == "error")
    assert len(names) > 30, "the contract's ABI declares its custom errors"
    return names


def _api_code(name: str) -> str:
    """The code the API answers a contract error with (api/errors.py's mapping)."""
    cls = errors.contract_error_classes()[name]
    return from_ledger(cls({})).code


ABI_NAMES = _abi_error_names()


def test_codes_are_the_contract_names_in_snake_case() -> None:
    # The mapping the rest of this file relies on, on a few names with several capitals.
    assert _api_code("InsufficientFunds") == "insufficient_funds"
    assert _api_code("PriceLimitUnreachable") == "price_limit_unreachable"
    assert _api_code("ZeroAddress") == "zero_address"


@pytest.mark.parametrize("name", ABI_NAMES)
def test_every_contract_error_has_a_refusal_in_both_languages(name: str) -> None:
    code = _api_code(name)
    assert code == re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    assert code in REFUSALS, f"{name} ({code}) has no refusal text"
    english, french = REFUSALS[code]
    assert english.strip() and french.strip()
    assert english != french
    # What a form shows: the text by key in each language, not the ledger's own message.
    refused = forms.refused(code)
    assert refused.key == f"refusal_{code}"
    assert message("en", refused) == english
    assert message("fr", refused) == i18n.french_spaces(french)
    assert name not in message("fr", refused) and name not in message("en", refused)


def test_refusals_cover_exactly_the_contract_and_the_apis_own_codes() -> None:
    contract = {_api_code(n) for n in ABI_NAMES}
    own = set(REFUSALS) - contract
    # Nothing for a contract error that no longer exists: every other code is one the API
    # itself answers with ("other" is the fallback for a code without a text).
    api_codes = _api_codes(*ROOT.joinpath("api").rglob("*.py"))
    assert own - {"other"} <= api_codes, own - {"other"} - api_codes


#: An ``ApiError`` raised in code (what a form catches), and a JSON error body written directly.
RAISED = re.compile(r'(?:ApiError\(\s*\d+,\s*|not_found\(\s*)"([a-z_]+)"')
ANSWERED = re.compile(r'(?:ApiError\(\s*\d+,\s*|not_found\(\s*|_body\(\s*)"([a-z_]+)"')


def _api_codes(*paths: Path, pattern: re.Pattern[str] = ANSWERED) -> set[str]:
    return {c for p in paths for c in pattern.findall(p.read_text(encoding="utf-8"))}


def test_the_apis_own_refusals_on_a_households_forms_have_texts() -> None:
    codes = _api_codes(*(ROOT / p for p in FORM_PATHS), pattern=RAISED)
    assert {"slot_settled", "offer_not_open", "self_trade", "rate_limited"} <= codes
    assert codes - set(REFUSALS) == set()


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_english_and_french_differ_and_are_sentences(code: str) -> None:
    english, french = REFUSALS[code]
    assert english and french and english != french
    for text in (english, french):
        assert text == text.strip()
        assert text[0].isupper(), text
        assert text.endswith("."), text


def test_an_unknown_code_is_named_in_either_language() -> None:
    refused = forms.refused("brand_new_refusal")
    assert refused.key == "refusal_other"
    english, french = message("en", refused), message("fr", refused)
    assert "brand_new_refusal" in english and "brand_new_refusal" in french
    assert english == "The ledger refused this (code brand_new_refusal)."
    assert french == "Le registre a refusé cela (code brand_new_refusal)."


def _shown_fr(code: str) -> str:
    """The French text a form shows for ``code`` (the fallback's, for a code it names)."""
    return message("fr", forms.refused("some_code" if code == "other" else code))


#: Words that occur in the API's English messages and never in French text.
ENGLISH_WORDS = re.compile(
    r"\b(the|is|are|not|this|that|you|your|cannot|already|please|try|again|slot|order|"
    r"offer|bid|meter|ledger|balance|refused|insufficient)\b",
    re.IGNORECASE,
)


def test_french_refusals_hold_no_english() -> None:
    english_texts = [pair[0] for pair in REFUSALS.values()]
    rules = [cls.rule for cls in errors.contract_error_classes().values() if cls.rule]
    for code, (_, french) in REFUSALS.items():
        shown = _shown_fr(code)
        for english in english_texts:
            assert english not in shown, (code, english)
        for rule in rules:
            assert rule not in shown, (code, rule)
        found = ENGLISH_WORDS.findall(french)
        assert not found, (code, found, french)


def test_french_refusals_follow_french_typography() -> None:
    for code in REFUSALS:
        shown = _shown_fr(code)
        assert " :" not in shown and " ;" not in shown, shown
        if ":" in shown:
            assert "\u00a0:" in shown, shown
