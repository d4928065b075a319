from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.export_format import ExportFormat
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    household: int,
    *,
    format_: ExportFormat | Unset = ExportFormat.JSON,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/households/{household}/export".format(
            household=quote(str(household), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | None:
    if response.status_code == 200:
        response_200 = cast(Any, None)
        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    household: int,
    *,
    client: AuthenticatedClient,
    format_: ExportFormat | Unset = ExportFormat.JSON,
) -> Response[Any | Problem]:
    """Everything Voisin holds about a household (the household itself or the operator)

     Its identity, its addresses, its signed readings (with their signatures) as received
    and as committed, its orders, its trades, its monthly statements, its top-ups, its consents
    and its erasure, if any: nothing of another household but the id of a trade's
    counterpart. Every time is given in UTC and in the neighbourhood's local time
    (``VOISIN_TIMEZONE``). ``format=json`` (the default) gives one JSON document,
    ``{"format", "household", "timezone", "generated_at_utc", ..., "data": {kind: [rows]}}``;
    ``format=csv`` a zip of one CSV per kind with a README. Streamed: a long history is not
    held in memory.

    Args:
        household (int): Household id
        format_ (ExportFormat | Unset):  Default: ExportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        format_=format_,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    household: int,
    *,
    client: AuthenticatedClient,
    format_: ExportFormat | Unset = ExportFormat.JSON,
) -> Any | Problem | None:
    """Everything Voisin holds about a household (the household itself or the operator)

     Its identity, its addresses, its signed readings (with their signatures) as received
    and as committed, its orders, its trades, its monthly statements, its top-ups, its consents
    and its erasure, if any: nothing of another household but the id of a trade's
    counterpart. Every time is given in UTC and in the neighbourhood's local time
    (``VOISIN_TIMEZONE``). ``format=json`` (the default) gives one JSON document,
    ``{"format", "household", "timezone", "generated_at_utc", ..., "data": {kind: [rows]}}``;
    ``format=csv`` a zip of one CSV per kind with a README. Streamed: a long history is not
    held in memory.

    Args:
        household (int): Household id
        format_ (ExportFormat | Unset):  Default: ExportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return sync_detailed(
        household=household,
        client=client,
        format_=format_,
    ).parsed


async def asyncio_detailed(
    household: int,
    *,
    client: AuthenticatedClient,
    format_: ExportFormat | Unset = ExportFormat.JSON,
) -> Response[Any | Problem]:
    """Everything Voisin holds about a household (the household itself or the operator)

     Its identity, its addresses, its signed readings (with their signatures) as received
    and as committed, its orders, its trades, its monthly statements, its top-ups, its consents
    and its erasure, if any: nothing of another household but the id of a trade's
    counterpart. Every time is given in UTC and in the neighbourhood's local time
    (``VOISIN_TIMEZONE``). ``format=json`` (the default) gives one JSON document,
    ``{"format", "household", "timezone", "generated_at_utc", ..., "data": {kind: [rows]}}``;
    ``format=csv`` a zip of one CSV per kind with a README. Streamed: a long history is not
    held in memory.

    Args:
        household (int): Household id
        format_ (ExportFormat | Unset):  Default: ExportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        format_=format_,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    household: int,
    *,
    client: AuthenticatedClient,
    format_: ExportFormat | Unset = ExportFormat.JSON,
) -> Any | Problem | None:
    """Everything Voisin holds about a household (the household itself or the operator)

     Its identity, its addresses, its signed readings (with their signatures) as received
    and as committed, its orders, its trades, its monthly statements, its top-ups, its consents
    and its erasure, if any: nothing of another household but the id of a trade's
    counterpart. Every time is given in UTC and in the neighbourhood's local time
    (``VOISIN_TIMEZONE``). ``format=json`` (the default) gives one JSON document,
    ``{"format", "household", "timezone", "generated_at_utc", ..., "data": {kind: [rows]}}``;
    ``format=csv`` a zip of one CSV per kind with a README. Streamed: a long history is not
    held in memory.

    Args:
        household (int): Household id
        format_ (ExportFormat | Unset):  Default: ExportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return (
        await asyncio_detailed(
            household=household,
            client=client,
            format_=format_,
        )
    ).parsed
