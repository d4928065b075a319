"""The household's dashboard page and its forms: standing prices, taking an offer, and the
trades and monthly bill as CSV.

The forms go through the same functions as the API's routes (:mod:`api.routes.orders`), so a
price is checked against the same tariff band and an order is stored and posted on chain the
same way; the page checks each field first to say what is wrong next to it, in the reader's
language. Each form is carried out once (its one-time token, :mod:`api.web.once`), and a
successful post answers 303 See Other to the page, which says what was done (post/redirect/get,
:mod:`api.web.flash`): reloading the page never sends anything again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from api import apikeys
from api.auth import Principal
from api.deps import Svc
from api.errors import ApiError
from api.forecasts import NotEnoughHistory, hours_ahead
from api.models import ApiHousehold, ApiOrder
from api.routes import orders
from api.schemas import OrderIn, TakeIn
from api.services import Services, slot_now
from api.web import charts, export, flash, forms, i18n, once, views
from api.web.audit import live_stamp
from api.web.paths import at, root
from api.web.render import lang_of, message, page
from api.web.session import form_token_ok, signed_in
from ledger import localtime
from ledger.forecast.load import MIN_HISTORY_DAYS
from ledger.market.statements import SlotLine, Statement
from ledger.mirror.models import FillRecord
from ledger.types import Tariffs

router = APIRouter(include_in_schema=False)
SIDES = {"offer": "sell", "bid": "buy"}
MAX_TAKE_WH = 10**9


def _who(request: Request) -> tuple[Principal, str] | None:
    who = signed_in(request)
    if who is None or who[0].is_operator:
        return None
    return who


def _within_limits(services: Services, household: int) -> None:
    """One token from the household's bucket, the one its API writes use (api/ratelimit.py):
    the page is no way around the abuse limits."""
    wait = services.token_limiter.take(f"household:{household}")
    if wait > 0:
        raise forms.FieldError("err_too_fast", {"s": str(math.ceil(wait))})


def _today_chart(t: dict[str, str], lines: list[SlotLine], tz: str) -> Any:
    """Per slot, what came in and went out: settled slots split between neighbours and the
    grid, and what is not settled yet in its own colour (it is nobody's grid energy yet)."""
    total = {
        k: sum(getattr(x, k) for x in lines)
        for k in ("import_Wh", "export_Wh", "bought_Wh", "sold_Wh", "grid_import_Wh",
                  "grid_export_Wh", "pending_import_Wh", "pending_export_Wh")
    }  # fmt: skip
    alt = t["chart_today_alt"].format(
        imp=total["import_Wh"], bought=total["bought_Wh"], grid=total["grid_import_Wh"],
        exp=total["export_Wh"], sold=total["sold_Wh"], out=total["grid_export_Wh"],
        pin=total["pending_import_Wh"], pout=total["pending_export_Wh"],
    )  # fmt: skip
    return charts.mirrored_bars(
        "chart-today",
        alt,
        [i18n.slot_time(x.slot, tz) for x in lines],
        up=[
            charts.Series(t["bought_local"], charts.GREEN, [x.bought_Wh for x in lines]),
            charts.Series(t["from_grid"], charts.GREY, [x.grid_import_Wh for x in lines]),
            charts.Series(t["pending"], charts.PURPLE, [x.pending_import_Wh for x in lines]),
        ],
        down=[
            charts.Series(t["sold_local"], charts.AMBER, [x.sold_Wh for x in lines]),
            charts.Series(t["to_grid"], charts.BLUE, [x.grid_export_Wh for x in lines]),
            charts.Series(t["pending"], charts.PURPLE, [x.pending_export_Wh for x in lines]),
        ],
    )


def _tomorrow(
    services: Services, household: int, tariffs: Tariffs, t: dict[str, str]
) -> dict[str, Any]:
    """Tomorrow's hours (local) of the household's forecast, with a chart; ``None`` figures
    when there is no forecast yet (too few days of readings). ``tariffs``: the page's, from
    the mirror."""
    tz = services.settings.timezone
    try:
        issued = services.forecasts.latest(slot_now())
        own = issued.household(household)
    except NotEnoughHistory:
        return {"tomorrow_hours": None, "tomorrow_chart": None}
    if own is None:
        return {"tomorrow_hours": None, "tomorrow_chart": None}
    first = issued.issue_slot + 1
    tomorrow = localtime.local_date(slot_now(), tz) + timedelta(days=1)
    span = localtime.day_span(tomorrow, tz)
    ahead = hours_ahead(first, own, issued.pricing_area(household), tariffs, len(own.import_Wh))
    hours = [h for h in ahead if span[0] <= h.first_slot <= span[1]]
    if not hours:
        return {"tomorrow_hours": None, "tomorrow_chart": None}
    alt = t["chart_tomorrow_alt"].format(
        imp=sum(h.import_Wh for h in hours), exp=sum(h.export_Wh for h in hours)
    )
    chart = charts.mirrored_bars(
        "chart-tomorrow",
        alt,
        [i18n.slot_time(h.first_slot, tz) for h in hours],
        up=[charts.Series(t["expected_in"], charts.GREY, [h.import_Wh for h in hours])],
        down=[charts.Series(t["expected_out"], charts.AMBER, [h.export_Wh for h in hours])],
    )
    return {"tomorrow_hours": hours, "tomorrow_chart": chart}


def _decisions(
    engine: Engine, record: ApiHousehold, month: Statement | None, band: views.Band,
    offer: ApiOrder | None, bid: ApiOrder | None,
) -> dict[str, Any]:  # fmt: skip
    """What each household decides with: a seller, its minimum against the neighbours' bids
    and the recent clearing prices, and what selling locally earned against feed-in; a buyer,
    its all-in price against retail."""
    minimum = offer.price_limit_ueur_per_kWh if offer else None
    recent = [o for o in views.outcomes(engine, limit=8) if o.clearing_price_ueur_per_kWh]
    ceiling = bid.price_limit_ueur_per_kWh if bid else None
    return {
        "recent_prices": recent,
        "depth": views.bid_depth(engine, record.id or 0, minimum) if record.prosumer else None,
        "minimum": minimum,
        "bid_all_in": (ceiling + band.tariffs.grid_fee_ueur_per_kWh) if ceiling else None,
        "avg_all_in": (
            (month.paid_local_ueur + month.fees_ueur) * 1000 // month.bought_Wh
            if month and month.bought_Wh
            else None
        ),
    }


def _context(services: Services, who: Principal, lang: str) -> dict[str, Any]:
    engine = services.engine
    tz = services.settings.timezone
    hid = who.household
    assert hid is not None
    record = views.household(engine, hid)
    assert record is not None
    now = slot_now()
    today = views.statement(engine, hid, views.day_slots(now, tz))
    at = localtime.slot_start(now, tz)
    month = views.statement(engine, hid, views.month_slots(at.year, at.month, now, tz))
    band = views.band(engine, services.tariffs_at_deploy)
    t = i18n.text(lang)
    lines = list(today.lines) if today else []
    offers = views.open_offers(engine, not_of=hid)
    offer = views.standing(engine, hid, "offer") if record.prosumer else None
    bid = views.standing(engine, hid, "bid")
    trades = views.trades(engine, hid)
    return {
        "who": record,
        "balance": views.balance_ueur(engine, record.account),
        "today": today,
        "today_lines": lines,
        "chart": _today_chart(t, lines, tz) if lines else None,
        "month": month,
        "this_month": f"{at:%Y-%m}",
        "band": band,
        "offer": offer,
        "bid": bid,
        "offers": offers,
        "take_slots": views.takeable(engine, hid, offers, now - views.SLOTS_PER_DAY, now),
        "trades": trades,
        "trades_total": _trades_total(hid, trades),
        "privacy": _privacy_texts(lang),
        "apps": _apps(engine, hid, tz),
        "forecast_days": MIN_HISTORY_DAYS,
        **_tomorrow(services, hid, band.tariffs, t),
        **_decisions(engine, record, month, band, offer, bid),
    }


def _trades_total(household: int, trades: list[FillRecord]) -> dict[str, int]:
    """The sums of the trade rows shown (money exact, as each row is)."""
    sold = [f for f in trades if f.seller == household]
    bought = [f for f in trades if f.seller != household]
    return {
        "sold_Wh": sum(f.energy_Wh for f in sold),
        "bought_Wh": sum(f.energy_Wh for f in bought),
        "amount_ueur": sum(f.cost_ueur for f in sold) - sum(f.cost_ueur for f in bought),
        "fees_ueur": sum(f.fee_ueur for f in bought),
    }


def _render(
    request: Request,
    services: Services,
    who: tuple[Principal, str],
    status: int = 200,
    **extra: Any,
) -> Response:
    stamp = live_stamp(services.engine, services.client.address, operator=False)
    context = _context(services, who[0], lang_of(request))
    context["live_stamp"] = stamp
    # The language links come back to the page itself, whichever form rendered it.
    context["here"] = at(request, "/ui/household")
    return page(request, "household.html", {**context, **extra}, token=who[1], status=status)


@router.get("/ui/household")
def household_page(request: Request, services: Svc) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    return _render(request, services, who)


HOME = "/ui/household"


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
    earlier = once.claim(services.engine, f"household:{who[0].household}", form, sent)
    if earlier is None:
        return None
    return flash.redirect(request, HOME, who[1], earlier.again())


def _refused(
    request: Request, services: Services, who: tuple[Principal, str], field: str,
    error: forms.FieldError, values: dict[str, str],
) -> Response:  # fmt: skip
    text = message(lang_of(request), error)
    return _render(request, services, who, 422, errors={field: text}, values=values)


@router.post("/ui/household/price")
def set_price(
    request: Request,
    services: Svc,
    side: Annotated[str, Form(pattern="^(offer|bid)$")],
    price: Annotated[str, Form(max_length=40)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    """Set the household's standing price on one side: a new standing order first, then the
    older ones cancelled, so there is no slot without an order.

    The orders to cancel are read after the post, and they are those older than the new one:
    of two prices set at once (two tabs), the one posted last stays live, and only it."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    field = f"{side}_price"
    if not form_token_ok(who[1], form_token):
        return _refused(request, services, who, field, forms.FieldError("err_session"), {})
    again = _sent_before(request, services, who, side, once_token)
    if again is not None:
        return again
    band = views.band(services.engine, services.tariffs_at_deploy)
    lang = lang_of(request)
    shown = {
        "lo": i18n.cents_per_kWh(band.floor, lang),
        "hi": i18n.cents_per_kWh(band.ceiling, lang),
    }
    try:
        value = forms.price(price, band.floor, band.ceiling, shown, lang)
        _within_limits(services, who[0].household or 0)
        if not once.valid(who[1], side, once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return _refused(request, services, who, field, error, {field: price})
    raced = _use_up(request, services, who, side, once_token)
    if raced is not None:
        return raced
    # Standing from slot 1, like the agent's defaults it replaces: settled slots are never
    # cleared again, so it applies to every slot not yet settled (the last one included).
    body = OrderIn(price_limit_ueur_per_kWh=value, first_slot=1)
    post = orders.post_offer if side == "offer" else orders.post_bid
    cancel = orders.delete_offer if side == "offer" else orders.delete_bid
    try:
        new_id = int(json.loads(bytes(post(body, who[0], services).body))["id"])
        for old in views.own_live_orders(services.engine, who[0].household or 0, side):
            if (old.id or 0) < new_id:
                _cancelled(cancel, old.id or 0, who[0], services)
    except ApiError as exc:
        refused = forms.refused(exc.code)
        once.record(services.engine, once_token, _server(refused), refused=True)
        return _refused(request, services, who, field, refused, {field: price})
    saved = once.Outcome(
        "saved_sell" if side == "offer" else "saved_buy", {"price_ueur_per_kWh": value}
    )
    once.record(services.engine, once_token, saved)
    return flash.redirect(request, HOME, who[1], saved)


def _cancelled(
    cancel: Callable[[int, Principal, Services], Response],
    order_id: int,
    who: Principal,
    services: Services,
) -> None:
    """Cancel an older order; one closed meanwhile (another tab's change) is as good."""
    try:
        cancel(order_id, who, services)
    except ApiError as exc:
        if exc.code != "order_closed":
            raise


def _server(refused: forms.FieldError) -> once.Outcome:
    """A refusal by the API, as a form's outcome (in the reader's language when shown)."""
    return once.Outcome(refused.key, dict(refused.values))


@router.post("/ui/household/take")
def take_offer(
    request: Request,
    services: Svc,
    offer: Annotated[str, Form(max_length=20)] = "",
    slot: Annotated[str, Form(max_length=20)] = "",
    max_Wh: Annotated[str, Form(max_length=40)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    if form_token_ok(who[1], form_token):
        again = _sent_before(request, services, who, "take", once_token)
        if again is not None:
            return again
    hid = who[0].household or 0
    open_now = views.open_offers(services.engine, not_of=hid, limit=500)
    open_ids = {o.id or 0 for o in open_now}
    values = {f"take_slot_{offer}": slot, f"take_qty_{offer}": max_Wh}
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        offer_id = forms.choice(offer, open_ids)
    except forms.FieldError as error:
        return _refused(request, services, who, "take", error, values)
    now = slot_now()
    chosen_offer = [o for o in open_now if o.id == offer_id]
    slots = views.takeable(services.engine, hid, chosen_offer, now - views.SLOTS_PER_DAY, now)
    try:
        chosen = forms.choice(slot, set(slots.get(offer_id, [])))
    except forms.FieldError as error:
        return _refused(request, services, who, f"take_slot_{offer_id}", error, values)
    try:
        energy = forms.whole(max_Wh, MAX_TAKE_WH, lang_of(request))
        _within_limits(services, hid)
    except forms.FieldError as error:
        return _refused(request, services, who, f"take_qty_{offer_id}", error, values)
    if not once.valid(who[1], "take", once_token, root(request)):
        expired = forms.FieldError("err_session")
        return _refused(request, services, who, "take", expired, values)
    raced = _use_up(request, services, who, "take", once_token)
    if raced is not None:
        return raced
    try:
        done = orders.take(offer_id, TakeIn(slot=chosen, max_Wh=energy), who[0], services)
    except ApiError as exc:
        refused = forms.refused(exc.code)
        once.record(services.engine, once_token, _server(refused), refused=True)
        return _refused(request, services, who, f"take_qty_{offer_id}", refused, values)
    took = once.Outcome(
        "took",
        {
            "energy_Wh": done.energy_Wh,
            "price_ueur_per_kWh": done.price_ueur_per_kWh,
            "paid_ueur": done.cost_ueur + done.fee_ueur,
        },
    )
    once.record(services.engine, once_token, took)
    return flash.redirect(request, HOME, who[1], took)


# ───────────────────────────── Apps and consents ─────────────────────────────


def _apps(engine: Engine, household: int, tz: str) -> list[dict[str, Any]]:
    """The apps that may read households' data, with this household's consent to each (the
    time it was granted in the neighbourhood's local time)."""
    return [
        {
            "id": a.id,
            "name": a.name,
            "prefix": a.prefix,
            "granted": a.granted,
            "at": a.granted_at.astimezone(localtime.zone(tz)).strftime("%Y-%m-%d %H:%M")
            if a.granted_at
            else "",
        }
        for a in apikeys.apps_for(engine, household)
    ]


@router.post("/ui/household/consent")
def consent(
    request: Request,
    services: Svc,
    app: Annotated[str, Form(max_length=20)] = "",
    action: Annotated[str, Form(pattern="^(grant|withdraw)$")] = "grant",
    form_token: Annotated[str, Form(max_length=100)] = "",
    once_token: Annotated[str, Form(alias="once", max_length=200)] = "",
) -> Response:
    """Allow an app (an API key with ``household:read``) to read the household's data, or
    withdraw it: what ``POST`` and ``DELETE /v1/households/{id}/consents/{key_id}`` do, with
    the same functions (:mod:`api.apikeys`)."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    if form_token_ok(who[1], form_token):
        again = _sent_before(request, services, who, "consent", once_token)
        if again is not None:
            return again
    hid = who[0].household or 0
    apps = {a.id: a for a in apikeys.apps_for(services.engine, hid)}
    try:
        if not form_token_ok(who[1], form_token):
            raise forms.FieldError("err_session")
        key_id = forms.choice(app, set(apps))
        _within_limits(services, hid)
        if not once.valid(who[1], "consent", once_token, root(request)):
            raise forms.FieldError("err_session")
    except forms.FieldError as error:
        return _refused(request, services, who, "consent", error, {})
    raced = _use_up(request, services, who, "consent", once_token)
    if raced is not None:
        return raced
    granting = action == "grant"
    try:
        if granting:
            apikeys.grant(services.engine, hid, key_id)
        else:
            apikeys.withdraw(services.engine, hid, key_id)
    except ApiError as exc:
        # Withdrawn already (another tab): what was asked holds.
        if granting or exc.code != "no_consent":
            refused = forms.refused(exc.code)
            once.record(services.engine, once_token, _server(refused), refused=True)
            return _refused(request, services, who, "consent", refused, {})
    done = once.Outcome(
        "consent_granted" if granting else "consent_withdrawn", {"app": apps[key_id].name}
    )
    once.record(services.engine, once_token, done)
    return flash.redirect(request, HOME, who[1], done)


@router.get("/ui/household/trades.csv")
def trades_csv(request: Request, services: Svc) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    hid = who[0].household or 0
    rows = views.trades(services.engine, hid, limit=None)
    return export.csv_response(
        export.trades_csv(hid, rows, services.settings.timezone, lang_of(request)),
        f"voisin-trades-{hid}.csv",
    )


@router.get("/ui/household/bill.csv")
def bill_csv(
    request: Request, services: Svc, month: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    hid = who[0].household or 0
    try:
        year, number = forms.month(month)
    except forms.FieldError as error:
        return _refused(request, services, who, "month", error, {"month": month})
    span = views.month_slots(year, number, slot_now(), services.settings.timezone)
    statement = views.statement(services.engine, hid, span)
    text = export.bill_csv(
        hid, f"{year:04d}-{number:02d}", statement, services.settings.timezone, lang_of(request)
    )
    return export.csv_response(text, f"voisin-bill-{hid}-{year:04d}-{number:02d}.csv")


# ───────────────────────────── Your data: export and erasure ─────────────────────────────


def _privacy_texts(lang: str) -> dict[str, str]:
    from api.privacy import page_texts

    return page_texts(lang)


def _export(request: Request, services: Services, form: str) -> Response:
    from fastapi.responses import StreamingResponse

    from api import privacy

    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    hid = who[0].household or 0
    tz = services.settings.timezone
    parts = privacy.sections(services.engine, hid, tz)
    chunks = privacy.json_chunks if form == "json" else privacy.zip_chunks
    media = "application/json" if form == "json" else "application/zip"
    name = f"voisin-household-{hid}.{'json' if form == 'json' else 'zip'}"
    return StreamingResponse(
        chunks(hid, parts, tz),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/ui/household/export.json")
def export_json(request: Request, services: Svc) -> Response:
    """Everything Voisin holds about the household, as ``GET /households/{id}/export``."""
    return _export(request, services, "json")


@router.get("/ui/household/export.zip")
def export_zip(request: Request, services: Svc) -> Response:
    """The same, as a zip of one CSV per kind."""
    return _export(request, services, "csv")


@router.get("/ui/household/erasure")
def erasure_step(request: Request, services: Svc) -> Response:
    """The erasure's confirmation step: what goes, what stays, the balance refunded."""
    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    return _render(request, services, who, erasure_confirm=True)


@router.post("/ui/household/erasure")
def erase(
    request: Request,
    services: Svc,
    confirm: Annotated[str, Form(max_length=10)] = "",
    form_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Erase the household's personal data once the box is ticked, as
    ``POST /households/{id}/erasure`` does; then sign it out for good. Sent again (a reload),
    it finds nobody signed in and goes to the sign-in page: nothing more happens."""
    from api import privacy
    from api.routes.privacy import ask_erasure
    from api.web.session import TOKEN_COOKIE

    who = _who(request)
    if who is None:
        return RedirectResponse(at(request, "/"), 303)
    lang = lang_of(request)
    texts = _privacy_texts(lang)
    hid = who[0].household or 0
    if not form_token_ok(who[1], form_token):
        error = message(lang, forms.FieldError("err_session"))
        return _render(request, services, who, 422, erasure_confirm=True, errors={"erasure": error})
    if confirm != "yes":
        errors = {"erasure": texts["err_confirm"]}
        return _render(request, services, who, 422, erasure_confirm=True, errors=errors)
    try:
        done = ask_erasure(services, hid, privacy.confirmation(hid), who[0])
    except ApiError as exc:
        errors = {"erasure": message(lang, forms.refused(exc.code))}
        return _render(request, services, who, exc.status, erasure_confirm=True, errors=errors)
    when = privacy.local_iso(done.erased_at, services.settings.timezone) or ""
    notice = texts["erased_text"].format(id=hid, when=when[:16].replace("T", " "))
    response = page(request, "signin.html", {"notice": notice, "here": at(request, "/")})
    response.delete_cookie(TOKEN_COOKIE, path=at(request, "/"))
    return response
