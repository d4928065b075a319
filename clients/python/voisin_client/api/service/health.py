from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...types import Response


def _get_kwargs() -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/health",
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | None:
    if response.status_code == 200:
        response_200 = response.json()
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

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = cast(Any, None)
        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
) -> Response[Any | Problem]:
    """Whether the server can do its work, and what is wrong if not

     200 when the chain and the database answer (`status` `ok`, or `degraded` with its
    `problems`), else 503 (`down`); `why` says each problem in a sentence. The backlog counts
    accepted readings and orders not yet on chain; `backlog_oldest_s` is how many seconds the
    oldest of each has waited (0: none queued); `backlog_trend` sums up this process's samples
    of the backlog (`rises`: how many of the latest rose in a row). `audit` is the latest audit
    the server kept: `{"kept": false}` until the first, then `ok`, `finished_s` (unix
    seconds), `age_s`, `duration_s`, `block` (the head it read) and `findings`, or `error` for
    a run that failed. `process` names the process that answered (`pid`) and whether it leads
    the market's background work (`leader`: one of the processes `voisin serve --workers N`
    runs does). While the database does not answer, `backlog` is empty and the fields it gives
    are null.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs()

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
) -> Any | Problem | None:
    """Whether the server can do its work, and what is wrong if not

     200 when the chain and the database answer (`status` `ok`, or `degraded` with its
    `problems`), else 503 (`down`); `why` says each problem in a sentence. The backlog counts
    accepted readings and orders not yet on chain; `backlog_oldest_s` is how many seconds the
    oldest of each has waited (0: none queued); `backlog_trend` sums up this process's samples
    of the backlog (`rises`: how many of the latest rose in a row). `audit` is the latest audit
    the server kept: `{"kept": false}` until the first, then `ok`, `finished_s` (unix
    seconds), `age_s`, `duration_s`, `block` (the head it read) and `findings`, or `error` for
    a run that failed. `process` names the process that answered (`pid`) and whether it leads
    the market's background work (`leader`: one of the processes `voisin serve --workers N`
    runs does). While the database does not answer, `backlog` is empty and the fields it gives
    are null.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return sync_detailed(
        client=client,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
) -> Response[Any | Problem]:
    """Whether the server can do its work, and what is wrong if not

     200 when the chain and the database answer (`status` `ok`, or `degraded` with its
    `problems`), else 503 (`down`); `why` says each problem in a sentence. The backlog counts
    accepted readings and orders not yet on chain; `backlog_oldest_s` is how many seconds the
    oldest of each has waited (0: none queued); `backlog_trend` sums up this process's samples
    of the backlog (`rises`: how many of the latest rose in a row). `audit` is the latest audit
    the server kept: `{"kept": false}` until the first, then `ok`, `finished_s` (unix
    seconds), `age_s`, `duration_s`, `block` (the head it read) and `findings`, or `error` for
    a run that failed. `process` names the process that answered (`pid`) and whether it leads
    the market's background work (`leader`: one of the processes `voisin serve --workers N`
    runs does). While the database does not answer, `backlog` is empty and the fields it gives
    are null.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs()

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
) -> Any | Problem | None:
    """Whether the server can do its work, and what is wrong if not

     200 when the chain and the database answer (`status` `ok`, or `degraded` with its
    `problems`), else 503 (`down`); `why` says each problem in a sentence. The backlog counts
    accepted readings and orders not yet on chain; `backlog_oldest_s` is how many seconds the
    oldest of each has waited (0: none queued); `backlog_trend` sums up this process's samples
    of the backlog (`rises`: how many of the latest rose in a row). `audit` is the latest audit
    the server kept: `{"kept": false}` until the first, then `ok`, `finished_s` (unix
    seconds), `age_s`, `duration_s`, `block` (the head it read) and `findings`, or `error` for
    a run that failed. `process` names the process that answered (`pid`) and whether it leads
    the market's background work (`leader`: one of the processes `voisin serve --workers N`
    runs does). While the database does not answer, `backlog` is empty and the fields it gives
    are null.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
        )
    ).parsed
