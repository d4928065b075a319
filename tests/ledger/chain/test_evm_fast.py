"""The embedded chain's shorter opcode paths (ledger.chain.pyevm_speedups.evm_fast) change nothing
a program sees.

Random programs run through py-evm's own Prague computation and through the fast VM's
(``ledger.chain.pyevm_speedups.vm.fast_vm``), built here whether or not the speedups are
installed or switched off in this process; every outcome is compared: error class and
message, gas left, the stack item by item (int or bytes, as py-evm keeps them), memory, output
and the program counter. The programs mix the replaced opcodes with others, jump to valid and
invalid destinations, grow memory, run short of gas and fill the stack, so that each fallback
to py-evm's entry is taken too.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PRAGUE_OPCODES, PRAGUE_PRECOMPILES
from eth.vm.message import Message
from eth.vm.opcode_values import (
    ADD,
    AND,
    CALLDATALOAD,
    DIV,
    DUP1,
    EQ,
    GAS,
    GT,
    ISZERO,
    JUMP,
    JUMPDEST,
    JUMPI,
    LT,
    MLOAD,
    MSIZE,
    MSTORE,
    MSTORE8,
    MUL,
    OR,
    PC,
    POP,
    PUSH0,
    PUSH1,
    PUSH2,
    PUSH32,
    RETURN,
    SHA3,
    SHL,
    SHR,
    SUB,
    SWAP1,
)
from eth_tester import PyEVMBackend

from ledger.chain.pyevm_speedups import evm_fast as _evm_fast
from ledger.chain.pyevm_speedups.vm import fast_vm

SENDER = b"\x01" * 20
CONTRACT = b"\x02" * 20

BINARY = [ADD, SUB, MUL, DIV, AND, OR, EQ, LT, GT, SHL, SHR]
OTHERS = [MSTORE8, CALLDATALOAD, GAS, PC, MSIZE, SHA3]

#: py-evm's Prague computation, as it ships, and the fast VM's.
PLAIN = PragueVM.get_state_class().computation_class
FAST = fast_vm(PragueVM).get_state_class().computation_class


@pytest.fixture(scope="module")
def state() -> Any:
    return PyEVMBackend().chain.get_vm().state


def _outcome(computation_class: type, state: Any, code: bytes, gas: int, data: bytes) -> Any:
    context = state.get_transaction_context_class()(gas_price=1, origin=SENDER)
    message = Message(gas=gas, to=CONTRACT, sender=SENDER, value=0, data=data, code=code)
    c = computation_class.apply_computation(state, message, context)
    return (
        c.is_error,
        type(c.error).__name__ if c.is_error else None,
        str(c.error) if c.is_error else None,
        c.get_gas_remaining(),
        [(type(v).__name__, v) for v in c._stack.values],
        bytes(c._memory._bytes),
        bytes(c.output),
        c.code.program_counter,
    )


def _push(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return bytes([PUSH0])
    if kind < 0.6:
        # Small values: shift amounts, memory offsets, jump targets, booleans.
        return bytes([PUSH1, rng.choice([0, 1, 2, 31, 32, 64, 96, 200, 255, rng.randrange(256)])])
    if kind < 0.8:
        return bytes([PUSH2]) + rng.randrange(1 << 16).to_bytes(2, "big")
    size = rng.randrange(1, 33)
    return bytes([PUSH1 + size - 1]) + rng.randbytes(size)


def _program(rng: random.Random) -> bytes:
    """A random program; ``PUSH2 <label>`` before jumps is resolved to a JUMPDEST's offset."""
    # Some stack items to start from.
    parts: list[bytes | tuple[bytes, int]] = [_push(rng) for _ in range(rng.randrange(0, 24))]
    for _ in range(rng.randrange(1, 60)):
        kind = rng.random()
        if kind < 0.35:
            parts.append(_push(rng))
        elif kind < 0.5:
            parts.append(bytes([rng.choice(BINARY)]))
        elif kind < 0.6:
            parts.append(bytes([DUP1 + rng.randrange(16)]))
        elif kind < 0.7:
            parts.append(bytes([SWAP1 + rng.randrange(16)]))
        elif kind < 0.78:
            parts.append(bytes([rng.choice([MLOAD, MSTORE, ISZERO, POP])]))
        elif kind < 0.83:
            parts.append(bytes([JUMPDEST]))
        elif kind < 0.9:
            # A condition below the target, true or false (otherwise whatever is there).
            condition = bytes([PUSH1, rng.choice([0, 1, 2])]) if rng.random() < 0.7 else b""
            parts.append((condition, rng.choice([JUMP, JUMPI])))
        elif kind < 0.94:
            parts.append(bytes([rng.choice([JUMP, JUMPI])]))
        else:
            parts.append(bytes([rng.choice(OTHERS)]))
    if rng.random() < 0.3:
        parts.append(bytes([PUSH1, 32, PUSH1, 0, RETURN]))
    if rng.random() < 0.2:
        # A PUSH cut short by the end of the code (zero-padded).
        size = rng.randrange(2, 33)
        parts.append(bytes([PUSH1 + size - 1]) + rng.randbytes(rng.randrange(size)))
    # Lay the code out, then point each labelled jump at a JUMPDEST (or anywhere, at times).
    offsets, offset = [], 0
    for part in parts:
        offsets.append(offset)
        offset += len(part[0]) + 4 if isinstance(part, tuple) else len(part)
    dests = [o for o, p in zip(offsets, parts, strict=True) if p == bytes([JUMPDEST])]
    code = b""
    for part in parts:
        if isinstance(part, tuple):
            condition, jump = part
            target = rng.choice(dests) if dests and rng.random() < 0.9 else rng.randrange(offset)
            code += condition + bytes([PUSH2]) + target.to_bytes(2, "big") + bytes([jump])
        else:
            code += part
    return code


