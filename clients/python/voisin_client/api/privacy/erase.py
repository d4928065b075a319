from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.erasure_in import ErasureIn
from ...models.erasure_out import ErasureOut
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    household: int,
    *,
    body: ErasureIn,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/households/{household}/erasure".format(
            household=quote(str(household), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ErasureOut | Problem | None:
    if response.status_code == 200:
        response_200 = ErasureOut.from_dict(response.json())

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
) -> Response[ErasureOut | Problem]:
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
    body: ErasureIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErasureOut | Problem]:
    """Erase a household's personal data (the household itself or the operator)

     Deactivates the household on chain (no more readings, orders or trades), then removes
    its name, its bearer token (it stops working at once) and its account's key, closes its
    orders and withdraws its consents. Its pseudonymous id and addresses stay, on chain and in
    the audit's evidence, with its billing records (docs/privacy.md).

    ``confirm`` must be exactly ``erase household <id>``. Money left on the account is moved
    to the operator's account before the key goes (``refund_ueur``): the operator pays it
    back to the household outside Voisin. Refused (409) while readings of its meter wait for
    the chain, or while one of its orders is being sent. Asking again once it is erased
    answers the erasure as it was done.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (ErasureIn): An erasure request: ``confirm`` repeats ``erase household <id>`` word
            for word.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErasureOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        body=body,
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
    body: ErasureIn,
    idempotency_key: None | str | Unset = UNSET,
) -> ErasureOut | Problem | None:
    """Erase a household's personal data (the household itself or the operator)

     Deactivates the household on chain (no more readings, orders or trades), then removes
    its name, its bearer token (it stops working at once) and its account's key, closes its
    orders and withdraws its consents. Its pseudonymous id and addresses stay, on chain and in
    the audit's evidence, with its billing records (docs/privacy.md).

    ``confirm`` must be exactly ``erase household <id>``. Money left on the account is moved
    to the operator's account before the key goes (``refund_ueur``): the operator pays it
    back to the household outside Voisin. Refused (409) while readings of its meter wait for
    the chain, or while one of its orders is being sent. Asking again once it is erased
    answers the erasure as it was done.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (ErasureIn): An erasure request: ``confirm`` repeats ``erase household <id>`` word
            for word.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErasureOut | Problem
    """

    return sync_detailed(
        household=household,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    household: int,
    *,
    client: AuthenticatedClient,
    body: ErasureIn,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErasureOut | Problem]:
    """Erase a household's personal data (the household itself or the operator)

     Deactivates the household on chain (no more readings, orders or trades), then removes
    its name, its bearer token (it stops working at once) and its account's key, closes its
    orders and withdraws its consents. Its pseudonymous id and addresses stay, on chain and in
    the audit's evidence, with its billing records (docs/privacy.md).

    ``confirm`` must be exactly ``erase household <id>``. Money left on the account is moved
    to the operator's account before the key goes (``refund_ueur``): the operator pays it
    back to the household outside Voisin. Refused (409) while readings of its meter wait for
    the chain, or while one of its orders is being sent. Asking again once it is erased
    answers the erasure as it was done.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (ErasureIn): An erasure request: ``confirm`` repeats ``erase household <id>`` word
            for word.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErasureOut | Problem]
    """

    kwargs = _get_kwargs(
        household=household,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    household: int,
    *,
    client: AuthenticatedClient,
    body: ErasureIn,
    idempotency_key: None | str | Unset = UNSET,
) -> ErasureOut | Problem | None:
    """Erase a household's personal data (the household itself or the operator)

     Deactivates the household on chain (no more readings, orders or trades), then removes
    its name, its bearer token (it stops working at once) and its account's key, closes its
    orders and withdraws its consents. Its pseudonymous id and addresses stay, on chain and in
    the audit's evidence, with its billing records (docs/privacy.md).

    ``confirm`` must be exactly ``erase household <id>``. Money left on the account is moved
    to the operator's account before the key goes (``refund_ueur``): the operator pays it
    back to the household outside Voisin. Refused (409) while readings of its meter wait for
    the chain, or while one of its orders is being sent. Asking again once it is erased
    answers the erasure as it was done.

    Args:
        household (int): Household id
        idempotency_key (None | str | Unset): A client-chosen key (1 to 255 printable ASCII
            characters, e.g. a UUID) that makes this request safe to send again: the same key with the
            same request answers the first answer again (same status and JSON) and applies nothing
            twice, even if the first is still in flight or was interrupted by a crash (it is completed
            first). The same key with another request is refused with 409 `idempotency_key_reused`.
            Keys are scoped to the caller (the operator or one household) and kept for 7 days after
            the request finished. A request refused by validation keeps no answer.
        body (ErasureIn): An erasure request: ``confirm`` repeats ``erase household <id>`` word
            for word.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErasureOut | Problem
    """

    return (
        await asyncio_detailed(
            household=household,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
