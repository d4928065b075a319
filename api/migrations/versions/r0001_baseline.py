"""The baseline: the schema as Voisin created it before it had migrations.

A frozen copy, not the live models: later revisions change it. Upgrading a database created
by that release (no ``alembic_version`` table, every table there) adds nothing here: each
table that exists is checked to have the baseline's columns and kept as it is, and only the
missing ones are created, so an empty database gets the whole baseline.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = sa.MetaData()

sa.Table(
    "api_household",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(), nullable=True),
    sa.Column("account", sa.String(), nullable=False),
    sa.Column("meter", sa.String(), nullable=False),
    sa.Column("prosumer", sa.Boolean(), nullable=False),
    sa.Column("token_hash", sa.String(), nullable=False),
    sa.Column("key_json", sa.String(), nullable=False),
    sa.Column("meter_last_slot", sa.BigInteger(), nullable=False),
    sa.Column("meter_import_Wh", sa.BigInteger(), nullable=False),
    sa.Column("meter_export_Wh", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("meter"),
    sa.UniqueConstraint("token_hash"),
)
sa.Table(
    "api_intent",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("scope", sa.String(), nullable=False),
    sa.Column("idempotency_key", sa.String(), nullable=True),
    sa.Column("fingerprint", sa.String(), nullable=False),
    sa.Column("household", sa.Integer(), nullable=True),
    sa.Column("subject", sa.String(), nullable=True),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("sender", sa.String(), nullable=True),
    sa.Column("nonce", sa.BigInteger(), nullable=True),
    sa.Column("block_before", sa.BigInteger(), nullable=True),
    sa.Column("calldata", sa.Text(), nullable=True),
    sa.Column("tx_hash", sa.String(), nullable=True),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("response", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_s", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("scope", "idempotency_key"),
)
sa.Table(
    "api_order",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("side", sa.String(), nullable=False),
    sa.Column("household", sa.Integer(), nullable=False),
    sa.Column("price_limit_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("max_Wh_per_slot", sa.BigInteger(), nullable=False),
    sa.Column("first_slot", sa.BigInteger(), nullable=False),
    sa.Column("last_slot", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("chain_id", sa.Integer(), nullable=True),
    sa.Column("reason", sa.String(), nullable=True),
    sa.Column("source", sa.String(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "api_order_post",
    BASELINE,
    sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
    sa.Column("sender", sa.String(), nullable=False),
    sa.Column("nonce", sa.BigInteger(), nullable=False),
    sa.Column("block_before", sa.BigInteger(), nullable=False),
    sa.Column("calldata", sa.Text(), nullable=False),
    sa.Column("recorded_s", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("order_id"),
)
sa.Table(
    "balance",
    BASELINE,
    sa.Column("account", sa.String(), nullable=False),
    sa.Column("balance_ueur", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("account"),
)
sa.Table(
    "chain_event",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("contract", sa.String(), nullable=False),
    sa.Column("block_number", sa.BigInteger(), nullable=False),
    sa.Column("log_index", sa.Integer(), nullable=False),
    sa.Column("tx_hash", sa.String(), nullable=False),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("args_json", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("contract", "block_number", "log_index"),
)
sa.Table(
    "dashboard_form",
    BASELINE,
    sa.Column("token_hash", sa.String(), nullable=False),
    sa.Column("scope", sa.String(), nullable=False),
    sa.Column("form", sa.String(), nullable=False),
    sa.Column("state", sa.String(), nullable=False),
    sa.Column("outcome", sa.String(), nullable=True),
    sa.Column("used_s", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("token_hash"),
)
sa.Table(
    "fill",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("seller", sa.Integer(), nullable=False),
    sa.Column("buyer", sa.Integer(), nullable=False),
    sa.Column("offer_id", sa.Integer(), nullable=False),
    sa.Column("bid_id", sa.Integer(), nullable=False),
    sa.Column("energy_Wh", sa.BigInteger(), nullable=False),
    sa.Column("price_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("cost_ueur", sa.BigInteger(), nullable=False),
    sa.Column("fee_ueur", sa.BigInteger(), nullable=False),
    sa.Column("block_number", sa.BigInteger(), nullable=False),
    sa.Column("log_index", sa.Integer(), nullable=False),
    sa.Column("tx_hash", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("block_number", "log_index"),
)
sa.Table(
    "household",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("account", sa.String(), nullable=False),
    sa.Column("meter", sa.String(), nullable=False),
    sa.Column("prosumer", sa.Boolean(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "indexer_cursor",
    BASELINE,
    sa.Column("contract", sa.String(), nullable=False),
    sa.Column("chain_id", sa.BigInteger(), nullable=False),
    sa.Column("last_block", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("contract"),
)
sa.Table(
    "indexer_state",
    BASELINE,
    sa.Column("key", sa.String(), nullable=False),
    sa.Column("value", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("key"),
)
sa.Table(
    "intake_reading",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("household", sa.Integer(), nullable=False),
    sa.Column("meter", sa.String(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("import_Wh", sa.BigInteger(), nullable=False),
    sa.Column("export_Wh", sa.BigInteger(), nullable=False),
    sa.Column("v", sa.Integer(), nullable=False),
    sa.Column("r", sa.String(), nullable=False),
    sa.Column("s", sa.String(), nullable=False),
    sa.Column("flags", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("reason", sa.String(), nullable=True),
    sa.Column("tx_hash", sa.String(), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("meter", "slot"),
)
sa.Table(
    "kept_audit",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("started_s", sa.BigInteger(), nullable=False),
    sa.Column("finished_s", sa.BigInteger(), nullable=False),
    sa.Column("head_block", sa.BigInteger(), nullable=True),
    sa.Column("mirror_block", sa.BigInteger(), nullable=True),
    sa.Column("last_slot", sa.BigInteger(), nullable=True),
    sa.Column("ok", sa.Boolean(), nullable=True),
    sa.Column("findings", sa.Integer(), nullable=False),
    sa.Column("problem", sa.String(), nullable=True),
    sa.Column("summary_json", sa.Text(), nullable=False),
    sa.Column("findings_json", sa.Text(), nullable=False),
    sa.Column("report_json", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
)
sa.Table(
    "kept_feeder_slot",
    BASELINE,
    sa.Column("slot", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("network", sa.String(), nullable=False),
    sa.Column("households", sa.Integer(), nullable=False),
    sa.Column("readings", sa.Integer(), nullable=False),
    sa.Column("vm_min_pu", sa.Float(), nullable=True),
    sa.Column("vm_max_pu", sa.Float(), nullable=True),
    sa.Column("max_line_loading_percent", sa.Float(), nullable=True),
    sa.Column("trafo_loading_percent", sa.Float(), nullable=True),
    sa.Column("findings", sa.Integer(), nullable=False),
    sa.Column("findings_json", sa.Text(), nullable=False),
    sa.Column("computed_s", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("slot"),
)
sa.Table(
    "kept_state",
    BASELINE,
    sa.Column("key", sa.String(), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("key"),
)
sa.Table(
    "neighbourhood_slot",
    BASELINE,
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("pv_Wh", sa.BigInteger(), nullable=False),
    sa.Column("load_Wh", sa.BigInteger(), nullable=False),
    sa.Column("charge_Wh", sa.BigInteger(), nullable=False),
    sa.Column("discharge_Wh", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("slot"),
)
sa.Table(
    "order",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("side", sa.String(), nullable=False),
    sa.Column("order_id", sa.Integer(), nullable=False),
    sa.Column("household", sa.Integer(), nullable=False),
    sa.Column("price_limit_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("max_Wh_per_slot", sa.BigInteger(), nullable=False),
    sa.Column("first_slot", sa.BigInteger(), nullable=False),
    sa.Column("last_slot", sa.BigInteger(), nullable=False),
    sa.Column("open", sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("side", "order_id"),
)
sa.Table(
    "reading",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("household", sa.Integer(), nullable=False),
    sa.Column("meter", sa.String(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("import_Wh", sa.BigInteger(), nullable=False),
    sa.Column("export_Wh", sa.BigInteger(), nullable=False),
    sa.Column("import_delta_Wh", sa.BigInteger(), nullable=False),
    sa.Column("export_delta_Wh", sa.BigInteger(), nullable=False),
    sa.Column("block_number", sa.BigInteger(), nullable=False),
    sa.Column("tx_hash", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("meter", "slot"),
)
sa.Table(
    "settlement_batch",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("batch", sa.Integer(), nullable=False),
    sa.Column("fills_json", sa.String(), nullable=False),
    sa.Column("tx_hash", sa.String(), nullable=True),
    sa.Column("gas_used", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("slot", "batch"),
)
sa.Table(
    "signed_reading",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("meter", sa.String(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("import_Wh", sa.BigInteger(), nullable=False),
    sa.Column("export_Wh", sa.BigInteger(), nullable=False),
    sa.Column("v", sa.Integer(), nullable=False),
    sa.Column("r", sa.String(), nullable=False),
    sa.Column("s", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("meter", "slot"),
)
sa.Table(
    "slot_digest",
    BASELINE,
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("sealed_block", sa.BigInteger(), nullable=False),
    sa.Column("prev_digest", sa.String(), nullable=False),
    sa.Column("digest", sa.String(), nullable=False),
    sa.Column("leaves_json", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("seq"),
    sa.UniqueConstraint("slot"),
)
sa.Table(
    "slot_outcome",
    BASELINE,
    sa.Column("slot", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("mechanism", sa.String(), nullable=False),
    sa.Column("clearing_price_ueur_per_kWh", sa.BigInteger(), nullable=True),
    sa.Column("households", sa.Integer(), nullable=False),
    sa.Column("surplus_Wh", sa.BigInteger(), nullable=False),
    sa.Column("deficit_Wh", sa.BigInteger(), nullable=False),
    sa.Column("matched_Wh", sa.BigInteger(), nullable=False),
    sa.Column("unmatched_surplus_Wh", sa.BigInteger(), nullable=False),
    sa.Column("unmatched_deficit_Wh", sa.BigInteger(), nullable=False),
    sa.Column("fills", sa.Integer(), nullable=False),
    sa.Column("batches", sa.Integer(), nullable=False),
    sa.Column("cost_ueur", sa.BigInteger(), nullable=False),
    sa.Column("fees_ueur", sa.BigInteger(), nullable=False),
    sa.Column("gas_used", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("slot"),
)
sa.Table(
    "tariff",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("feed_in_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("retail_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("grid_fee_ueur_per_kWh", sa.BigInteger(), nullable=False),
    sa.Column("block_number", sa.BigInteger(), nullable=False),
    sa.Column("log_index", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("block_number", "log_index"),
)
sa.Table(
    "topup",
    BASELINE,
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("account", sa.String(), nullable=False),
    sa.Column("amount_ueur", sa.BigInteger(), nullable=False),
    sa.Column("block_number", sa.BigInteger(), nullable=False),
    sa.Column("log_index", sa.Integer(), nullable=False),
    sa.Column("tx_hash", sa.String(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("block_number", "log_index"),
)

#: (name, table, columns, unique) of each index of the baseline.
INDEXES = (
    ("ix_api_household_account", "api_household", ("account",), False),
    ("ix_api_intent_household", "api_intent", ("household",), False),
    ("ix_api_intent_kind", "api_intent", ("kind",), False),
    ("ix_api_intent_state", "api_intent", ("state",), False),
    ("ix_api_intent_subject", "api_intent", ("subject",), False),
    ("ix_api_intent_updated_s", "api_intent", ("updated_s",), False),
    ("ix_api_order_household", "api_order", ("household",), False),
    ("ix_api_order_side", "api_order", ("side",), False),
    ("ix_api_order_status", "api_order", ("status",), False),
    ("ix_chain_event_block_number", "chain_event", ("block_number",), False),
    ("ix_chain_event_contract", "chain_event", ("contract",), False),
    ("ix_chain_event_name", "chain_event", ("name",), False),
    ("ix_dashboard_form_used_s", "dashboard_form", ("used_s",), False),
    ("ix_fill_buyer", "fill", ("buyer",), False),
    ("ix_fill_seller", "fill", ("seller",), False),
    ("ix_fill_slot", "fill", ("slot",), False),
    ("ix_household_account", "household", ("account",), False),
    ("ix_household_meter", "household", ("meter",), False),
    ("ix_intake_reading_household", "intake_reading", ("household",), False),
    ("ix_intake_reading_meter", "intake_reading", ("meter",), False),
    ("ix_intake_reading_slot", "intake_reading", ("slot",), False),
    ("ix_intake_reading_status", "intake_reading", ("status",), False),
    ("ix_kept_audit_started_s", "kept_audit", ("started_s",), False),
    ("ix_order_household", "order", ("household",), False),
    ("ix_order_side", "order", ("side",), False),
    ("ix_reading_household", "reading", ("household",), False),
    ("ix_reading_slot", "reading", ("slot",), False),
    ("ix_settlement_batch_slot", "settlement_batch", ("slot",), False),
    ("ix_signed_reading_meter", "signed_reading", ("meter",), False),
    ("ix_signed_reading_slot", "signed_reading", ("slot",), False),
    ("ix_tariff_block_number", "tariff", ("block_number",), False),
    ("ix_topup_account", "topup", ("account",), False),
)
for _name, _table, _columns, _unique in INDEXES:
    sa.Index(_name, *(BASELINE.tables[_table].c[c] for c in _columns), unique=_unique)


class NotTheBaseline(RuntimeError):
    """An existing table lacks columns the baseline has: the database is not one Voisin made."""


def _check_existing(bind: sa.Connection) -> None:
    inspector = sa.inspect(bind)
    for table in BASELINE.tables.values():
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = sorted(set(table.c.keys()) - present)
        if missing:
            raise NotTheBaseline(
                f"table {table.name!r} lacks the columns {', '.join(missing)}: this database "
                "was not created by a Voisin release this one can upgrade"
            )


def upgrade() -> None:
    bind = op.get_bind()
    _check_existing(bind)
    BASELINE.create_all(bind, checkfirst=True)


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind(), checkfirst=True)
