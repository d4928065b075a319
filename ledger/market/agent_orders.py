"""Post the default standing orders of households whose agents trade for them.

The pure part (which orders, at which limits) is :func:`ledger.market.agents.default_orders`; this
module reads which households already have open orders from the mirror and posts the missing
ones on chain with each household's own key (only the owner can post its orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.contract.client import VoisinClient
from ledger.market.agents import AgentSettings, default_orders
from ledger.mirror.indexer import index
from ledger.mirror.models import OrderRecord
from ledger.types import OrderRequest

__all__ = ["AgentHousehold", "post_default_orders"]


@dataclass(frozen=True, slots=True)
class AgentHousehold:
    """A household whose agent may post for it: its key, whether it has PV, its settings."""

    account: LocalAccount
    prosumer: bool
    settings: AgentSettings


def post_default_orders(
    client: VoisinClient,
    engine: Engine,
    households: Mapping[int, AgentHousehold],
    first_slot: int,
    *,
    start_block: int = 0,
    check_first: bool = True,
) -> dict[tuple[int, str], int]:
    """Post a standing offer/bid for each household lacking an open one from ``first_slot``.

    Returns ``{(household, side): order id}`` for the orders posted. Running it again posts
    nothing new, since the mirror then shows the orders open. ``check_first=False`` sends
    them all before waiting for any (:meth:`ledger.contract.client.VoisinClient.post_orders`) with
    no
    dry run each; otherwise each is dry-run, sent and waited for in turn.
    """
    index(client, engine, start_block=start_block)
    with Session(engine) as session:
        open_orders = session.exec(select(OrderRecord).where(OrderRecord.open)).all()
    has_offer = {o.household for o in open_orders if o.side == "offer"}
    has_bid = {o.household for o in open_orders if o.side == "bid"}
    wanted = default_orders(
        {h: (a.prosumer, a.settings) for h, a in households.items()},
        has_offer,
        has_bid,
        client.tariffs(),
    )
    if not check_first:
        # Sent together (on the embedded chain, in shared blocks), then waited for.
        requests = [
            OrderRequest(
                households[o.household_id].account,
                o.side,
                o.price_limit_ueur_per_kWh,
                first_slot,
            )
            for o in wanted
        ]
        ids = client.post_orders(requests)
        return {(o.household_id, o.side): i for o, i in zip(wanted, ids, strict=True)}
    posted: dict[tuple[int, str], int] = {}
    for order in wanted:
        account = households[order.household_id].account
        post = client.post_offer if order.side == "offer" else client.post_bid
        posted[(order.household_id, order.side)] = post(
            account, order.price_limit_ueur_per_kWh, first_slot, check_first=check_first
        )
    return posted
