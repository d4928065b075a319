from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.statement_response_statement import StatementResponseStatement
from ...types import UNSET, Response


def _get_kwargs(
    household: int,
    *,
    from_: int,
    to: int,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["from"] = from_

    params["to"] = to

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/households/{household}/statement".format(
            household=quote(str(household), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | StatementResponseStatement | None:
    if response.status_code == 200:
        response_200 = StatementResponseStatement.from_dict(response.json())

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | StatementResponseStatement]:
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
    from_: int,
    to: int,
) -> Response[Problem | StatementResponseStatement]:
    """The bill over a slot range, with savings against grid-only supply

     Local energy bought and sold, grid import and export, what was paid, earned and paid in
    fees, and the savings: what the same meter data would have cost with no local market,
    minus what the household actually paid. Slots ``from``..``to`` inclusive.

    Each line has a ``status``: ``settled``, or ``pending`` until the settlement has run for
    its slot. On a pending line the energy not yet traded is under ``pending_import_Wh`` and
    ``pending_export_Wh`` (not the grid's), no grid price is charged, and the savings leave it
    out; ``pending_slots`` counts them.

    Args:
        household (int): Household id
        from_ (int):
        to (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | StatementResponseStatement]
    """

    kwargs = _get_kwargs(
        household=household,
        from_=from_,
        to=to,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    household: int,
    *,
    client: AuthenticatedClient,
    from_: int,
    to: int,
) -> Problem | StatementResponseStatement | None:
    """The bill over a slot range, with savings against grid-only supply

     Local energy bought and sold, grid import and export, what was paid, earned and paid in
    fees, and the savings: what the same meter data would have cost with no local market,
    minus what the household actually paid. Slots ``from``..``to`` inclusive.

    Each line has a ``status``: ``settled``, or ``pending`` until the settlement has run for
    its slot. On a pending line the energy not yet traded is under ``pending_import_Wh`` and
    ``pending_export_Wh`` (not the grid's), no grid price is charged, and the savings leave it
    out; ``pending_slots`` counts them.

    Args:
        household (int): Household id
        from_ (int):
        to (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | StatementResponseStatement
    """

    return sync_detailed(
        household=household,
        client=client,
        from_=from_,
        to=to,
    ).parsed


async def asyncio_detailed(
    household: int,
    *,
    client: AuthenticatedClient,
    from_: int,
    to: int,
) -> Response[Problem | StatementResponseStatement]:
    """The bill over a slot range, with savings against grid-only supply

     Local energy bought and sold, grid import and export, what was paid, earned and paid in
    fees, and the savings: what the same meter data would have cost with no local market,
    minus what the household actually paid. Slots ``from``..``to`` inclusive.

    Each line has a ``status``: ``settled``, or ``pending`` until the settlement has run for
    its slot. On a pending line the energy not yet traded is under ``pending_import_Wh`` and
    ``pending_export_Wh`` (not the grid's), no grid price is charged, and the savings leave it
    out; ``pending_slots`` counts them.

    Args:
        household (int): Household id
        from_ (int):
        to (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | StatementResponseStatement]
    """

    kwargs = _get_kwargs(
        household=household,
        from_=from_,
        to=to,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    household: int,
    *,
    client: AuthenticatedClient,
    from_: int,
    to: int,
) -> Problem | StatementResponseStatement | None:
    """The bill over a slot range, with savings against grid-only supply

     Local energy bought and sold, grid import and export, what was paid, earned and paid in
    fees, and the savings: what the same meter data would have cost with no local market,
    minus what the household actually paid. Slots ``from``..``to`` inclusive.

    Each line has a ``status``: ``settled``, or ``pending`` until the settlement has run for
    its slot. On a pending line the energy not yet traded is under ``pending_import_Wh`` and
    ``pending_export_Wh`` (not the grid's), no grid price is charged, and the savings leave it
    out; ``pending_slots`` counts them.

    Args:
        household (int): Household id
        from_ (int):
        to (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | StatementResponseStatement
    """

    return (
        await asyncio_detailed(
            household=household,
            client=client,
            from_=from_,
            to=to,
        )
    ).parsed
