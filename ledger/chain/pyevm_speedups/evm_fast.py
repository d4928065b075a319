"""Shorter paths through py-evm's most frequent opcodes, for the embedded chain.

py-evm interprets every opcode through four or five Python calls: the opcode object, its gas
charge (two calls and a debug check), the stack's typed pops (a generator and a conversion per
item) and a validated push. Over a 100-household ``voisin simulate`` day, a committed reading
runs 334 opcodes and a settled fill 529 (``Voisin._commitReadingsFast`` and
``_settleFillsFast``), and 95 % of them are pushes, dups, swaps, arithmetic, comparisons,
jumps and word-sized memory reads and writes.

:func:`fast_table` gives an opcode table whose entries for those opcodes are one plain
function each, which does the same work in one call: it charges the same gas (read from the
entry it replaces), pops and pushes the stack's list directly and converts an item only when
it is stored as bytes. Each one handles only the common case. Whenever anything else holds, it
changes nothing and calls the entry it replaces, which then charges, checks and raises exactly
as before:

* less gas left than the opcode costs (``OutOfGas``);
* fewer stack items than the opcode takes, or a full stack for one that pushes;
* a memory access that would grow the memory (the gas of growth), or a jump to anything but a
  valid ``JUMPDEST``.

:func:`fast_precompiles` swaps the ecrecover precompile (:func:`ecrecover`), which the contract
calls for every committed reading, for one that recovers through coincurve directly.
:func:`fast_computation` puts both on a subclass of a fork's computation class; the fork's own
class and its table are left as py-evm ships them (:mod:`ledger.chain.pyevm_speedups.vm`
builds the VM that carries the subclass).

Results, gas, stack contents (as integers where py-evm pushes integers, as bytes where it
pushes bytes), memory and errors are unchanged. ``tests/ledger/chain/test_evm_fast.py`` runs random
programs through both tables and compares all of them, error classes included, and the
precompile against py-evm's on valid, altered and malformed signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast

from eth.constants import GAS_ECRECOVER, SECPK1_N
from eth.vm.opcode import _FastOpcode
from eth.vm.opcode_values import (
    ADD,
    AND,
    DIV,
    DUP1,
    DUP16,
    EQ,
    GT,
    ISZERO,
    JUMP,
    JUMPDEST,
    JUMPI,
    LT,
    MLOAD,
    MSTORE,
    MUL,
    OR,
    POP,
    PUSH0,
    PUSH1,
    PUSH32,
    SHL,
    SHR,
    SUB,
    SWAP1,
    SWAP16,
)

from ledger.readings.eip712 import recover_address

_MASK: Final = (1 << 256) - 1
#: py-evm's stack limit: a push onto 1,024 items raises FullStack.
_STACK_LIMIT: Final = 1024

Opcode = Callable[..., None]
#: A precompile: given the computation, it charges gas and sets the output.
Precompile = Callable[[Any], Any]


def _int(item: int | bytes) -> int:
    return item if item.__class__ is int else int.from_bytes(item, "big")  # type: ignore[arg-type]


def _binary(op: int, cost: int, slow: Opcode) -> Opcode:
    """ADD, SUB, MUL, DIV, AND, OR, EQ, LT, GT, SHL and SHR: two items popped, one pushed."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or len(values) < 2:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        a = values.pop()
        b = values[-1]
        if a.__class__ is not int:
            a = int.from_bytes(a, "big")
        if b.__class__ is not int:
            b = int.from_bytes(b, "big")
        # The most frequent first (a commit's and a settlement's counts).
        if op == ADD:
            values[-1] = (a + b) & _MASK
        elif op == SHR:
            values[-1] = b >> a if a < 256 else 0
        elif op == AND:
            values[-1] = a & b
        elif op == OR:
            values[-1] = a | b
        elif op == SHL:
            values[-1] = (b << a) & _MASK if a < 256 else 0
        elif op == SUB:
            values[-1] = (a - b) & _MASK
        elif op == EQ:
            values[-1] = 1 if a == b else 0
        elif op == GT:
            values[-1] = 1 if a > b else 0
        elif op == LT:
            values[-1] = 1 if a < b else 0
        elif op == MUL:
            values[-1] = (a * b) & _MASK
        else:  # DIV
            values[-1] = a // b if b else 0

    return run


