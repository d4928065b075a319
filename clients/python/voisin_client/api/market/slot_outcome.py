from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.slot_outcome import SlotOutcome
from ...types import Response


def _get_kwargs(
    slot: int,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/market/slots/{slot}".format(
            slot=quote(str(slot), safe=""),
        ),
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | SlotOutcome | None:
    if response.status_code == 200:
        response_200 = SlotOutcome.from_dict(response.json())

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
) -> Response[Problem | SlotOutcome]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    slot: int,
    *,
    client: AuthenticatedClient,
) -> Response[Problem | SlotOutcome]:
    """A slot's clearing outcome

    Args:
        slot (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SlotOutcome]
    """

    kwargs = _get_kwargs(
        slot=slot,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    slot: int,
    *,
    client: AuthenticatedClient,
) -> Problem | SlotOutcome | None:
    """A slot's clearing outcome

    Args:
        slot (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SlotOutcome
    """

    return sync_detailed(
        slot=slot,
        client=client,
    ).parsed


async def asyncio_detailed(
    slot: int,
    *,
    client: AuthenticatedClient,
) -> Response[Problem | SlotOutcome]:
    """A slot's clearing outcome

    Args:
        slot (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SlotOutcome]
    """

    kwargs = _get_kwargs(
        slot=slot,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    slot: int,
    *,
    client: AuthenticatedClient,
) -> Problem | SlotOutcome | None:
    """A slot's clearing outcome

    Args:
        slot (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SlotOutcome
    """

    return (
        await asyncio_detailed(
            slot=slot,
            client=client,
        )
    ).parsed
