"""Every error the API returns is JSON: ``{"code": "...", "message": "..."}``.

``code`` is a stable machine code; ``message`` says what was wrong and what is allowed. Ledger
errors map by category: input rejected -> 422, conflict -> 409, not found -> 404, access
denied -> 403, paused or chain unreachable -> 503. Anything unexpected is logged with its
traceback and answered 500 ``internal_error`` in the same shape, never as plain text.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import errors as ledger_errors

log = logging.getLogger("voisin.api")


class ApiError(Exception):
    """An error answered as ``status`` with ``{"code", "message"}`` (and optional details)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def chain_unavailable(exc: BaseException) -> ApiError:
    return ApiError(503, "chain_unavailable", f"the chain cannot be reached: {exc}; try again")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def from_ledger(exc: ledger_errors.LedgerError) -> ApiError:
    """The API error for a ledger error (a contract revert or a chain problem)."""
    message = str(exc)
    if isinstance(exc, ledger_errors.ContractError):
        code = _snake(type(exc).__name__)
        if isinstance(exc, ledger_errors.LedgerPaused):
            return ApiError(503, code, f"the ledger is paused by the operator: {message}")
        if isinstance(exc, ledger_errors.NotFound):
            return ApiError(404, code, message)
        if isinstance(exc, ledger_errors.AccessDenied):
            return ApiError(403, code, message)
        if isinstance(exc, ledger_errors.Conflict):
            return ApiError(409, code, message)
        return ApiError(422, code, message)
    if isinstance(exc, ledger_errors.ChainUnavailable):
        return chain_unavailable(exc)
    if isinstance(exc, ledger_errors.NoGasMoney):
        return ApiError(409, "no_gas_money", message)
    return ApiError(502, "chain_error", f"the chain refused the transaction: {message}")


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return body


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape above."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            # A validator's ValueError reads "Value error, <what>": the <what> is the message.
            problem = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append({"field": where, "problem": problem})
        first = problems[0] if problems else {"field": "", "problem": "invalid input"}
        message = f"{first['field'] or 'request'}: {first['problem']}"
        return JSONResponse(_body("invalid_input", message, problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Starlette could not parse the body (not UTF-8 JSON): bad input like any other.
            return JSONResponse(
                _body("invalid_input", f"the body must be a JSON document: {exc.detail}"), 422
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Every method some route takes at this path, not only the first route's.
            headers["Allow"] = ", ".join(_allowed_methods(request))
            message = f"{request.method} is not allowed here; use {headers['Allow']}"
            return JSONResponse(_body("method_not_allowed", message), 405, headers=headers)
        codes = {404: "not_found", 413: "payload_too_large"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(_body(code, str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(ledger_errors.LedgerError)
    async def ledger_error(_: Request, exc: ledger_errors.LedgerError) -> JSONResponse:
        err = from_ledger(exc)
        return JSONResponse(_body(err.code, err.message), err.status)

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse(
            _body("database_unavailable", f"the database cannot be reached: {exc.orig}"), 503
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware calls this for whatever nothing else handled, then
        # re-raises for the server's own log. The answer names no internals: the log has them.
        log.error(
            "%s %s failed: %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        message = (
            "the server failed while handling this request; the error is logged for the "
            "operator. Check with a GET before retrying a write"
        )
        return JSONResponse(_body("internal_error", message), 500)


async def reject_unknown_query(request: Request) -> None:
    """A dependency: refuse query parameters the route does not take (a typo such as
    ``?housheold=3`` would otherwise silently widen a listing), and a one-value parameter given
    twice (``?household=1&household=2``: FastAPI keeps the last, a proxy or a log may read the
    first, as with duplicate JSON keys). async, as it does no I/O: FastAPI would run a plain def
    in a worker thread."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    params = _query_params(dependant)
    known = {p.alias for p in params}
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ApiError(
            422,
            "invalid_input",
            f"unknown query parameter(s) {', '.join(repr(u) for u in unknown)}; allowed: {allowed}",
        )
    single = {p.alias for p in params if not _takes_many(p)}
    given = Counter(key for key, _ in request.query_params.multi_items())
    repeated = sorted(key for key, n in given.items() if n > 1 and key in single)
    if repeated:
        raise ApiError(
            422,
            "invalid_input",
            f"query parameter {repeated[0]!r} is given {given[repeated[0]]} times; give it once",
            details=[
                {"field": f"query.{key}", "problem": "given more than once"} for key in repeated
            ],
        )


def _takes_many(param: Any) -> bool:
    """Whether a query parameter is declared as a list (``?x=1&x=2`` is then meant)."""
    annotation = getattr(getattr(param, "field_info", None), "annotation", None)
    return any(
        get_origin(a) in (list, set, tuple, frozenset) for a in (annotation, *get_args(annotation))
    )


def _query_params(dependant: Any) -> list[Any]:
    params = list(dependant.query_params)
    for sub in dependant.dependencies:
        params += _query_params(sub)
    return params


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI schema documents for the request's path. A path documented
    as it is (``/webhooks/deliveries``) has only its own, not those of a template beside it
    (``/webhooks/{webhook_id}``, whose route takes digits only, as routing does)."""
    paths = request.app.openapi()["paths"]
    if request.url.path in paths:
        return sorted(method.upper() for method in paths[request.url.path])
    allowed: set[str] = set()
    for template, operations in paths.items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, request.url.path):
            allowed |= {method.upper() for method in operations}
    return sorted(allowed)
