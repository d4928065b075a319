"""The fast VM: a subclass of a py-evm fork's VM that carries the speedups py-evm lets a
subclass carry, and the chain class that runs it.

py-evm configures a fork through class attributes: a VM names its state class
(``_state_class``), a state names its computation class (``computation_class``) and its account
database (``account_db_class``), a computation names its opcode table (``opcodes``) and its
precompiles (``_precompiles``). ``configure`` makes a subclass with some of them replaced, so
:func:`fast_vm` gives a VM whose state runs the computation of
:func:`~ledger.chain.pyevm_speedups.evm_fast.fast_computation` and the account database
:class:`~ledger.chain.pyevm_speedups.trie_batch.BatchedAccountDB`, while the fork's own classes
(``PragueVM``, its state, computation and table) stay as py-evm ships them for every other
user in the process. :func:`fast_chain_class` gives a chain class whose schedule runs those
VMs.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from eth.db.account import AccountDB

from ledger.chain.pyevm_speedups.evm_fast import fast_computation
from ledger.chain.pyevm_speedups.trie_batch import BatchedAccountDB

VMT = TypeVar("VMT", bound=type)
ChainT = TypeVar("ChainT", bound=type)

#: Each VM class's fast subclass, made once: its opcode table is built once per process.
_fast_vms: dict[type, type] = {}


def fast_vm(vm_class: VMT) -> VMT:
    """``vm_class``'s subclass whose state runs the shorter opcode paths, the leaner ecrecover
    and, where the fork keeps py-evm's ``AccountDB``, storage writes applied per block."""
    made = _fast_vms.get(vm_class)
    if made is None:
        vm: Any = vm_class
        state = vm.get_state_class()
        overrides: dict[str, Any] = {"computation_class": fast_computation(state.computation_class)}
        # A fork with its own account database keeps it (the batched one subclasses py-evm's).
        if state.get_account_db_class() is AccountDB:
            overrides["account_db_class"] = BatchedAccountDB
        fast_state = state.configure(
            __name__=f"Fast{state.__name__}", __module__=__name__, **overrides
        )
        made = vm.configure(
            __name__=f"Fast{vm.__name__}", __module__=__name__, _state_class=fast_state
        )
        _fast_vms[vm_class] = made
    return cast(VMT, made)


def fast_chain_class(chain_class: ChainT) -> ChainT:
    """``chain_class`` (a py-evm chain class, such as eth-tester's) with each VM of its
    ``vm_configuration`` replaced by :func:`fast_vm` of it; everything else is inherited."""
    chain: Any = chain_class
    schedule = tuple((block, fast_vm(vm)) for block, vm in chain.vm_configuration)
    return cast(ChainT, chain.configure(__name__=chain.__name__, vm_configuration=schedule))