def _iszero(cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or not values:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        values[-1] = 0 if _int(values[-1]) else 1

    return run


def _pop(cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or not values:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        values.pop()

    return run


def _push(size: int, cost: int, slow: Opcode) -> Opcode:
    """PUSH0 to PUSH32: the code's next ``size`` bytes, zero-padded on the right at the
    code's end, pushed as bytes (as py-evm does)."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or len(values) >= _STACK_LIMIT:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        code = computation.code
        start = code.program_counter
        end = start + size
        code.program_counter = end
        raw = code._raw_code_bytes[start:end]
        values.append(raw if len(raw) == size else raw.ljust(size, b"\x00"))

    return run


def _dup(position: int, cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or not position <= len(values) < _STACK_LIMIT:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        values.append(values[-position])

    return run


def _swap(position: int, cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or len(values) <= position:
            return slow(computation=computation)
        meter.gas_remaining -= cost
        deep = -1 - position
        values[-1], values[deep] = values[deep], values[-1]

    return run


def _jumpdest(cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if meter.gas_remaining < cost:
            return slow(computation=computation)
        meter.gas_remaining -= cost

    return run


def _valid_jump(code: Any, target: int) -> bool:
    return bool(
        target < code._length_cache
        and code._raw_code_bytes[target] == JUMPDEST
        and code.is_valid_opcode(target)
    )


def _jump(cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or not values:
            return slow(computation=computation)
        target = _int(values[-1])
        code = computation.code
        if not _valid_jump(code, target):
            return slow(computation=computation)
        meter.gas_remaining -= cost
        values.pop()
        code.program_counter = target

    return run


def _jumpi(cost: int, slow: Opcode) -> Opcode:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or len(values) < 2:
            return slow(computation=computation)
        if not _int(values[-2]):
            meter.gas_remaining -= cost
            del values[-2:]
            return None
        target = _int(values[-1])
        code = computation.code
        if not _valid_jump(code, target):
            return slow(computation=computation)
        meter.gas_remaining -= cost
        del values[-2:]
        code.program_counter = target
        return None

    return run


def _mload(cost: int, slow: Opcode) -> Opcode:
    """A 32-byte read inside the memory already paid for, pushed as bytes."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or not values:
            return slow(computation=computation)
        start = _int(values[-1])
        memory = computation._memory._bytes
        if start + 32 > len(memory):
            return slow(computation=computation)
        meter.gas_remaining -= cost
        values[-1] = bytes(memory[start : start + 32])
        return None

    return run


def _mstore(cost: int, slow: Opcode) -> Opcode:
    """A 32-byte write inside the memory already paid for."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        values = computation._stack.values
        if meter.gas_remaining < cost or len(values) < 2:
            return slow(computation=computation)
        start = _int(values[-1])
        memory = computation._memory._bytes
        if start + 32 > len(memory):
            return slow(computation=computation)
        meter.gas_remaining -= cost
        value = values[-2]
        del values[-2:]
        if value.__class__ is int:
            memory[start : start + 32] = value.to_bytes(32, "big")
        else:
            memory[start : start + 32] = value.rjust(32, b"\x00")
        return None

    return run


def _fast_entry(op: int, cost: int, slow: Opcode) -> Opcode | None:
    """The shorter path for opcode ``op`` (gas ``cost``), or None to keep py-evm's entry."""
    if op in (ADD, SUB, MUL, DIV, AND, OR, EQ, LT, GT, SHL, SHR):
        return _binary(op, cost, slow)
    if op == ISZERO:
        return _iszero(cost, slow)
    if op == POP:
        return _pop(cost, slow)
    if op == PUSH0 or PUSH1 <= op <= PUSH32:
        return _push(op - PUSH0 if op == PUSH0 else op - PUSH1 + 1, cost, slow)
    if DUP1 <= op <= DUP16:
        return _dup(op - DUP1 + 1, cost, slow)
    if SWAP1 <= op <= SWAP16:
        return _swap(op - SWAP1 + 1, cost, slow)
    if op == JUMPDEST:
        return _jumpdest(cost, slow)
    if op == JUMP:
        return _jump(cost, slow)
    if op == JUMPI:
        return _jumpi(cost, slow)
    if op == MLOAD:
        return _mload(cost, slow)
    if op == MSTORE:
        return _mstore(cost, slow)
    return None


#: The ecrecover precompile's address.
ECRECOVER: Final = b"\x00" * 19 + b"\x01"


def ecrecover(computation: Any) -> Any:
    """The ecrecover precompile, recovering through :func:`ledger.readings.eip712.recover_address`.

    py-evm's precompile builds eth-keys objects and looks up eth-keys' backend (an environment
    read) for each call; the contract calls it once per committed reading. The same input
    rules: the input right-padded to 128 bytes (hash, v, r, s as 32-byte words); v 27 or 28,
    r and s below the curve order, and a recoverable signature, or else an empty output. The
    gas is charged first, as py-evm does.
    """
    computation.consume_gas(GAS_ECRECOVER, reason="ECRecover Precompile")
    data = bytes(computation.msg.data_as_bytes[:128]).ljust(128, b"\x00")
    v = int.from_bytes(data[32:64], "big")
    r = int.from_bytes(data[64:96], "big")
    s = int.from_bytes(data[96:128], "big")
    if r >= SECPK1_N or s >= SECPK1_N or v not in (27, 28):
        return computation
    try:
        address = recover_address(data[:32], v, data[64:96], data[96:128])
    except Exception:  # eth-keys turns any failure of the recovery into "no address"
        return computation
    computation.output = bytes(12) + address
    return computation


def fast_table(opcodes: dict[int, Opcode]) -> dict[int, Opcode]:
    """``opcodes`` with the entries this module knows replaced by their shorter paths.

    Only plain py-evm opcodes (``_FastOpcode``: a fixed gas charge, then the logic) are
    replaced, so a fork that prices or defines one of them differently keeps its own entry.
    """
    table = dict(opcodes)
    for op, entry in opcodes.items():
        if type(entry) is not _FastOpcode:
            continue
        fast = _fast_entry(op, entry.gas_cost, entry)
        if fast is not None:
            fast.mnemonic = entry.mnemonic  # type: ignore[attr-defined]  # py-evm's debug log
            fast.__wrapped__ = entry  # type: ignore[attr-defined]
            table[op] = fast
    return table


def fast_precompiles(precompiles: Mapping[bytes, Precompile]) -> dict[bytes, Precompile]:
    """``precompiles`` (address -> precompile) with :func:`ecrecover` at ecrecover's address,
    if the fork has one there."""
    table = dict(precompiles)
    if ECRECOVER in table:
        table[ECRECOVER] = ecrecover
    return table


ComputationT = TypeVar("ComputationT", bound=type)


def fast_computation(computation_class: ComputationT) -> ComputationT:
    """A subclass of ``computation_class`` (a py-evm fork's computation) with the shorter paths
    (:func:`fast_table`) and the leaner ecrecover (:func:`fast_precompiles`).

    ``computation_class`` keeps its own table: py-evm's ``configure`` makes a subclass whose
    class attributes ``opcodes`` and ``_precompiles`` shadow the fork's.
    """
    configured: ComputationT = cast(Any, computation_class).configure(
        __name__=f"Fast{computation_class.__name__}",
        __module__=__name__,
        opcodes=fast_table(cast(Any, computation_class).opcodes),
        _precompiles=fast_precompiles(cast(Any, computation_class).get_precompiles()),
    )
    return configured
