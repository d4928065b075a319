from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.readings_accepted import ReadingsAccepted
from ...models.readings_in import ReadingsIn
from ...types import Response


def _get_kwargs(
    *,
    body: ReadingsIn,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/readings",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Problem | ReadingsAccepted | None:
    if response.status_code == 202:
        response_202 = ReadingsAccepted.from_dict(response.json())

        return response_202

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

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Problem | ReadingsAccepted]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ReadingsIn,
) -> Response[Problem | ReadingsAccepted]:
    """Submit signed meter readings (no token: the meter's signature is the credential)

     Each reading is EIP-712 signed by its meter's key in the domain
    `EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`, whose `chainId` and
    `verifyingContract` are `chain.chain_id` and `chain.contract` of `GET /health`.

    202 with a verdict per reading if any was accepted or already held; else 409
    `conflicting_reading` if one differs from a reading already accepted for its (meter, slot),
    else 422 with the first refusal's code; both with the verdicts in `details`.

    Args:
        body (ReadingsIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ReadingsAccepted]
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
    body: ReadingsIn,
) -> Problem | ReadingsAccepted | None:
    """Submit signed meter readings (no token: the meter's signature is the credential)

     Each reading is EIP-712 signed by its meter's key in the domain
    `EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`, whose `chainId` and
    `verifyingContract` are `chain.chain_id` and `chain.contract` of `GET /health`.

    202 with a verdict per reading if any was accepted or already held; else 409
    `conflicting_reading` if one differs from a reading already accepted for its (meter, slot),
    else 422 with the first refusal's code; both with the verdicts in `details`.

    Args:
        body (ReadingsIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ReadingsAccepted
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ReadingsIn,
) -> Response[Problem | ReadingsAccepted]:
    """Submit signed meter readings (no token: the meter's signature is the credential)

     Each reading is EIP-712 signed by its meter's key in the domain
    `EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`, whose `chainId` and
    `verifyingContract` are `chain.chain_id` and `chain.contract` of `GET /health`.

    202 with a verdict per reading if any was accepted or already held; else 409
    `conflicting_reading` if one differs from a reading already accepted for its (meter, slot),
    else 422 with the first refusal's code; both with the verdicts in `details`.

    Args:
        body (ReadingsIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ReadingsAccepted]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ReadingsIn,
) -> Problem | ReadingsAccepted | None:
    """Submit signed meter readings (no token: the meter's signature is the credential)

     Each reading is EIP-712 signed by its meter's key in the domain
    `EIP712Domain(name="Voisin", version="1", chainId, verifyingContract)`, whose `chainId` and
    `verifyingContract` are `chain.chain_id` and `chain.contract` of `GET /health`.

    202 with a verdict per reading if any was accepted or already held; else 409
    `conflicting_reading` if one differs from a reading already accepted for its (meter, slot),
    else 422 with the first refusal's code; both with the verdicts in `details`.

    Args:
        body (ReadingsIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ReadingsAccepted
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
