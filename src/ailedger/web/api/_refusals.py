"""The chain's and the home's errors, as refusals a web client can act on.

The domain functions check what they can before sending; what the chain still refuses
(a revert, a rejected transaction), a value the home cannot use, an owner's node that
does not answer, become a status here, once for the sharing and account routes, instead
of a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ailedger.errors import (
    BackPressureError,
    ChainError,
    ChainUnreachableError,
    ConfigError,
    LockedError,
    PeerError,
    UnprocessableError,
)

RETRY_S = 30.0


@contextmanager
def as_refusals() -> Iterator[None]:
    try:
        yield
    except ChainUnreachableError as exc:
        raise BackPressureError(f"the chain does not answer ({exc}); retry later", RETRY_S) from exc
    except ChainError as exc:
        raise UnprocessableError(f"the chain refused: {exc}") from exc
    except PeerError as exc:
        raise BackPressureError(f"{exc}; retry later", RETRY_S) from exc
    except (ConfigError, LockedError) as exc:
        raise UnprocessableError(str(exc)) from exc
