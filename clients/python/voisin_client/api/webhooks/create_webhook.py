from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.webhook_created import WebhookCreated
from ...models.webhook_in import WebhookIn
from ...types import Response


def _get_kwargs(
    *,
    body: WebhookIn,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/webhooks",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | WebhookCreated | None:
    if response.status_code == 201:
        response_201 = WebhookCreated.from_dict(response.json())

        return response_201

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

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
) -> Response[Problem | WebhookCreated]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: WebhookIn,
) -> Response[Problem | WebhookCreated]:
    """Subscribe a system to events (operator)

     Events mirrored from now on, of the given types, are POSTed to ``url``, signed with the
    secret returned here (only here). Event types: ``household_registered``,
    ``household_deactivated``, ``topup``, ``trade_settled``, ``slot_settled``,
    ``audit_failed``. At most 100 webhooks at once (409 ``too_many_webhooks``).

    Args:
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookCreated]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: WebhookIn,
) -> Problem | WebhookCreated | None:
    """Subscribe a system to events (operator)

     Events mirrored from now on, of the given types, are POSTed to ``url``, signed with the
    secret returned here (only here). Event types: ``household_registered``,
    ``household_deactivated``, ``topup``, ``trade_settled``, ``slot_settled``,
    ``audit_failed``. At most 100 webhooks at once (409 ``too_many_webhooks``).

    Args:
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookCreated
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: WebhookIn,
) -> Response[Problem | WebhookCreated]:
    """Subscribe a system to events (operator)

     Events mirrored from now on, of the given types, are POSTed to ``url``, signed with the
    secret returned here (only here). Event types: ``household_registered``,
    ``household_deactivated``, ``topup``, ``trade_settled``, ``slot_settled``,
    ``audit_failed``. At most 100 webhooks at once (409 ``too_many_webhooks``).

    Args:
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookCreated]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: WebhookIn,
) -> Problem | WebhookCreated | None:
    """Subscribe a system to events (operator)

     Events mirrored from now on, of the given types, are POSTed to ``url``, signed with the
    secret returned here (only here). Event types: ``household_registered``,
    ``household_deactivated``, ``topup``, ``trade_settled``, ``slot_settled``,
    ``audit_failed``. At most 100 webhooks at once (409 ``too_many_webhooks``).

    Args:
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookCreated
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
