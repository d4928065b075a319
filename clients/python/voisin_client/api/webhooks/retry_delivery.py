from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.delivery_out import DeliveryOut
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    delivery_id: int,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/webhooks/deliveries/{delivery_id}/retry".format(
            delivery_id=quote(str(delivery_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DeliveryOut | Problem | None:
    if response.status_code == 200:
        response_200 = DeliveryOut.from_dict(response.json())

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
) -> Response[DeliveryOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    delivery_id: int,
    *,
    client: AuthenticatedClient,
) -> Response[DeliveryOut | Problem]:
    """Retry a failed delivery (operator)

     A failed delivery is due again at once, for a new round of attempts (same delivery id
    and body, signed anew). 409 ``delivery_not_failed`` for any other status, and
    ``webhook_deleted`` when its webhook was deleted.

    Args:
        delivery_id (int): The delivery's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeliveryOut | Problem]
    """

    kwargs = _get_kwargs(
        delivery_id=delivery_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    delivery_id: int,
    *,
    client: AuthenticatedClient,
) -> DeliveryOut | Problem | None:
    """Retry a failed delivery (operator)

     A failed delivery is due again at once, for a new round of attempts (same delivery id
    and body, signed anew). 409 ``delivery_not_failed`` for any other status, and
    ``webhook_deleted`` when its webhook was deleted.

    Args:
        delivery_id (int): The delivery's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeliveryOut | Problem
    """

    return sync_detailed(
        delivery_id=delivery_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    delivery_id: int,
    *,
    client: AuthenticatedClient,
) -> Response[DeliveryOut | Problem]:
    """Retry a failed delivery (operator)

     A failed delivery is due again at once, for a new round of attempts (same delivery id
    and body, signed anew). 409 ``delivery_not_failed`` for any other status, and
    ``webhook_deleted`` when its webhook was deleted.

    Args:
        delivery_id (int): The delivery's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeliveryOut | Problem]
    """

    kwargs = _get_kwargs(
        delivery_id=delivery_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    delivery_id: int,
    *,
    client: AuthenticatedClient,
) -> DeliveryOut | Problem | None:
    """Retry a failed delivery (operator)

     A failed delivery is due again at once, for a new round of attempts (same delivery id
    and body, signed anew). 409 ``delivery_not_failed`` for any other status, and
    ``webhook_deleted`` when its webhook was deleted.

    Args:
        delivery_id (int): The delivery's id

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeliveryOut | Problem
    """

    return (
        await asyncio_detailed(
            delivery_id=delivery_id,
            client=client,
        )
    ).parsed
