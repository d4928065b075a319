"""The chaos run (scripts/chaos), short: 6 households, 8 slots, every chaos event.

The slow test runs the script as CI does and checks its JSON summary: each of the four events
of the rounds happened, every fault kind was injected and refused as it should be, each of the
four events after the rounds (poisoned concurrent batches, a future-slot reading sent straight
to the contract, kills between the chain and the database steps of a registration and of a
meter rotation, replayed dashboard forms) found what it checks, every valid reading is on chain
once and the audit is clean. The quick tests pin down the script's own bookkeeping: what the
API should answer to each envelope and each poisoned item, that a short run still schedules
every event, and how answers are tallied.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas import ReadingsIn
from ledger.readings.eip712 import Reading, SignedReading, domain_separator
from ledger.readings.intake import MeterRecord, classify
from meter_sim import Envelope, Fault, FaultRates, default_scenario, envelopes, sign_readings
from meter_sim.flows import simulate
from meter_sim.run import window
from tests.conftest import ANVIL_BIN, ROOT

SCRIPT = ROOT / "scripts" / "chaos.py"
#: A seed whose 6 households trade at noon and whose 48 readings draw every fault kind.
CI_SEED = 6
DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def _chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voisin_chaos_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


chaos = _chaos()


def _postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


# ───────────────────────────── The script's bookkeeping ─────────────────────────────


def test_a_short_run_still_schedules_every_chaos_event_in_its_own_round() -> None:
    events = chaos.rounds_for_events(11)  # 8 slots plus 3 slots of grace for late readings
    assert [(name, phase) for name, _, phase in events] == [
        ("kill_api", "readings"),
        ("stop_anvil", "settle"),
        ("restart_postgres", "readings"),
        ("kill_api", "settle"),
    ]
    rounds = [r for _, r, _ in events]
    assert rounds == sorted(set(rounds))
    assert rounds[0] > 0 and rounds[-1] < 11


def test_too_few_rounds_for_the_events_are_refused() -> None:
    with pytest.raises(SystemExit, match="too few"):
        chaos.rounds_for_events(4)


def _sent(slot: int, send_slot: int, fault: Fault | None, template: Envelope) -> Envelope:
    """An envelope of the same meter for ``slot`` (the signature does not matter here)."""
    rd = template.signed.reading
    reading = Reading(rd.meter, slot, rd.import_Wh, rd.export_Wh)
    signed = SignedReading(reading, template.signed.v, template.signed.r, template.signed.s)
    return Envelope(signed, 0, slot, send_slot, fault)


def test_a_late_reading_is_expected_accepted_unless_a_later_slot_overtook_it() -> None:
    scenario = default_scenario(1, 1, date(2026, 6, 21), 1)
    flows = window(simulate(scenario), 40, 4)
    base = envelopes(scenario, sign_readings(scenario, flows, DOMAIN), DOMAIN)[0]
    s = base.slot
    sent = [
        _sent(s, s, None, base),
        # Slot s+1 arrives late but before s+2: nothing overtook it.
        _sent(s + 1, s + 2, Fault.LATE, base),
        _sent(s + 2, s + 2, None, base),
        _sent(s + 2, s + 2, Fault.DUPLICATE, base),
        # Slot s+3 is dropped, s+4 is on time, then the late s+3 comes: stale.
        _sent(s + 4, s + 4, None, base),
        _sent(s + 3, s + 5, Fault.LATE, base),
        _sent(s, s + 5, Fault.REPLAY, base),
        _sent(s + 5, s + 5, Fault.TAMPERED, base),
        _sent(s + 5, s + 5, Fault.CLOCK_SKEW, base),
        _sent(s + 5, s + 5, Fault.WRONG_KEY, base),
    ]
    assert chaos.expected_outcomes(sent) == [
        ("accepted", None),
        ("accepted", None),
        ("accepted", None),
        ("already_delivered", "duplicate"),
        ("accepted", None),
        ("rejected", "stale_slot"),
        ("already_delivered", "duplicate"),
        ("rejected", "bad_signature"),
        ("rejected", "future_slot"),
        ("rejected", "bad_signature"),
    ]


def test_the_ci_seed_draws_every_fault_kind() -> None:
    scenario = default_scenario(6, 1, date(2026, 6, 21), CI_SEED)
    flows = window(simulate(scenario), chaos.NOON_SLOT - 4, 8)
    rates = dataclasses.replace(FaultRates.uniform(0.05), max_late_slots=3)
    signed = sign_readings(scenario, flows, DOMAIN)
    kinds = {e.fault for e in envelopes(scenario, signed, DOMAIN, rates)}
    assert kinds >= set(Fault)
    assert int(flows.export_Wh.sum()) > 0 and int(flows.import_Wh.sum()) > 0


def test_the_help_documents_every_chaos_event(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        chaos.main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    names = [name for name, _, _ in chaos.SCHEDULE] + [name for name, _ in chaos.AFTER_RUN]
    for name in [*names, *(f.value for f in Fault), *chaos.POISON_VERDICTS]:
        assert name in shown or name.replace("beyond_bounds", "beyond the bounds") in shown


def _street(households: int = 4) -> Any:
    """The street a fault-free run of ``households`` over 4 slots leaves behind."""
    scenario = default_scenario(households, 1, date(2026, 6, 21), 1)
    flows = window(simulate(scenario), 44, 4)
    signed = sign_readings(scenario, flows, DOMAIN)
    envs = envelopes(scenario, signed, DOMAIN)
    expected = chaos.expected_outcomes(envs)
    ids = list(range(1, households + 1))
    return chaos.street_after(scenario, DOMAIN, ids, signed, envs, expected, 1)


def test_the_street_after_the_run_goes_on_from_each_meters_last_accepted_reading() -> None:
    street = _street()
    last = street.first_new_slot - 1
    assert street.next_slot == street.first_new_slot
    assert len(street.valid) == 4 * 4
    for h, hid in enumerate(street.ids):
        slot, import_Wh, export_Wh = street.accepted[h]
        assert slot == last and street.valid[(hid, last)] == (import_Wh, export_Wh)
        assert street.registers[h] == (import_Wh, export_Wh)
        replay = street.replayable[h]
        assert replay is not None and replay.reading.slot == last - 3
    signed = street.reading(0, street.take_slot())
    assert signed.reading.slot == last + 1 and street.next_slot == last + 2
    assert signed.reading.import_Wh > street.accepted[0][1]


def test_the_poisoned_batches_name_every_household_once_per_thread() -> None:
    assert chaos.thread_groups(5, 3) == [[0, 3], [1, 4], [2]]
    assert chaos.thread_groups(2, 4) == [[0], [1]]
    assert chaos.thread_groups(1, 1) == [[0]]


def _poisoned_round(street: Any, threads: int) -> tuple[list[list[Any]], int]:
    groups = chaos.thread_groups(len(street.ids), threads)
    n = len(groups)
    slot = street.take_slot()
    fresh = {h: street.reading(h, slot) for h in range(len(street.ids))}
    now_slot = slot + 10_000
    batches = [
        chaos.poisoned_batch(
            street, own, groups[(i + 1) % n], fresh, own[0], now_slot, b"\x07" * 32, i == 0,
            random.Random(i),
        )
        for i, own in enumerate(groups)
    ]  # fmt: skip
    return batches, now_slot


def test_each_poisoned_item_is_refused_with_its_reason_whichever_batch_lands_first() -> None:
    street = _street()
    batches, now_slot = _poisoned_round(street, 3)
    assert {it.kind for it in batches[0]} == {"valid", "copy", *chaos.POISON_VERDICTS}
    meters = {
        street.meters[h]: MeterRecord(street.ids[h], *street.accepted[h])
        for h in range(len(street.ids))
    }
    sendable = [[it for it in b if it.kind != "beyond_bounds"] for b in batches]
    # The threads' requests in every order, one after the other, and all in one group commit.
    merged = [it for batch in sendable for it in batch]
    orders = [list(o) for o in itertools.permutations(sendable)] + [[merged]]
    for order in orders:
        state = dict(meters)
        got: list[tuple[Any, Any]] = []
        for batch in order:
            result = classify([it.body for it in batch], DOMAIN, state, now_slot=now_slot)
            state = result.meters
            got += zip(batch, result.verdicts, strict=True)
        accepted: dict[tuple[str, int], int] = {}
        for item, verdict in got:
            key = (item.body["meter"], item.body["slot"])
            code = verdict.code.value if verdict.code is not None else None
            if item.kind in ("valid", "copy"):
                accepted[key] = accepted.get(key, 0) + verdict.accepted
                assert verdict.accepted or code == "duplicate"
            elif item.kind == "replay":
                # The intake answers a stored identical reading ``duplicate``.
                assert code in ("stale_slot", "duplicate")
            else:
                assert not verdict.accepted and code == chaos.POISON_VERDICTS[item.kind][1]
        assert set(accepted.values()) == {1} and len(accepted) == len(street.ids)


def test_a_register_beyond_the_bounds_refuses_its_whole_request_naming_the_field() -> None:
    batches, _ = _poisoned_round(_street(), 3)
    (bad,) = [i for i, it in enumerate(batches[0]) if it.kind == "beyond_bounds"]
    bodies = [it.body for it in batches[0]]
    with pytest.raises(ValidationError) as caught:
        ReadingsIn.model_validate_json(json.dumps({"readings": bodies}))
    assert {tuple(e["loc"]) for e in caught.value.errors()} == {("readings", bad, "import_Wh")}
    rest = [it.body for it in batches[0] if it.kind != "beyond_bounds"]
    assert len(ReadingsIn.model_validate_json(json.dumps({"readings": rest})).readings) == len(rest)
    assert all(it.kind != "beyond_bounds" for b in batches[1:] for it in b)


def test_a_genuine_reading_must_be_accepted_exactly_once_and_each_poison_refused() -> None:
    body = {"meter": "0xA", "slot": 5}
    valid, copy = chaos.Item("valid", 0, body), chaos.Item("copy", 0, body)
    forged = chaos.Item("forged", 0, body)
    answered = chaos.Answered
    table, problems = chaos.tally_poisoned(
        [
            answered(valid, "accepted", None, ""),
            answered(copy, "duplicate", None, ""),
            answered(forged, "rejected", "bad_signature", ""),
        ]
    )
    assert problems == []
    assert (table["readings"], table["accepted_once"], table["raced"]) == (1, 1, 1)
    assert table["kinds"]["forged"] == {"sent": 1, "answers": {"bad_signature": 1}}
    # Stored twice, or never: each is a problem.
    twice = [answered(valid, "accepted", None, ""), answered(copy, "accepted", None, "")]
    assert len(chaos.tally_poisoned(twice)[1]) == 1
    assert len(chaos.tally_poisoned([answered(valid, "duplicate", None, "")])[1]) == 1
    # Only a request sent again after a lost answer may find its reading already stored.
    table, problems = chaos.tally_poisoned([answered(valid, "duplicate", None, "", True)])
    assert problems == [] and table["answer_lost"] == 1
    # A poison accepted, or refused for another reason, is a problem.
    assert len(chaos.tally_poisoned([answered(forged, "accepted", None, "")])[1]) == 1
    assert len(chaos.tally_poisoned([answered(forged, "rejected", "stale_slot", "")])[1]) == 1


def test_the_form_replay_reads_a_forms_hidden_tokens_by_its_action() -> None:
    html = (
        '<form action="/ui/operator/register"><input type="hidden" name="once" value="r">'
        '</form><form method="post" action="/ui/operator/topup">'
        '<input type="hidden" name="form_token" value="f"><input name="amount">'
        '<input type="hidden" name="once" value="t"></form>'
    )
    assert chaos.hidden_fields(html, "/ui/operator/topup") == {"form_token": "f", "once": "t"}
    with pytest.raises(RuntimeError, match="no form"):
        chaos.hidden_fields(html, "/ui/operator/meter")


# ───────────────────────────── The run ─────────────────────────────


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.postgres
def test_the_short_chaos_run_loses_nothing_and_refuses_exactly_the_faults(
    tmp_path: Path,
) -> None:
    if not ANVIL_BIN.exists() or not _postgres_installed():
        if os.environ.get("CI"):
            pytest.fail("the chaos run needs anvil (scripts/install) and PostgreSQL's binaries")
        pytest.skip("the chaos run needs anvil and PostgreSQL's binaries")
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--households",
            "6",
            "--slots",
            "8",
            "--seed",
            str(CI_SEED),
            "--poison-threads",
            "3",
            "--poison-rounds",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    summary: dict[str, Any] = json.loads(out.read_text())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert summary["ok"] is True and summary["problems"] == []

    # Every chaos event happened, in order, without an error.
    events = summary["events"]
    assert [e["event"] for e in events] == [
        "kill_api",
        "stop_anvil",
        "restart_postgres",
        "kill_api",
    ]
    assert all("error" not in e for e in events)
    # The first kill and the database restart land while readings are sent (the intake's
    # path), the node's stop and the second kill while a slot is settled (the chain's path).
    assert [e["during"] for e in events] == ["readings", "settle", "readings", "settle"]
    assert events[0]["killed_pid"] != events[3]["killed_pid"]
    anvil = events[1]
    assert anvil["down_s"] == 20 and anvil["head_after"] >= anvil["head_before"] > 0

    # Every fault kind injected; every one meant to be refused was refused, with its code.
    faults = summary["faults"]
    assert set(faults) == {f.value for f in Fault} | {"none"}
    for kind, row in faults.items():
        assert row["mismatches"] == 0, (kind, row)
        assert row["refused_total"] == row["expected_refused"], (kind, row)
    assert set(faults["tampered"]["refused"]) == {"bad_signature"}
    assert set(faults["wrong_key"]["refused"]) == {"bad_signature"}
    assert set(faults["clock_skew"]["refused"]) == {"future_slot"}
    assert set(faults["duplicate"]["refused"]) == {"duplicate"}
    assert set(faults["replay"]["refused"]) == {"duplicate"}
    assert faults["dropped"]["not_sent"] == faults["dropped"]["injected"]
    assert faults["none"]["accepted"] == faults["none"]["injected"]
    for kind in ("tampered", "wrong_key", "clock_skew", "duplicate", "replay"):
        assert faults[kind]["accepted"] == 0

    # Poisoned concurrent batches: every poison refused with its reason, every genuine reading
    # of the 3 threads x 2 rounds accepted exactly once (its copy in another request duplicate).
    poisoned = summary["poisoned_batches"]
    assert poisoned["ok"] and poisoned["problems"] == []
    assert (poisoned["threads"], poisoned["rounds"]) == (3, 2)
    assert poisoned["readings"] == poisoned["accepted_once"] == 2 * 6 == poisoned["raced"]
    kinds = poisoned["kinds"]
    for kind, (_, code) in chaos.POISON_VERDICTS.items():
        assert kinds[kind]["answers"] == {code or "duplicate": kinds[kind]["sent"]}, kind
    assert kinds["beyond_bounds"]["sent"] == 2  # one refused request a round
    assert kinds["forged"]["sent"] == kinds["future"]["sent"] == 3 * 2
    genuine = Counter(kinds["valid"]["answers"]) + Counter(kinds["copy"]["answers"])
    assert genuine == {"accepted": 12, "duplicate": 12}

    # A reading a year ahead, and for slot 2^32 - 1, sent straight to the contract by an
    # outsider: FutureReading at the estimate and when mined; the meter carries on.
    future = summary["future_reading"]
    assert future["ok"] and future["meter_unchanged"] and future["next_committed"]
    assert [a["slot"] for a in future["attempts"]][1] == 2**32 - 1
    for attempt in future["attempts"]:
        assert attempt["slot"] > future["chain_max_slot"]
        assert attempt["mined"]["status"] == 0 and attempt["mined"]["logs"] == 0
        for stage in ("estimate", "mined"):
            assert attempt[stage]["error"] == "FutureReading"
            assert attempt[stage]["values"]["slot"] == attempt["slot"]
            assert attempt[stage]["values"]["meter"] == future["meter"]
    assert future["next_answers"] == [["accepted", None], ["accepted", None]]

    # Killed between the chain write and the database step, then sent again with its key.
    kills = summary["intent_kills"]
    assert kills["ok"] and kills["problems"] == []
    register = kills["register"]
    assert register["fault"] == "register.sent:kill" and register["exit"] == -9
    assert register["retries"] == [201, 201]
    hid = register["household"]
    assert register["before_restart"]["on_chain"] == [hid]
    assert register["before_restart"]["in_database"] == []
    assert register["before_restart"]["intents"] == ["sending"]
    assert register["after_restart"] == {
        "on_chain": [hid],
        "in_database": [hid],
        "accounts_in_database": [register["account"]],
        "mirrored": [hid],
        "intents": ["done"],
    }
    assert register["token_works"]
    rotate = kills["rotate_meter"]
    assert rotate["fault"] == "rotate_meter.sent:kill" and rotate["exit"] == -9
    assert rotate["retries"] == [200, 200]
    old, new = rotate["old_meter"], rotate["new_meter"]
    assert rotate["before_restart"]["meter_on_chain"] == new
    assert rotate["before_restart"]["meter_in_database"] == old
    assert rotate["after_restart"] == {
        "rotations_on_chain": [[old, new]],
        "meter_on_chain": new,
        "meter_in_database": new,
        "meter_mirrored": new,
        "intents": ["done"],
    }
    assert rotate["readings_after"] == {
        "new_meter": [["accepted", None]],
        "old_meter": [["rejected", "unknown_meter"]],
    }

    # The top-up form sent again, twice at once, and again after a crash: once per token.
    form = summary["form_replay"]
    assert form["ok"] and form["problems"] == []
    amounts = [amount for _, _, amount in chaos.FORM_TOP_UPS]
    assert [row["balance_change_ueur"] for row in form["posts"].values()] == amounts
    assert all(len(row["answers"]) == 2 for row in form["posts"].values())
    assert form["topped_up_events"] == amounts
    assert form["chain_balance_change_ueur"] == sum(amounts)
    assert form["balance_after_ueur"] == form["balance_before_ueur"] + sum(amounts)

    # Every valid reading on chain once, nothing else; the mirror and the intake agree; the
    # audit is clean. The events after the rounds added the poisoned rounds' readings, the
    # meter's two after its future-slot reading was refused, and the new meter's first.
    chain = summary["chain"]
    valid = faults["none"]["accepted"] + faults["late"]["accepted"]
    valid += poisoned["readings"] + len(future["next_slots"]) + 1
    assert chain["valid_readings"] == valid
    assert chain["readings_on_chain"] == valid == chain["readings_in_mirror"]
    assert chain["readings_in_intake"] == valid
    assert chain["missing"] == chain["extra"] == chain["doubled"] == 0
    assert chain["wrong_registers"] == chain["mirror_differences"] == 0
    assert chain["intake_differences"] == chain["intake_uncommitted"] == 0
    assert summary["audit"]["findings"] == 0 and summary["audit"]["exit"] == 0
    assert summary["audit"]["summary"]["readings"] == valid
    after_run = summary["after_run"]
    assert summary["market"]["fills"] > 0
    assert summary["market"]["fills"] + after_run["fills"] == chain["fills_on_chain"]
    assert summary["market"]["backlog_at_end"] == {"readings": 0, "orders": 0}
    assert after_run["backlog_at_end"] == {"readings": 0, "orders": 0}
    # The outages were seen (503s) and nothing answered a 500.
    statuses = summary["http_statuses"]
    assert "500" not in statuses
