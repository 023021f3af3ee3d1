"""Whether a grant lets its signer use a listing right now: what every desk that serves a
buyer at the owner's node (private releases, predictions) checks first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger.errors import ForbiddenError

if TYPE_CHECKING:
    from ailedger.chain.contracts.data_market import DataMarketClient


def purpose_in_force(
    market: DataMarketClient, grant_id: int, signer: str, dataset_id: bytes, renew: str
) -> int:
    """The purpose of ``grant_id`` if it is ``signer``'s, for ``dataset_id`` and valid now
    (granted, unexpired); :class:`ForbiddenError` saying which it is not, and ``renew``
    (what to do) when it is no longer valid."""
    grant = market.grant_info(grant_id)
    if grant is None or grant.requester.lower() != signer.lower():
        raise ForbiddenError(f"grant {grant_id} is not a grant of {signer}")
    if grant.dataset_id != dataset_id:
        raise ForbiddenError(f"grant {grant_id} is for another listing")
    if not market.check_access(grant_id, signer, dataset_id, grant.purpose):
        raise ForbiddenError(
            f"grant {grant_id} is not valid now ({grant.status.name.lower()}); {renew}"
        )
    return grant.purpose
