"""The grid operator's dashboard page: the audit (as the keeper last ran it) with links to
each finding's evidence and its downloads, neighbourhood flows and clearing prices per slot,
the fees collected, the feeder's voltage band and loading per slot, the meters that stopped
reporting, and the forms to settle a closed slot, register a household, replace its meter and
top it up (through the API's own route functions).

The page computes nothing heavy: the audit and the feeder's power flows run in the background
after settlement (:mod:`api.keeper`), and the page reads what was kept, with when.

Each form is carried out once (its one-time token, :mod:`api.web.once`), and a successful post
answers 303 See Other to the page, which says what was done (post/redirect/get,
:mod:`api.web.flash`): reloading the page never tops up, settles or registers again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Svc
from api.errors import ApiError
from api.forecasts import NotEnoughHistory, hourly
from api.routes import households, market, topups
from api.schemas import (
    MAX_HOUSEHOLD_ID,
    MAX_TOPUP_UEUR,
    MAX_WH,
    UINT32,
    UNSAFE_TEXT,
    HouseholdIn,
    MeterIn,
    TopUpIn,
)
from api.services import Services, slot_now
from api.web import audit, charts, flash, forms, i18n, once, operator_views, views
from api.web.paths import at, root
from api.web.render import lang_of, message, page
from api.web.session import form_token_ok, signed_in
from api.webhooks import failed_view
from ledger.forecast.load import MIN_HISTORY_DAYS

router = APIRouter(include_in_schema=False)


def _who(request: Request) -> tuple[Principal, str] | None:
    who = signed_in(request)
    return who if who is not None and who[0].is_operator else None


def _market(services: Services, t: dict[str, str], lang: str) -> dict[str, Any]:
    tz = services.settings.timezone
    rows = views.outcomes(services.engine)
    band = views.band(services.engine, services.tariffs_at_deploy)
    labels = [i18n.slot_time(r.slot, tz) for r in rows]
    span = (rows[0].slot, rows[-1].slot) if rows else (None, None)
    context: dict[str, Any] = {
        "outcomes": rows,
        "band": band,
        "households": views.households(services.engine),
        "fees": operator_views.fees(services.engine, *span),
        "flows_chart": None,
        "prices_chart": None,
    }
    if rows:

        def num(n: int) -> str:
            return i18n.integer(n, lang)

        alt = t["flows_alt"].format(
            n=len(rows),
            s=num(sum(r.surplus_Wh for r in rows)),
            d=num(sum(r.deficit_Wh for r in rows)),
            m=num(sum(r.matched_Wh for r in rows)),
        )
        tips = [
            t["tip_flows"].format(
                t=i18n.slot_label(r.slot, tz),
                s=num(r.surplus_Wh),
                d=num(r.deficit_Wh),
                m=num(r.matched_Wh),
            )
            for r in rows
        ]
        context["flows_chart"] = charts.grouped_bars(
            "chart-flows",
            alt,
            labels,
            [
                charts.Series(t["surplus"], charts.AMBER, [r.surplus_Wh for r in rows]),
                charts.Series(t["deficit"], charts.GREY, [r.deficit_Wh for r in rows]),
                charts.Series(t["matched"], charts.GREEN, [r.matched_Wh for r in rows]),
            ],
            tips=tips,
            value_text=lambda v: f"{num(v)} Wh",
        )
    prices = [r.clearing_price_ueur_per_kWh for r in rows]
    known = [p for p in prices if p is not None]
    if known:
        alt = t["prices_alt"].format(
            n=len(known),
            lo=i18n.cents_per_kWh(min(known), lang),
            hi=i18n.cents_per_kWh(max(known), lang),
            fi=i18n.cents_per_kWh(band.floor, lang),
            ce=i18n.cents_per_kWh(band.ceiling, lang),
        )
        tips = [
            t["tip_price"].format(t=i18n.slot_label(r.slot, tz), p=i18n.cents_per_kWh(p, lang))
            if p is not None
            else t["tip_no_price"].format(t=i18n.slot_label(r.slot, tz))
            for r, p in zip(rows, prices, strict=True)
        ]
        context["prices_chart"] = charts.points_in_band(
            "chart-prices",
            alt,
            labels,
            prices,
            prices,
            (band.floor, band.ceiling),
            "c€",
            10_000,
            tips=tips,
            axis_text=lambda v: f"{i18n.cents_per_kWh(v, lang)} c€",
        )
    return context


def _forecast_review(services: Services, t: dict[str, str], lang: str) -> dict[str, Any]:
    """The day-ahead forecast of the last metered day against the readings, by the hour."""
    try:
        review = services.forecasts.review(slot_now())
    except NotEnoughHistory:
        return {"review": None, "review_hours": [], "review_chart": None}
    tz = services.settings.timezone
    first = review.first_slot
    columns = {
        "expected_import": hourly(first, review.expected_import_Wh),
        "expected_export": hourly(first, review.expected_export_Wh),
        "metered_import": hourly(first, review.metered_import_Wh),
        "metered_export": hourly(first, review.metered_export_Wh),
    }
    hours = [
        {"slot": max(hour, first), **{k: v[i][1] for k, v in columns.items()}}
        for i, (hour, _) in enumerate(columns["expected_import"])
    ]
    alt = t["forecast_review_alt"].format(
        exp=i18n.integer(int(review.expected_export_Wh.sum()), lang),
        met=i18n.integer(int(review.metered_export_Wh.sum()), lang),
    )
    chart = charts.grouped_bars(
        "chart-forecast-review",
        alt,
        [i18n.slot_time(h["slot"], tz) for h in hours],
        [
            charts.Series(t["expected_export"], charts.BLUE, [h["expected_export"] for h in hours]),
            charts.Series(t["metered_export"], charts.AMBER, [h["metered_export"] for h in hours]),
        ],
    )
    return {"review": review, "review_hours": hours, "review_chart": chart}


def _pu(value: float | None, lang: str) -> str:
    return "—" if value is None else operator_views.decimal(value, 3, lang)


def _percent(value: float | None, lang: str) -> str:
    return "—" if value is None else operator_views.decimal(value, 1, lang)


def _feeder(services: Services, shown: list[int], t: dict[str, str], lang: str) -> dict[str, Any]:
    """The kept power flows of the slots shown: rows, the voltage band and the loading charts."""
    tz = services.settings.timezone
    rows = audit.feeder_rows(services.engine, shown[0], shown[-1]) if shown else []
    v_low, v_high = audit.voltage_band()
    limit = audit.loading_limit()
    context: dict[str, Any] = {
        "feeder_rows": rows,
        "feeder_chart": None,
        "loading_chart": None,
        "feeder_missing": len(set(shown) - {r.slot for r in rows}),
        "feeder_warnings": sum(1 for r in rows if r.findings),
        "v_band": t["v_band"].format(
            lo=operator_views.decimal(v_low, 2, lang), hi=operator_views.decimal(v_high, 2, lang)
        ),
    }
    if not rows:
        return context
    labels = [i18n.slot_time(r.slot, tz) for r in rows]
    lows = [round(r.v_min_pu * 1000) if r.v_min_pu is not None else None for r in rows]
    highs = [round(r.v_max_pu * 1000) if r.v_max_pu is not None else None for r in rows]
    seen = [v for v in [*lows, *highs] if v is not None]
    loads = [r.loading_percent for r in rows if r.loading_percent is not None]
    no_flow = [t["tip_no_flow"].format(t=i18n.slot_label(r.slot, tz)) for r in rows]
    if seen:
        alt = t["feeder_alt"].format(
            n=len(rows),
            lo=operator_views.decimal(min(seen) / 1000, 3, lang),
            hi=operator_views.decimal(max(seen) / 1000, 3, lang),
            blo=operator_views.decimal(v_low, 2, lang),
            bhi=operator_views.decimal(v_high, 2, lang),
            load=operator_views.decimal(max(loads), 0, lang) if loads else "?",
        )
        tips = [
            t["tip_voltage"].format(
                t=i18n.slot_label(r.slot, tz), lo=_pu(r.v_min_pu, lang), hi=_pu(r.v_max_pu, lang)
            )
            if r.v_min_pu is not None
            else no_flow[i]
            for i, r in enumerate(rows)
        ]
        context["feeder_chart"] = charts.points_in_band(
            "chart-feeder",
            alt,
            labels,
            lows,
            highs,
            (round(v_low * 1000), round(v_high * 1000)),
            "pu",
            1000,
            tips=tips,
            axis_text=lambda v: f"{operator_views.decimal(v / 1000, 2, lang)} pu",
        )
    line = [round(r.line_percent * 10) if r.line_percent is not None else None for r in rows]
    trafo = [round(r.trafo_percent * 10) if r.trafo_percent is not None else None for r in rows]
    if any(v is not None for v in [*line, *trafo]):
        alt = t["loading_alt"].format(
            n=len(rows),
            line=operator_views.decimal(max(v for v in line if v is not None) / 10, 1, lang)
            if any(v is not None for v in line)
            else "?",
            trafo=operator_views.decimal(max(v for v in trafo if v is not None) / 10, 1, lang)
            if any(v is not None for v in trafo)
            else "?",
        )
        tips = [
            t["tip_loading"].format(
                t=i18n.slot_label(r.slot, tz),
                l=_percent(r.line_percent, lang),
                r=_percent(r.trafo_percent, lang),
            )
            if r.line_percent is not None
            else no_flow[i]
            for i, r in enumerate(rows)
        ]
        context["loading_chart"] = charts.lines_under_limit(
            "chart-loading",
            alt,
            labels,
            [
                charts.Line(t["line_loading"], charts.BLUE, line),
                charts.Line(t["trafo_loading"], charts.AMBER, trafo, dashed=True),
            ],
            round(limit * 10),
            lambda v: f"{operator_views.decimal(v / 10, 0, lang)} %",
            tips=tips,
        )
    return context


def _operator_page(services: Services, t: dict[str, str], lang: str) -> dict[str, Any]:
    """Everything the page shows, read from the database (run in a worker thread), with the
    live stamp read first."""
    stamp = audit.live_stamp(services.engine, services.client.address, operator=True)
    context = _market(services, t, lang)
    context["live_stamp"] = stamp
    shown = [r.slot for r in context["outcomes"]]
    now = slot_now()
    context |= _feeder(services, shown, t, lang)
    context |= _forecast_review(services, t, lang)
    context["forecast_days"] = MIN_HISTORY_DAYS
    context |= {
        "audit": audit.kept_view(services.engine),
        "silent": operator_views.silent_meters(services.engine, now),
        "silent_after": operator_views.SILENT_AFTER_SLOTS,
        "last_closed": now - 1,
        "settleable": operator_views.settleable_slots(services.engine, now),
        # The webhooks' failed deliveries (api/webhooks.py, docs/webhooks.md).
        "webhooks": failed_view(services.engine),
    }
    return context


async def _render(
    request: Request, services: Services, who: tuple[Principal, str], status: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    lang = lang_of(request)
    t = i18n.text(lang)
    context = await run_in_threadpool(_operator_page, services, t, lang)
    tz = services.settings.timezone
    context |= {
        "here": at(request, "/ui/operator"),
        "moment": lambda seconds: operator_views.moment(seconds, tz),
        "dec": lambda value, places: operator_views.decimal(value, places, lang),
        "short": operator_views.short_address,
    }
    return page(request, "operator.html", {**context, **extra}, token=who[1], status=status)


@router.get("/ui/operator")
async def operator_page(request: Request, services: Svc) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    return await _render(request, services, who)


HOME = "/ui/operator"


def _sent_before(
    request: Request, services: Services, who: tuple[Principal, str], form: str, sent: str
) -> Response | None:
    """If this form's one-time token was used already: the page, saying what came of it."""
    if not once.valid(who[1], form, sent, root(request)):
        return None
    earlier = once.used(services.engine, sent)
    if earlier is None:
        return None
    return flash.redirect(request, HOME, who[1], earlier.again())


