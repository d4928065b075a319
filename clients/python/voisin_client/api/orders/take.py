from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.take_in import TakeIn
from ...models.take_out import TakeOut
from ...types import UNSET, Response, Unset


def _get_kwargs(
    order_id: int,
    *,
    body: TakeIn,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/offers/{order_id}/take".format(
            order_id=quote(str(order_id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | TakeOut | None:
    if response.status_code == 200:
        response_200 = TakeOut.from_dict(response.json())

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

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | TakeOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    order_id: int,
    *,
    client: AuthenticatedClient,
    body: TakeIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TakeOut]:
    """Buy directly from an offer, partially if need be (a household)

    Args:
        order_id (int): The API's id of the order
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TakeIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TakeOut]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    order_id: int,
    *,
    client: AuthenticatedClient,
    body: TakeIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TakeOut | None:
    """Buy directly from an offer, partially if need be (a household)

    Args:
        order_id (int): The API's id of the order
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TakeIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TakeOut
    """

    return sync_detailed(
        order_id=order_id,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    order_id: int,
    *,
    client: AuthenticatedClient,
    body: TakeIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TakeOut]:
    """Buy directly from an offer, partially if need be (a household)

    Args:
        order_id (int): The API's id of the order
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TakeIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TakeOut]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    order_id: int,
    *,
    client: AuthenticatedClient,
    body: TakeIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TakeOut | None:
    """Buy directly from an offer, partially if need be (a household)

    Args:
        order_id (int): The API's id of the order
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TakeIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TakeOut
    """

    return (
        await asyncio_detailed(
            order_id=order_id,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
