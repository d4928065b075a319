from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.consent_out import ConsentOut
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    household: int,
    key_id: int,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/households/{household}/consents/{key_id}".format(
            household=quote(str(household), safe=""),
            key_id=quote(str(key_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ConsentOut | Problem | None:
    if response.status_code == 200:
        response_200 = ConsentOut.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = ConsentOut.from_dict(response.json())

        return response_201

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

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
) -> Response[ConsentOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    household: int,
    key_id: int,
    *,
    client: AuthenticatedClient,
) -> Response[ConsentOut | Problem]:
    """Let an API key read this household's data (the household)

     From now on the key may read the household's balance, statement, trades, offers and
    bids, until the household withdraws it or the operator revokes the key.

    Args:
        household (int): Household id
        key_id (int): The API key's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ConsentOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        key_id=key_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    household: int,
    key_id: int,
    *,
    client: AuthenticatedClient,
) -> ConsentOut | Problem | None:
    """Let an API key read this household's data (the household)

     From now on the key may read the household's balance, statement, trades, offers and
    bids, until the household withdraws it or the operator revokes the key.

    Args:
        household (int): Household id
        key_id (int): The API key's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ConsentOut | Problem
    """

    return sync_detailed(
        household=household,
        key_id=key_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    household: int,
    key_id: int,
    *,
    client: AuthenticatedClient,
) -> Response[ConsentOut | Problem]:
    """Let an API key read this household's data (the household)

     From now on the key may read the household's balance, statement, trades, offers and
    bids, until the household withdraws it or the operator revokes the key.

    Args:
        household (int): Household id
        key_id (int): The API key's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ConsentOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        key_id=key_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    household: int,
    key_id: int,
    *,
    client: AuthenticatedClient,
) -> ConsentOut | Problem | None:
    """Let an API key read this household's data (the household)

     From now on the key may read the household's balance, statement, trades, offers and
    bids, until the household withdraws it or the operator revokes the key.

    Args:
        household (int): Household id
        key_id (int): The API key's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ConsentOut | Problem
    """

    return (
        await asyncio_detailed(
            household=household,
            key_id=key_id,
            client=client,
        )
    ).parsed
