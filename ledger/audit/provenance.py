"""Provenance: every credit on chain traces back to a reading its meter signed.

For each ``ReadingCommitted`` event (the contract minted ``exportDeltaWh`` of credits from it),
in chain order:

- a signed reading for the same (meter, slot) is in the evidence store, with the same registers;
- its EIP-712 signature, under this deployment's domain, recovers to that meter;
- that meter belongs to the credited household on chain (its registration or rotation), and,
  while it is the household's current meter, the database's household register names it too
  (once the database has mirrored the household's registration);
- the deltas, recomputed from the previous reading of the meter (or its baseline), equal the
  deltas the contract recorded and minted.

Signed readings may be purged past their retention (``VOISIN_SIGNED_READING_RETENTION_DAYS``),
and only those of slots sealed on chain. A credit of a sealed slot (``SlotSealed``) before the
evidence store's window (:attr:`AuditInputs.evidence_from_slot`) whose signed reading is gone
is no finding: the contract checked the meter's signature when it minted the credit, and the
seal pins the slot's records; what is lost is only the audit's own second check of that
signature. Every other check still runs on it, a reading still stored is still checked, and a
missing reading of a slot within the window, or of one never sealed, is still a finding. The
report states the window.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.audit.findings import ERROR, Finding
from ledger.audit.inputs import AuditInputs, checksum
from ledger.readings.eip712 import InvalidReading, domain_separator, recover_signer
from ledger.readings.evidence import signed_from_record

__all__ = ["check_provenance"]


def _adder(
    findings: list[Finding], slot: int, household: int, base: dict[str, object]
) -> Callable[..., None]:
    def add(message: str, **evidence: object) -> None:
        findings.append(
            Finding("provenance", ERROR, slot, household, message, {**base, **evidence})
        )

    return add


def check_provenance(inputs: AuditInputs) -> list[Finding]:
    domain = domain_separator(inputs.chain_id, inputs.contract)
    owner: dict[str, int] = {}
    registers: dict[str, tuple[int, int]] = {}
    for reg in inputs.registrations:
        owner[reg.meter] = reg.household
        registers[reg.meter] = (reg.import_baseline_Wh, reg.export_baseline_Wh)
    stored = {(checksum(s.meter), s.slot): s for s in inputs.signed}
    db_meter = {h.id: checksum(h.meter) for h in inputs.db_households}
    # The database can only be asked about households it claims to have mirrored already.
    mirrored = {
        r.household
        for r in inputs.registrations
        if inputs.mirror_block is not None and r.block_number <= inputs.mirror_block
    }
    window = inputs.evidence_from_slot
    sealed = (
        {int(e.args["slot"]) for e in inputs.named("SlotSealed")} if window is not None else set()
    )
    findings: list[Finding] = []
    for e in inputs.named("ReadingCommitted"):
        a = e.args
        meter, household, slot = checksum(a["meter"]), int(a["household"]), a["slot"]
        imp, exp = int(a["importWh"]), int(a["exportWh"])
        d_imp, d_exp = int(a["importDeltaWh"]), int(a["exportDeltaWh"])
        base = {"meter": meter, "credit_Wh": d_exp, "tx_hash": e.tx_hash}
        add = _adder(findings, slot, household, base)

        record = stored.get((meter, slot))
        if record is None:
            if window is None or slot >= window or slot not in sealed:
                add("credit minted from a reading that is not in the evidence store")
        else:
            if (record.import_Wh, record.export_Wh) != (imp, exp):
                add(
                    "the stored signed reading differs from the committed one",
                    stored_registers_Wh=[record.import_Wh, record.export_Wh],
                    committed_registers_Wh=[imp, exp],
                )
            try:
                signer: str | None = recover_signer(signed_from_record(record), domain)
            except InvalidReading as exc:
                signer = None
                add(f"the stored signature is invalid: {exc}")
            if signer is not None and signer != meter:
                add(
                    "the stored signature does not recover to the reading's meter",
                    signer=signer,
                )
        if owner.get(meter) != household:
            add(
                "the meter is not registered to the credited household on chain",
                registered_to=owner.get(meter),
            )
        current = inputs.household_meters.get(household) == meter
        if current and household in mirrored and db_meter.get(household) != meter:
            add(
                "the database's household register names another meter for this household",
                register_meter=db_meter.get(household),
            )
        prev_imp, prev_exp = registers.get(meter, (0, 0))
        if (imp - prev_imp, exp - prev_exp) != (d_imp, d_exp):
            add(
                "the recomputed deltas differ from the deltas minted",
                recomputed_delta_Wh=[imp - prev_imp, exp - prev_exp],
                minted_delta_Wh=[d_imp, d_exp],
            )
        registers[meter] = (imp, exp)
    return findings
