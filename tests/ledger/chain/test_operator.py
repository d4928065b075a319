"""The embedded chain's operator: the key its genesis funds is the one every later opening
finds, whether it was created there or given on the first opening."""

from __future__ import annotations

import stat
from pathlib import Path

from eth_account import Account

from ledger.chain.backends import open_chain
from ledger.chain.operator import OPERATOR_KEY_FILE


def test_a_key_given_on_the_first_opening_is_kept_for_the_next(tmp_path: Path) -> None:
    data = tmp_path / "data"
    given = Account.create()
    with open_chain("embedded", data, given.key.hex()) as chain:
        assert chain.operator.address == given.address
        funded = chain.w3.eth.get_balance(given.address)
        assert funded > 0
    key_file = data / OPERATOR_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with open_chain("embedded", data) as chain:
        assert chain.operator.address == given.address
        assert chain.w3.eth.get_balance(given.address) == funded


def test_a_created_key_is_kept_and_a_given_one_never_overwrites_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with open_chain("embedded", data) as chain:
        first = chain.operator.address
    other = Account.create()
    with open_chain("embedded", data, other.key.hex()) as chain:
        assert chain.operator.address == other.address
    with open_chain("embedded", data) as chain:
        assert chain.operator.address == first