def test_random_programs_behave_the_same(state: Any) -> None:
    rng = random.Random(20261127)
    taken = {"error": 0, "ok": 0, "OutOfGas": 0, "InsufficientStack": 0, "jump": 0}
    for _ in range(3000):
        code = _program(rng)
        gas = rng.choice([10, 30, 100, 1_000, 30_000, 200_000, rng.randrange(1, 50_000)])
        data = rng.randbytes(rng.randrange(0, 80))
        plain = _outcome(PLAIN, state, code, gas, data)
        fast = _outcome(FAST, state, code, gas, data)
        assert fast == plain, (code).hex()
        taken["error" if plain[0] else "ok"] += 1
        if plain[1] in taken:
            taken[plain[1]] += 1
        if plain[1] in ("InvalidJumpDestination", "InvalidInstruction"):
            taken["jump"] += 1
    # The programs reach every kind of outcome, so the fallbacks ran as well.
    assert all(n >= 20 for n in taken.values()), taken


@pytest.mark.parametrize(
    "body",
    [
        bytes([PUSH1, 7]),
        bytes([PUSH0]),
        bytes([DUP1]),
        bytes([DUP1 + 1]),
        bytes([PUSH1, 1, DUP1 + 1]),
        bytes([PUSH32]) + bytes(range(32)),
    ],
)
def test_a_full_stack_fails_the_same(state: Any, body: bytes) -> None:
    # JUMPDEST <body> PUSH1 1 JUMP, after two items: the stack grows until a push fails.
    code = bytes([PUSH1, 1, PUSH1, 2, JUMPDEST]) + body + bytes([PUSH1, 4, JUMP])
    plain = _outcome(PLAIN, state, code, 5_000_000, b"")
    assert plain[1] == "FullStack"
    assert _outcome(FAST, state, code, 5_000_000, b"") == plain


def test_memory_grows_and_is_charged_the_same(state: Any) -> None:
    # MSTORE and MLOAD past the end of memory take py-evm's path, which grows and charges it;
    # inside it, the shorter path reads and writes the same bytes.
    grow = [PUSH1, 0xAB, PUSH2, 0x01, 0x00, MSTORE, PUSH1, 0x20, MLOAD, PUSH2, 0x01, 0x10, MLOAD]
    inside = [PUSH32, *range(1, 33), PUSH1, 0x40, MSTORE, PUSH1, 0x40, MLOAD, MSIZE]
    code = bytes(grow) + bytes(inside)
    for gas in (50, 100, 200, 10_000):
        assert _outcome(FAST, state, code, gas, b"") == _outcome(PLAIN, state, code, gas, b"")


