"""Custom errors: every error of the contract's ABI has its typed Python exception."""

from __future__ import annotations

import pickle

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3.exceptions import ContractCustomError

from ledger import errors
from ledger.contract.client import VoisinClient
from ledger.contract.compile import load_artifact


def _abi_errors() -> list[dict[str, object]]:
    return [i for i in load_artifact("Voisin")["abi"] if i["type"] == "error"]


def test_every_contract_error_has_a_typed_exception_with_a_rule() -> None:
    classes = errors.contract_error_classes()
    names = {str(e["name"]) for e in _abi_errors()}
    assert names, "the ABI declares custom errors"
    assert names - set(classes) == set(), "errors without a Python class"
    assert set(classes) - names == set(), "Python classes for errors the contract lacks"
    for name in names:
        assert classes[name].rule, f"{name} explains its rule"


def test_categories_map_to_builtin_exceptions() -> None:
    assert issubclass(errors.InsufficientCredits, ValueError)
    assert issubclass(errors.UnknownOffer, LookupError)
    assert issubclass(errors.Unauthorized, PermissionError)
    assert issubclass(errors.DuplicateReading, errors.Conflict)
    assert issubclass(errors.EnforcedPause, errors.LedgerPaused)
    assert issubclass(errors.ContractError, errors.LedgerError)


def test_revert_data_decodes_to_the_typed_error_with_values() -> None:
    client = VoisinClient.__new__(VoisinClient)
    from ledger.contract.client import _error_decoders

    client._errors = _error_decoders(load_artifact("Voisin")["abi"])
    selector = keccak(text="InsufficientCredits(uint32,uint32,uint32,uint64,uint64)")[:4]
    data = selector + encode(["uint32", "uint32", "uint32", "uint64", "uint64"], [3, 1, 9, 10, 20])
    err = client.decode_error(ContractCustomError("reverted", data="0x" + data.hex()))
    assert isinstance(err, errors.InsufficientCredits)
    assert err.values == {"fill": 3, "seller": 1, "slot": 9, "haveWh": 10, "wantWh": 20}
    assert "haveWh=10" in str(err) and "metered export" in str(err)
    unknown = client.decode_error(ContractCustomError("reverted", data="0xdeadbeef"))
    assert isinstance(unknown, errors.TransactionFailed)


def test_typed_errors_survive_pickling() -> None:
    err = errors.StaleReading({"index": 0, "slot": 5, "lastSlot": 6})
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is errors.StaleReading and again.values == err.values


def test_client_refuses_out_of_range_arguments_before_sending() -> None:
    import pytest

    from ledger.errors import InvalidArgument
    from ledger.types import Fill

    for bad in (
        {"energy_Wh": -1},
        {"energy_Wh": 2**64},
        {"price_ueur_per_kWh": 1.5},
        {"offer_id": True},
        {"bid_id": "3"},
    ):
        values: dict[str, object] = {
            "offer_id": 1,
            "bid_id": 1,
            "energy_Wh": 1,
            "price_ueur_per_kWh": 1,
            **bad,
        }
        with pytest.raises(InvalidArgument):
            Fill(**values)  # type: ignore[arg-type]


def test_clock_and_seal_errors_have_their_categories() -> None:
    # A reading or a seal ahead of the chain's clock, or a zero head, is bad input (400/422);
    # a second, different seal of a slot conflicts with the recorded one (409).
    for cls in (errors.FutureReading, errors.FutureSlot, errors.ZeroDigest):
        assert issubclass(cls, errors.InputRejected) and issubclass(cls, ValueError)
    assert issubclass(errors.SlotAlreadySealed, errors.Conflict)
    err = errors.FutureReading({"index": 0, "slot": 2**32 - 1, "maxSlot": 1_996_000})
    assert "maxSlot=1996000" in str(err) and "chain's clock" in str(err)


def test_a_direct_takes_error_says_so_instead_of_showing_the_placeholder_index() -> None:
    err = errors.InsufficientCredits(
        {"fill": errors.TAKE, "seller": 3, "slot": 7, "haveWh": 10, "wantWh": 20}
    )
    assert "direct take" in str(err) and str(errors.TAKE) not in str(err)
    assert err.values["fill"] == errors.TAKE
    batch = errors.InsufficientCredits(
        {"fill": 2, "seller": 3, "slot": 7, "haveWh": 1, "wantWh": 2}
    )
    assert "fill=2" in str(batch)


def test_a_call_from_an_account_without_gas_money_is_a_typed_error() -> None:
    from eth_account import Account

    from ledger import open_chain, open_ledger

    with open_chain("memory") as chain:
        client, _ = open_ledger(chain)
        poor = Account.create()
        for check_first in (True, False):
            try:
                client.transact(
                    poor, "postOffer", 60_000, 0, 1_990_000, 2**32 - 1, check_first=check_first
                )
            except errors.NoGasMoney as exc:
                assert poor.address in str(exc) and "gas" in str(exc)
                assert "\\x" not in str(exc)
            else:
                raise AssertionError("a sender without ether cannot send")
