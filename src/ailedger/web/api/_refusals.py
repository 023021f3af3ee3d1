"""The chain's and the home's errors, as refusals a web client can act on.

The domain functions check what they can before sending; what the chain still refuses
(a revert, a rejected transaction), a value the home cannot use, the chain or another
node away, become a status here, once for every capability's routes, instead of a 500:
the caller's to fix (422) or worth a retry (503). A capability names its own kinds of
"not valid" (a bad job bundle, a job in the wrong state) as ``unprocessable``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ailedger.errors import (
    BackPressureError,
    ChainError,
    ConfigError,
    ContractError,
    LockedError,
    PeerError,
    TransactionRejectedError,
    TransactionRevertedError,
    UnprocessableError,
)

RETRY_S = 5.0


@contextmanager
def as_refusals(*unprocessable: type[Exception]) -> Iterator[None]:
    invalid: tuple[type[Exception], ...] = (ConfigError, LockedError, *unprocessable)
    try:
        yield
    except invalid as exc:
        raise UnprocessableError(str(exc)) from exc
    except (ContractError, TransactionRevertedError, TransactionRejectedError) as exc:
        raise UnprocessableError(f"the chain refused it: {exc}") from exc
    except (ChainError, PeerError) as exc:  # away: the chain, the owner's node, our own
        raise BackPressureError(f"{exc}; retry later", RETRY_S) from exc