def test_only_plain_entries_are_replaced() -> None:
    plain = PLAIN.opcodes
    table = FAST.opcodes
    replaced = {op for op in table if table[op] is not plain[op]}
    assert {ADD, SHR, MSTORE, MLOAD, JUMPI, PUSH1, PUSH32, PUSH0, DUP1, SWAP1} <= replaced
    # Gas that depends on more than the opcode (SHA3, calls, storage) stays py-evm's.
    assert replaced.isdisjoint({SHA3, MSTORE8, CALLDATALOAD, GAS})
    for op in replaced:
        assert table[op].mnemonic == plain[op].mnemonic  # type: ignore[attr-defined]
        assert table[op].__wrapped__ is plain[op]  # type: ignore[attr-defined]
    assert set(table) == set(plain)


def test_the_fast_table_lives_on_a_subclass_and_pragues_own_is_untouched() -> None:
    assert issubclass(FAST, PLAIN) and FAST is not PLAIN
    assert PLAIN.opcodes is PRAGUE_OPCODES
    assert PLAIN.get_precompiles() is PRAGUE_PRECOMPILES
    assert all(
        getattr(entry, "__module__", None) != _evm_fast.__name__
        for entry in PRAGUE_OPCODES.values()
    )
    # One fast VM per fork for the whole process: its table is built once.
    assert fast_vm(PragueVM) is fast_vm(PragueVM)


def _ecrecover_inputs(rng: random.Random) -> list[bytes]:
    from eth.constants import SECPK1_N
    from eth_keys import keys

    inputs = []
    for _ in range(150):
        key = keys.PrivateKey(rng.randbytes(31).rjust(32, b"\x01"))
        digest = rng.randbytes(32)
        sig = key.sign_msg_hash(digest)
        v, r, s = sig.v + 27, sig.r, sig.s
        choice = rng.randrange(10)
        if choice == 1:
            v = rng.choice([0, 1, 26, 29, (1 << 255) + 27, (1 << 8) + 27])
        elif choice == 2:
            r = rng.choice([0, SECPK1_N - 1, SECPK1_N, SECPK1_N + 1, (1 << 256) - 1])
        elif choice == 3:
            s = rng.choice([0, SECPK1_N - s, SECPK1_N, (1 << 256) - 1])
        elif choice == 4:
            v = 55 - v  # the other parity: another key, or none
        words = digest + v.to_bytes(32, "big") + r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if choice == 5:
            words = words[: rng.randrange(129)]  # short input, zero-padded
        elif choice == 6:
            words += rng.randbytes(rng.randrange(1, 40))  # extra bytes are ignored
        inputs.append(words)
    return inputs


def test_ecrecover_answers_as_py_evm_does(state: Any) -> None:
    original = PRAGUE_PRECOMPILES[_evm_fast.ECRECOVER]
    context = state.get_transaction_context_class()(gas_price=1, origin=SENDER)
    answered = empty = 0
    for data in _ecrecover_inputs(random.Random(7)):
        results = []
        for precompile in (original, _evm_fast.ecrecover):
            message = Message(
                gas=5_000, to=_evm_fast.ECRECOVER, sender=SENDER, value=0, data=data, code=b""
            )
            c = PLAIN(state, message, context)
            precompile(c)
            results.append((bytes(c.output), c.get_gas_remaining()))
        assert results[1] == results[0], data.hex()
        answered += bool(results[0][0])
        empty += not results[0][0]
    assert answered >= 50 and empty >= 30, (answered, empty)
    assert FAST.get_precompiles()[_evm_fast.ECRECOVER] is _evm_fast.ecrecover
    assert PLAIN.get_precompiles()[_evm_fast.ECRECOVER] is original