def _use_up(
    request: Request, services: Services, who: tuple[Principal, str], form: str, sent: str
) -> Response | None:
    """Use the form's one-time token up before acting: None if the action may go ahead, else
    the page saying what an earlier post of it did (it won a race with this one)."""
    earlier = once.claim(services.engine, "operator", form, sent)
    if earlier is None:
        return None
    return flash.redirect(request, HOME, who[1], earlier.again())


async def _api_refused(
    request: Request, services: Services, who: tuple[Principal, str], once_token: str,
    exc: ApiError, field: str, values: dict[str, str],
) -> Response:  # fmt: skip
    """The API refused the form's action: record that as the form's outcome (a replay says
    so), then show the form again with the refusal, in the reader's language, at ``field``."""
    refused = forms.refused(exc.code)
    outcome = once.Outcome(refused.key, dict(refused.values))
    await run_in_threadpool(once.record, services.engine, once_token, outcome, refused=True)
    text = message(lang_of(request), refused)
    return await _render(request, services, who, 422, errors={field: text}, values=values)


@router.post("/ui/operator/register")
async def register(
    request: Request,
    services: Svc,
    meter: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=80)] = "",
    prosumer: Annotated[str, Form(max_length=10)] = "",
    import_Wh: Annotated[str, Form(max_length=40)] = "",
    export_Wh: Annotated[str, Form(max_length=40)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    values = {
        "meter": meter, "name": name, "prosumer": prosumer,
        "import_Wh": import_Wh, "export_Wh": export_Wh,
    }  # fmt: skip
    lang = lang_of(request)
    if form_token_ok(who[1], form_token):
        again = await run_in_threadpool(
            _sent_before, request, services, who, "register", once_token
        )
        if again is not None:
            return again
    field = "meter"
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        address = forms.address(meter)
        field = "import_Wh"
        import_baseline = forms.register_Wh(import_Wh, MAX_WH, lang)
        field = "export_Wh"
        export_baseline = forms.register_Wh(export_Wh, MAX_WH, lang)
        field = "prosumer"
        has_pv = forms.checkbox(prosumer)
        field = "name"
        bad = UNSAFE_TEXT.search(name)
        if bad is not None:
            where = {"ch": f"U+{ord(bad.group()):04X}", "at": str(bad.start() + 1)}
            raise forms.FieldError("err_unsafe_text", where)
        field = "meter"
        if not once.valid(who[1], "register", once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return await _render(
            request, services, who, 422, errors={field: message(lang, error)}, values=values
        )
    body = HouseholdIn(
        meter=address,
        prosumer=has_pv,
        name=name.strip() or None,
        import_baseline_Wh=import_baseline,
        export_baseline_Wh=export_baseline,
    )
    raced = await run_in_threadpool(_use_up, request, services, who, "register", once_token)
    if raced is not None:
        return raced
    try:
        created = await run_in_threadpool(households.register, body, who[0], services)
    except ApiError as exc:
        return await _api_refused(request, services, who, once_token, exc, "meter", values)
    # The stored outcome never holds the new token: a replay says the form was done, and the
    # token reaches the screen once, through the flash.
    kept = once.Outcome("registered_earlier", {"id": created.id})
    await run_in_threadpool(once.record, services.engine, once_token, kept)
    shown = once.Outcome("registered", {"id": created.id, "token": created.token or ""})
    return flash.redirect(request, HOME, who[1], shown)


@router.post("/ui/operator/meter")
async def replace_meter(
    request: Request,
    services: Svc,
    household: Annotated[str, Form(max_length=20)] = "",
    meter: Annotated[str, Form(max_length=100)] = "",
    import_Wh: Annotated[str, Form(max_length=40)] = "",
    export_Wh: Annotated[str, Form(max_length=40)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    """Register a new meter for a household (a replaced or re-keyed meter)."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    values = {
        "meter_household": household, "new_meter": meter,
        "new_import_Wh": import_Wh, "new_export_Wh": export_Wh,
    }  # fmt: skip
    lang = lang_of(request)
    if form_token_ok(who[1], form_token):
        again = await run_in_threadpool(_sent_before, request, services, who, "meter", once_token)
        if again is not None:
            return again
    known = {h.id for h, _ in views.households(services.engine)}
    field = "meter_household"
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        target = forms.choice(household, known)
        field = "new_meter"
        address = forms.address(meter)
        field = "new_import_Wh"
        import_baseline = forms.register_Wh(import_Wh, MAX_WH, lang)
        field = "new_export_Wh"
        export_baseline = forms.register_Wh(export_Wh, MAX_WH, lang)
        body = MeterIn(
            meter=address, import_baseline_Wh=import_baseline, export_baseline_Wh=export_baseline
        )
        field = "new_meter"
        if not once.valid(who[1], "meter", once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return await _render(
            request, services, who, 422, errors={field: message(lang, error)}, values=values
        )
    raced = await run_in_threadpool(_use_up, request, services, who, "meter", once_token)
    if raced is not None:
        return raced
    try:
        done = await run_in_threadpool(households.rotate_meter, target, body, who[0], services)
    except ApiError as exc:
        return await _api_refused(request, services, who, once_token, exc, field, values)
    replaced = once.Outcome("replaced", {"id": target, "meter": done.meter, "slot": done.last_slot})
    await run_in_threadpool(once.record, services.engine, once_token, replaced)
    return flash.redirect(request, HOME, who[1], replaced)


@router.post("/ui/operator/topup")
async def top_up(
    request: Request,
    services: Svc,
    household: Annotated[str, Form(max_length=20)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    values = {"household": household, "amount": amount}
    lang = lang_of(request)
    if form_token_ok(who[1], form_token):
        again = await run_in_threadpool(_sent_before, request, services, who, "topup", once_token)
        if again is not None:
            return again
    known = {h.id for h, _ in views.households(services.engine)}
    field = "household"
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        target = forms.choice(household, known)
        field = "amount"
        amount_ueur = forms.euros(amount, MAX_TOPUP_UEUR, lang)
        body = TopUpIn(household=target, amount_ueur=amount_ueur)
        if not once.valid(who[1], "topup", once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return await _render(
            request, services, who, 422, errors={field: message(lang, error)}, values=values
        )
    raced = await run_in_threadpool(_use_up, request, services, who, "topup", once_token)
    if raced is not None:
        return raced
    try:
        await run_in_threadpool(topups.top_up, body, who[0], services)
    except ApiError as exc:
        return await _api_refused(request, services, who, once_token, exc, field, values)
    topped = once.Outcome("topped_up", {"amount_ueur": amount_ueur, "household": target})
    await run_in_threadpool(once.record, services.engine, once_token, topped)
    return flash.redirect(request, HOME, who[1], topped)


@router.post("/ui/operator/settle")
async def settle_slot(
    request: Request,
    services: Svc,
    slot: Annotated[str, Form(max_length=20)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    """Settle a closed slot as ``POST /market/slots/{slot}/settle`` does (the same function):
    what is queued goes to the chain first, then the slot is cleared and settled once."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    values = {"settle_slot": slot}
    lang = lang_of(request)
    if form_token_ok(who[1], form_token):
        again = await run_in_threadpool(_sent_before, request, services, who, "settle", once_token)
        if again is not None:
            return again
    field = "settle_slot"
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        target = forms.whole(slot, UINT32, lang)
        if target >= slot_now():
            raise forms.FieldError("err_slot_open")
        if not once.valid(who[1], "settle", once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return await _render(
            request, services, who, 422, errors={field: message(lang, error)}, values=values
        )
    raced = await run_in_threadpool(_use_up, request, services, who, "settle", once_token)
    if raced is not None:
        return raced
    try:
        outcome = await run_in_threadpool(market.settle, who[0], services, target)
    except ApiError as exc:
        return await _api_refused(request, services, who, once_token, exc, field, values)
    # Its power flow and the audit follow in the background.
    services.keeper.wake()
    settled = once.Outcome(
        "op_settled",
        {
            "slot": i18n.slot_label(target, services.settings.timezone),
            "matched_Wh": outcome.matched_Wh,
            "fills": outcome.fills,
        },
    )
    await run_in_threadpool(once.record, services.engine, once_token, settled)
    return flash.redirect(request, HOME, who[1], settled)


#: The audit's downloads: media type of each.
DOWNLOADS = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@router.get("/ui/operator/audit.{kind}")
def audit_download(request: Request, services: Svc, kind: str) -> Response:
    """The audit the page shows, whole, with the kept feeder check of the slots it covers:
    the report as JSON, its findings as CSV or its HTML page (:mod:`ledger.audit.render`)."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    if kind not in DOWNLOADS:
        return Response("no such download\n", 404, media_type="text/plain")
    kept = audit.kept_report(services.engine)
    if kept is None:
        text = i18n.text(lang_of(request))["no_download"]
        return Response(text + "\n", 404, media_type="text/plain; charset=utf-8")
    from ledger.audit import render

    tz = services.settings.timezone
    if kind == "json":
        body = render.report_json(kept.report)
    elif kind == "csv":
        with tempfile.TemporaryDirectory() as folder:
            render.write_csv(kept.report, folder, tz=tz)
            body = (Path(folder) / "findings.csv").read_text(encoding="utf-8")
    else:
        body = render.report_html(kept.report, tz=tz)
    when = operator_views.moment(kept.finished_s, services.settings.timezone)
    name = "voisin-audit-" + when.split(" ")[0] + "-" + when.split(" ")[1].replace(":", "")
    return Response(
        body,
        media_type=DOWNLOADS[kind],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{kind}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/ui/operator/evidence")
def evidence(
    request: Request,
    services: Svc,
    slot: Annotated[int | None, Query(ge=0, le=UINT32)] = None,
    household: Annotated[int | None, Query(ge=0, le=MAX_HOUSEHOLD_ID)] = None,
) -> Response:
    """What backs a finding: the slot's signed readings (registers, signature, transaction),
    its settled fills and its outcome, narrowed to one household when given."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    found = views.evidence(services.engine, slot, household)
    return page(
        request,
        "evidence.html",
        {"slot": slot, "household": household, "evidence": found},
        token=who[1],
    )
