"""The grid operator's dashboard page: neighbourhood flows and clearing prices per slot, the
audit with links to each finding's evidence, the feeder check, and the forms to register a
household, replace its meter and top it up (through the API's own route functions).

Each form is carried out once (its one-time token, :mod:`api.web.once`), and a successful post
answers 303 See Other to the page, which says what was done (post/redirect/get,
:mod:`api.web.flash`): reloading the page never tops up or registers again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Svc
from api.errors import ApiError
from api.routes import households, topups
from api.schemas import (
    MAX_HOUSEHOLD_ID,
    MAX_TOPUP_UEUR,
    MAX_WH,
    UINT32,
    HouseholdIn,
    MeterIn,
    TopUpIn,
    plain_text,
)
from api.services import Services
from api.web import audit, charts, flash, forms, i18n, once, views
from api.web.render import lang_of, message, page
from api.web.session import form_token_ok, signed_in

router = APIRouter(include_in_schema=False)


def _who(request: Request) -> tuple[Principal, str] | None:
    who = signed_in(request)
    return who if who is not None and who[0].is_operator else None


def _market(services: Services, t: dict[str, str], lang: str) -> dict[str, Any]:
    rows = views.outcomes(services.engine)
    band = views.band(services.engine, services.tariffs_at_deploy)
    labels = [i18n.slot_time(r.slot, services.settings.timezone) for r in rows]
    context: dict[str, Any] = {
        "outcomes": rows,
        "band": band,
        "households": views.households(services.engine),
        "flows_chart": None,
        "prices_chart": None,
    }
    if rows:
        alt = t["flows_alt"].format(
            n=len(rows),
            s=sum(r.surplus_Wh for r in rows),
            d=sum(r.deficit_Wh for r in rows),
            m=sum(r.matched_Wh for r in rows),
        )
        context["flows_chart"] = charts.grouped_bars(
            "chart-flows",
            alt,
            labels,
            [
                charts.Series(t["surplus"], charts.AMBER, [r.surplus_Wh for r in rows]),
                charts.Series(t["deficit"], charts.GREY, [r.deficit_Wh for r in rows]),
                charts.Series(t["matched"], charts.GREEN, [r.matched_Wh for r in rows]),
            ],
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
        context["prices_chart"] = charts.points_in_band(
            "chart-prices", alt, labels, prices, prices, (band.floor, band.ceiling), "c€", 10_000
        )
    return context


def _feeder(view: audit.AuditView, t: dict[str, str], tz: str) -> dict[str, Any]:
    feeder = view.report.get("feeder") if view.report else None
    rows = audit.feeder_rows(feeder)
    v_low, v_high = audit.voltage_band(feeder)
    chart = None
    lows = [round(r.v_min_pu * 1000) if r.v_min_pu is not None else None for r in rows]
    highs = [round(r.v_max_pu * 1000) if r.v_max_pu is not None else None for r in rows]
    seen = [v for v in [*lows, *highs] if v is not None]
    if seen:
        loads = [r.loading_percent for r in rows if r.loading_percent is not None]
        alt = t["feeder_alt"].format(
            n=len(rows), lo=min(seen) / 1000, hi=max(seen) / 1000,
            load=f"{max(loads):.0f}" if loads else "?",
        )  # fmt: skip
        labels = [i18n.slot_time(r.slot, tz) for r in rows]
        chart = charts.points_in_band(
            "chart-feeder",
            alt,
            labels,
            lows,
            highs,
            (round(v_low * 1000), round(v_high * 1000)),
            "pu",
            1000,
        )
    return {"feeder_rows": rows, "feeder_chart": chart, "feeder_run": bool(feeder)}


async def _render(
    request: Request, services: Services, who: tuple[Principal, str], status: int = 200,
    **extra: Any,
) -> Response:  # fmt: skip
    lang = lang_of(request)
    t = i18n.text(lang)
    context = await run_in_threadpool(_market, services, t, lang)
    view = await audit.fetch(request.app, who[1])
    # The power flows cost about 0.1 s a slot: run them for the slots the page shows only.
    feeder = audit.AuditView(None, None)
    shown = context["outcomes"]
    if view.report is not None and shown:
        window = {"from": str(shown[0].slot), "to": str(shown[-1].slot), "feeder": "true"}
        feeder = await audit.fetch(request.app, who[1], window)
    context |= {
        "audit": view,
        **_feeder(feeder, t, services.settings.timezone),
        "here": "/ui/operator",
    }
    return page(request, "operator.html", {**context, **extra}, token=who[1], status=status)


@router.get("/ui/operator")
async def operator_page(request: Request, services: Svc) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse("/", 303)
    return await _render(request, services, who)


HOME = "/ui/operator"


def _sent_before(
    request: Request, services: Services, who: tuple[Principal, str], form: str, sent: str
) -> Response | None:
    """If this form's one-time token was used already: the page, saying what came of it."""
    if not once.valid(who[1], form, sent):
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


def _refusal(exc: ApiError) -> once.Outcome:
    """A refusal by the API, as a form's outcome."""
    return once.Outcome("err_server", {"m": exc.message})


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
        return RedirectResponse("/", 303)
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
        import_baseline = forms.register_Wh(import_Wh, MAX_WH)
        field = "export_Wh"
        export_baseline = forms.register_Wh(export_Wh, MAX_WH)
        field = "name"
        try:
            plain_text(name)
        except ValueError as exc:
            raise forms.FieldError("err_server", {"m": str(exc)}) from exc
        field = "meter"
        if not once.valid(who[1], "register", once_token):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return await _render(
            request, services, who, 422, errors={field: message(lang, error)}, values=values
        )
    body = HouseholdIn(
        meter=address,
        prosumer=bool(prosumer),
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
        await run_in_threadpool(
            once.record, services.engine, once_token, _refusal(exc), refused=True
        )
        text = message(lang, forms.FieldError("err_server", {"m": exc.message}))
        return await _render(request, services, who, 422, errors={"meter": text}, values=values)
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
        return RedirectResponse("/", 303)
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
        import_baseline = forms.register_Wh(import_Wh, MAX_WH)
        field = "new_export_Wh"
        export_baseline = forms.register_Wh(export_Wh, MAX_WH)
        body = MeterIn(
            meter=address, import_baseline_Wh=import_baseline, export_baseline_Wh=export_baseline
        )
        field = "new_meter"
        if not once.valid(who[1], "meter", once_token):
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
        await run_in_threadpool(
            once.record, services.engine, once_token, _refusal(exc), refused=True
        )
        text = message(lang, forms.FieldError("err_server", {"m": exc.message}))
        return await _render(request, services, who, 422, errors={field: text}, values=values)
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
        return RedirectResponse("/", 303)
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
        amount_ueur = forms.euros(amount, MAX_TOPUP_UEUR)
        body = TopUpIn(household=target, amount_ueur=amount_ueur)
        if not once.valid(who[1], "topup", once_token):
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
        await run_in_threadpool(
            once.record, services.engine, once_token, _refusal(exc), refused=True
        )
        text = message(lang, forms.FieldError("err_server", {"m": exc.message}))
        return await _render(request, services, who, 422, errors={field: text}, values=values)
    topped = once.Outcome("topped_up", {"amount_ueur": amount_ueur, "household": target})
    await run_in_threadpool(once.record, services.engine, once_token, topped)
    return flash.redirect(request, HOME, who[1], topped)


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
        return RedirectResponse("/", 303)
    found = views.evidence(services.engine, slot, household)
    return page(
        request,
        "evidence.html",
        {"slot": slot, "household": household, "evidence": found},
        token=who[1],
    )
