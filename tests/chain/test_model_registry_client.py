"""The ModelRegistry client: refusals before any transaction, and versions registered
over a real completed compute-to-data job, read back, retired and rebuilt from events
through the typed client on every chain backend; the contract's refusals arrive as
ModelRegistryError with what to do."""

from __future__ import annotations

from typing import TypeVar

import pytest
from eth_account.signers.local import LocalAccount
from tests.completed_jobs import AIL, BUNDLE, completed_job
from tests.conftest import ChainUnderTest

from ailedger.chain.compiler import compile_contract
from ailedger.chain.contracts import (
    ComputeMarketClient,
    ComputePolicyClient,
    ComputeProvidersClient,
    ContractClient,
    DataMarketClient,
    ModelRegistryClient,
    ModelRegistryError,
    ModelVersion,
    Policy,
    TokenClient,
)
from ailedger.chain.contracts.data_market import PURPOSES
from ailedger.chain.contracts.model_registry import new_model_id
from ailedger.chain.deploy import COMPUTE_MIN_STAKE
from ailedger.errors import ConfigError

DS = b"\x64" * 32
CARD, EVAL, METRICS = b"\xca" * 32, b"\xe7" * 32, b"\x3e" * 32
TRAINING = PURPOSES["model-training"]
RARE = PURPOSES["rare-disease-research"]
C = TypeVar("C", bound=ContractClient)


def _client(chain: ChainUnderTest, cls: type[C], account: LocalAccount | None) -> C:
    name = cls.contract_name
    abi = compile_contract(name, chain.cache_dir).abi
    return cls(chain.connection.web3, chain.deployment.address(name), abi, account)


def _completed_job(chain: ChainUnderTest, purpose: int) -> int:
    """A k = 1 job by accounts[1] over DS (granted for ``purpose``), run by accounts[0],
    the dataset's owner and the job's provider, and accepted: COMPLETED."""
    owner, requester = chain.accounts[:2]
    data = _client(chain, DataMarketClient, owner)
    if data.dataset(DS) is None:
        data.register_dataset(
            DS, b"\x22" * 32, b"\x33" * 32, Policy(RARE | TRAINING, False, 0, 86400, 0)
        )
        policy = _client(chain, ComputePolicyClient, owner)
        policy.allow_algorithm(DS, BUNDLE)
        for who in (owner, requester):
            token = _client(chain, TokenClient, who)
            token.faucet(1_000 * AIL)
            token.approve(chain.deployment.address("ComputeMarket"), 1_000 * AIL)
            token.approve(chain.deployment.address("ComputeProviders"), 1_000 * AIL)
        providers = _client(chain, ComputeProvidersClient, owner)
        providers.register_provider(COMPUTE_MIN_STAKE)
        providers.post_offer(2, 4096, "", 0, 3 * AIL, True)
    return completed_job(
        _client(chain, DataMarketClient, requester),
        _client(chain, ComputeMarketClient, requester),
        _client(chain, ComputeMarketClient, owner),
        DS,
        purpose,
        b"\x07" * 32,
    )


def _passport(n: int) -> bytes:
    return n.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"model_id": b"\x01" * 31}, "model id must be 32 bytes"),
        ({"model_id": bytes(32)}, "model id must not be all zeros"),
        ({"passport_hash": bytes(32)}, "passport hash must not be all zeros"),
        ({"eval_hash": b"x"}, "eval hash must be 32 bytes"),
        ({"jobs": list(range(1, 10))}, "at most 8 training jobs"),
        ({"jobs": [1, 1]}, "each job is cited once"),
        ({"jobs": [0]}, "job ids are positive"),
        ({"price": -1}, "licence price"),
        ({"price": 0, "period": 60}, "free licence"),
        ({"price": 5, "period": 0}, "needs a period"),
    ],
)
def test_bad_registrations_fail_before_any_transaction(args: dict[str, object], match: str) -> None:
    # No chain at all: the checks run before the client touches web3.
    client = object.__new__(ModelRegistryClient)
    call = {
        "model_id": b"\x01" * 32,
        "passport_hash": _passport(1),
        "card_hash": CARD,
        "eval_hash": EVAL,
        "metrics_hash": METRICS,
        "jobs": [],
        "price": 0,
        "period": 0,
    }
    call.update(args)
    with pytest.raises(ConfigError, match=match):
        client.register_version(**call)  # type: ignore[arg-type]


def test_versions_with_lineage_are_registered_read_retired_and_rebuilt(
    chain_under_test: ChainUnderTest,
) -> None:
    chain = chain_under_test
    owner, requester = chain.accounts[:2]
    registry = _client(chain, ModelRegistryClient, requester)
    stranger = _client(chain, ModelRegistryClient, owner)
    job = _completed_job(chain, TRAINING)
    model_id = new_model_id()
    assert registry.owner_of(model_id) is None and registry.latest(model_id) is None

    v1, first = registry.register_version(
        model_id, _passport(1), CARD, EVAL, METRICS, [job], price=5 * AIL, period=86400
    )
    v2, _ = registry.register_version(model_id, _passport(2), CARD, EVAL, METRICS, [job])
    assert (v1, v2) == (1, 2)
    assert registry.owner_of(model_id) == requester.address
    stamp = int(chain.connection.web3.eth.get_block(first.block_number)["timestamp"])
    expected = ModelVersion(
        model_id, 1, requester.address, _passport(1), CARD, EVAL, METRICS, (job,),
        5 * AIL, 86400, stamp, False,
    )  # fmt: skip
    assert stranger.version(model_id, 1) == expected
    assert stranger.by_passport(_passport(1)) == expected
    assert stranger.latest(model_id).version == 2  # type: ignore[union-attr]
    assert stranger.version(model_id, 3) is None and stranger.by_passport(_passport(3)) is None

    with pytest.raises(ModelRegistryError, match="not the model owner; only its owner"):
        stranger.register_version(model_id, _passport(3), CARD, EVAL, METRICS, [])
    with pytest.raises(ModelRegistryError, match="job backs another model"):
        registry.register_version(new_model_id(), _passport(3), CARD, EVAL, METRICS, [job])
    with pytest.raises(ModelRegistryError, match="job of another requester"):
        stranger.register_version(new_model_id(), _passport(3), CARD, EVAL, METRICS, [job])
    with pytest.raises(ModelRegistryError, match="passport already registered; sign a new"):
        registry.register_version(model_id, _passport(1), CARD, EVAL, METRICS, [])

    registry.retire_version(model_id, 1)
    assert stranger.version(model_id, 1).retired  # type: ignore[union-attr]
    with pytest.raises(ModelRegistryError, match="already retired"):
        registry.retire_version(model_id, 1)

    history = stranger.history(chain.deployment.block, owner=requester.address)
    assert [(e.version, e.retired, e.jobs, e.datasets) for e in history] == [
        (1, True, (job,), (DS,)),
        (2, False, (job,), (DS,)),
    ]
    assert history[0].tx_hash == first.tx_hash and history[0].block == first.block_number
    assert history[0].registered_at == stamp and history[0].price == 5 * AIL
    assert stranger.history(owner=owner.address) == []


def test_a_job_over_data_granted_for_another_purpose_is_refused(
    chain_under_test: ChainUnderTest,
) -> None:
    registry = _client(chain_under_test, ModelRegistryClient, chain_under_test.accounts[1])
    job = _completed_job(chain_under_test, RARE)
    with pytest.raises(ModelRegistryError, match="model-training purpose"):
        registry.register_version(new_model_id(), _passport(1), CARD, EVAL, METRICS, [job])
    assert registry.by_passport(_passport(1)) is None
