from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.audit_report_out import AuditReportOut
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    from_: int | None | Unset = UNSET,
    to: int | None | Unset = UNSET,
    feeder: bool | Unset = False,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_from_: int | None | Unset
    if isinstance(from_, Unset):
        json_from_ = UNSET
    else:
        json_from_ = from_
    params["from"] = json_from_

    json_to: int | None | Unset
    if isinstance(to, Unset):
        json_to = UNSET
    else:
        json_to = to
    params["to"] = json_to

    params["feeder"] = feeder

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/audit/report",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AuditReportOut | Problem | None:
    if response.status_code == 200:
        response_200 = AuditReportOut.from_dict(response.json())

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

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[AuditReportOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    from_: int | None | Unset = UNSET,
    to: int | None | Unset = UNSET,
    feeder: bool | Unset = False,
) -> Response[AuditReportOut | Problem]:
    """Audit settlements: provenance, energy, money, integrity and (optionally) feeder

     Findings of the slots ``from``..``to`` (all slots by default); ``feeder=true`` also runs
    the power flow of every slot on the Kerber reference feeder (slower: about a tenth of a
    second per slot).

    Args:
        from_ (int | None | Unset):
        to (int | None | Unset):
        feeder (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditReportOut | Problem]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        feeder=feeder,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    from_: int | None | Unset = UNSET,
    to: int | None | Unset = UNSET,
    feeder: bool | Unset = False,
) -> AuditReportOut | Problem | None:
    """Audit settlements: provenance, energy, money, integrity and (optionally) feeder

     Findings of the slots ``from``..``to`` (all slots by default); ``feeder=true`` also runs
    the power flow of every slot on the Kerber reference feeder (slower: about a tenth of a
    second per slot).

    Args:
        from_ (int | None | Unset):
        to (int | None | Unset):
        feeder (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditReportOut | Problem
    """

    return sync_detailed(
        client=client,
        from_=from_,
        to=to,
        feeder=feeder,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    from_: int | None | Unset = UNSET,
    to: int | None | Unset = UNSET,
    feeder: bool | Unset = False,
) -> Response[AuditReportOut | Problem]:
    """Audit settlements: provenance, energy, money, integrity and (optionally) feeder

     Findings of the slots ``from``..``to`` (all slots by default); ``feeder=true`` also runs
    the power flow of every slot on the Kerber reference feeder (slower: about a tenth of a
    second per slot).

    Args:
        from_ (int | None | Unset):
        to (int | None | Unset):
        feeder (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditReportOut | Problem]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        feeder=feeder,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    from_: int | None | Unset = UNSET,
    to: int | None | Unset = UNSET,
    feeder: bool | Unset = False,
) -> AuditReportOut | Problem | None:
    """Audit settlements: provenance, energy, money, integrity and (optionally) feeder

     Findings of the slots ``from``..``to`` (all slots by default); ``feeder=true`` also runs
    the power flow of every slot on the Kerber reference feeder (slower: about a tenth of a
    second per slot).

    Args:
        from_ (int | None | Unset):
        to (int | None | Unset):
        feeder (bool | Unset):  Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditReportOut | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            from_=from_,
            to=to,
            feeder=feeder,
        )
    ).parsed
