from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.list_bids_status_type_0 import ListBidsStatusType0
from ...models.page_order_out import PageOrderOut
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    household: int | None | Unset = UNSET,
    slot: int | None | Unset = UNSET,
    status: ListBidsStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_household: int | None | Unset
    if isinstance(household, Unset):
        json_household = UNSET
    else:
        json_household = household
    params["household"] = json_household

    json_slot: int | None | Unset
    if isinstance(slot, Unset):
        json_slot = UNSET
    else:
        json_slot = slot
    params["slot"] = json_slot

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, ListBidsStatusType0):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    params["limit"] = limit

    params["offset"] = offset

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/bids",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> PageOrderOut | Problem | None:
    if response.status_code == 200:
        response_200 = PageOrderOut.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

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
) -> Response[PageOrderOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    household: int | None | Unset = UNSET,
    slot: int | None | Unset = UNSET,
    status: ListBidsStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Response[PageOrderOut | Problem]:
    """List bids

    Args:
        household (int | None | Unset):
        slot (int | None | Unset):
        status (ListBidsStatusType0 | None | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageOrderOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        slot=slot,
        status=status,
        limit=limit,
        offset=offset,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    household: int | None | Unset = UNSET,
    slot: int | None | Unset = UNSET,
    status: ListBidsStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> PageOrderOut | Problem | None:
    """List bids

    Args:
        household (int | None | Unset):
        slot (int | None | Unset):
        status (ListBidsStatusType0 | None | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageOrderOut | Problem
    """

    return sync_detailed(
        client=client,
        household=household,
        slot=slot,
        status=status,
        limit=limit,
        offset=offset,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    household: int | None | Unset = UNSET,
    slot: int | None | Unset = UNSET,
    status: ListBidsStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> Response[PageOrderOut | Problem]:
    """List bids

    Args:
        household (int | None | Unset):
        slot (int | None | Unset):
        status (ListBidsStatusType0 | None | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageOrderOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        slot=slot,
        status=status,
        limit=limit,
        offset=offset,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    household: int | None | Unset = UNSET,
    slot: int | None | Unset = UNSET,
    status: ListBidsStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
) -> PageOrderOut | Problem | None:
    """List bids

    Args:
        household (int | None | Unset):
        slot (int | None | Unset):
        status (ListBidsStatusType0 | None | Unset):
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageOrderOut | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            household=household,
            slot=slot,
            status=status,
            limit=limit,
            offset=offset,
        )
    ).parsed
