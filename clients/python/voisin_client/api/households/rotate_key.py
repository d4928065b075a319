from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.key_rotated import KeyRotated
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    household: int,
    *,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/households/{household}/rotate-key".format(
            household=quote(str(household), safe=""),
        ),
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> KeyRotated | Problem | None:
    if response.status_code == 200:
        response_200 = KeyRotated.from_dict(response.json())

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[KeyRotated | Problem]:
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
    idempotency_key: None | str | Unset = UNSET,
) -> Response[KeyRotated | Problem]:
    """Replace a household's account key (operator)

     A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore under the chain lock, so the outbox never
    signs with a retired key.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[KeyRotated | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    household: int,
    *,
    client: AuthenticatedClient,
    idempotency_key: None | str | Unset = UNSET,
) -> KeyRotated | Problem | None:
    """Replace a household's account key (operator)

     A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore under the chain lock, so the outbox never
    signs with a retired key.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        KeyRotated | Problem
    """

    return sync_detailed(
        household=household,
        client=client,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    household: int,
    *,
    client: AuthenticatedClient,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[KeyRotated | Problem]:
    """Replace a household's account key (operator)

     A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore under the chain lock, so the outbox never
    signs with a retired key.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[KeyRotated | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    household: int,
    *,
    client: AuthenticatedClient,
    idempotency_key: None | str | Unset = UNSET,
) -> KeyRotated | Problem | None:
    """Replace a household's account key (operator)

     A new account key, generated and encrypted here, takes over the household on chain: its
    balance and open orders stay with it, and the old account can no longer act for it. The
    new key replaces the old one in the keystore under the chain lock, so the outbox never
    signs with a retired key.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        KeyRotated | Problem
    """

    return (
        await asyncio_detailed(
            household=household,
            client=client,
            idempotency_key=idempotency_key,
        )
    ).parsed
