from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.list_deliveries_status_type_0 import ListDeliveriesStatusType0
from ...models.page_delivery_out import PageDeliveryOut
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: ListDeliveriesStatusType0 | None | Unset = UNSET,
    webhook: int | None | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, ListDeliveriesStatusType0):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    json_webhook: int | None | Unset
    if isinstance(webhook, Unset):
        json_webhook = UNSET
    else:
        json_webhook = webhook
    params["webhook"] = json_webhook

    params["limit"] = limit

    params["offset"] = offset

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/webhooks/deliveries",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PageDeliveryOut | Problem | None:
    if response.status_code == 200:
        response_200 = PageDeliveryOut.from_dict(response.json())

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
) -> Response[PageDeliveryOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: ListDeliveriesStatusType0 | None | Unset = UNSET,
    webhook: int | None | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[PageDeliveryOut | Problem]:
    """List deliveries, e.g. the failed ones (operator)

     Newest first. ``?status=failed`` lists what ran out of attempts: retry one with
    ``POST /webhooks/deliveries/{id}/retry`` once its receiver is back.

    Args:
        status (ListDeliveriesStatusType0 | None | Unset):
        webhook (int | None | Unset):
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageDeliveryOut | Problem]
    """

    kwargs = _get_kwargs(
        status=status,
        webhook=webhook,
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
    status: ListDeliveriesStatusType0 | None | Unset = UNSET,
    webhook: int | None | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> PageDeliveryOut | Problem | None:
    """List deliveries, e.g. the failed ones (operator)

     Newest first. ``?status=failed`` lists what ran out of attempts: retry one with
    ``POST /webhooks/deliveries/{id}/retry`` once its receiver is back.

    Args:
        status (ListDeliveriesStatusType0 | None | Unset):
        webhook (int | None | Unset):
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageDeliveryOut | Problem
    """

    return sync_detailed(
        client=client,
        status=status,
        webhook=webhook,
        limit=limit,
        offset=offset,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: ListDeliveriesStatusType0 | None | Unset = UNSET,
    webhook: int | None | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> Response[PageDeliveryOut | Problem]:
    """List deliveries, e.g. the failed ones (operator)

     Newest first. ``?status=failed`` lists what ran out of attempts: retry one with
    ``POST /webhooks/deliveries/{id}/retry`` once its receiver is back.

    Args:
        status (ListDeliveriesStatusType0 | None | Unset):
        webhook (int | None | Unset):
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageDeliveryOut | Problem]
    """

    kwargs = _get_kwargs(
        status=status,
        webhook=webhook,
        limit=limit,
        offset=offset,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    status: ListDeliveriesStatusType0 | None | Unset = UNSET,
    webhook: int | None | Unset = UNSET,
    limit: int | Unset = 100,
    offset: int | Unset = 0,
) -> PageDeliveryOut | Problem | None:
    """List deliveries, e.g. the failed ones (operator)

     Newest first. ``?status=failed`` lists what ran out of attempts: retry one with
    ``POST /webhooks/deliveries/{id}/retry`` once its receiver is back.

    Args:
        status (ListDeliveriesStatusType0 | None | Unset):
        webhook (int | None | Unset):
        limit (int | Unset):  Default: 100.
        offset (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageDeliveryOut | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            webhook=webhook,
            limit=limit,
            offset=offset,
        )
    ).parsed
