from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.top_up_in import TopUpIn
from ...models.top_up_out import TopUpOut
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: TopUpIn,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/topups",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | TopUpOut | None:
    if response.status_code == 201:
        response_201 = TopUpOut.from_dict(response.json())

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

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | TopUpOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: TopUpIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TopUpOut]:
    """Top up a household (operator)

     Mints ``amount_ueur`` to the household's account (its account on chain when the
    transaction is sent, so a key rotation in between cannot strand the money). A deactivated
    household is refused (422 ``household_inactive``): it could never spend the money.

    Args:
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TopUpIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TopUpOut]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: TopUpIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TopUpOut | None:
    """Top up a household (operator)

     Mints ``amount_ueur`` to the household's account (its account on chain when the
    transaction is sent, so a key rotation in between cannot strand the money). A deactivated
    household is refused (422 ``household_inactive``): it could never spend the money.

    Args:
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TopUpIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TopUpOut
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: TopUpIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[Problem | TopUpOut]:
    """Top up a household (operator)

     Mints ``amount_ueur`` to the household's account (its account on chain when the
    transaction is sent, so a key rotation in between cannot strand the money). A deactivated
    household is refused (422 ``household_inactive``): it could never spend the money.

    Args:
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TopUpIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TopUpOut]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: TopUpIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Problem | TopUpOut | None:
    """Top up a household (operator)

     Mints ``amount_ueur`` to the household's account (its account on chain when the
    transaction is sent, so a key rotation in between cannot strand the money). A deactivated
    household is refused (422 ``household_inactive``): it could never spend the money.

    Args:
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (TopUpIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TopUpOut
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
