# pragma version ~=0.4.3
"""
@title ailedger compute-to-data policy
@notice The rules a dataset owner sets for compute jobs that run over their dataset. The
        data never leaves the owner: jobs go to the data, run where the owner (or a
        provider the owner trusts) hosts it, and only outputs that meet the owner's
        release rules come back. Datasets and their owners are those of the DataMarket
        fixed at construction; only the dataset's owner may change its rules, and only
        while the dataset is registered and not retired (datasets never change hands in
        DataMarket, so the owner is fixed for a dataset's whole life).

        Three kinds of rule, each per dataset:
          - allowed algorithms: the code hashes (the hash of a job bundle) that may run
            over the dataset. The list starts empty, so a new dataset allows no compute
            until its owner allows an algorithm; the owner gets no implicit exception.
          - allowed providers: hosts other than the owner that may run the dataset's
            jobs. The owner may always host their own dataset.
          - output policy: the release rules for a job's output, namely a size cap in bytes
            (1 .. MAX_OUTPUT_BYTES), aggregate-only (only the counts and statistics the
            job's bundle declares, never per-record rows) and a minimum cell size
            (1 .. MAX_MIN_CELL_SIZE): an aggregate-only release suppresses every count
            below it and every statistic of such a cell. A dataset whose owner never set
            one gets the conservative default: DEFAULT_MAX_OUTPUT_BYTES (1 MiB),
            aggregate-only, DEFAULT_MIN_CELL_SIZE (10). None of these rules makes a
            release differentially private, and nothing here claims so: private
            releases come from vetted mechanisms run by the owner's node, not from
            compute-to-data.

        Views answer False for an unknown or retired dataset (`may_compute`, `may_host`);
        `output_policy` answers the stored policy, or the default when none was set.
        Rules are not erased when a dataset is retired, but they no longer allow anything.

        Every change emits an event carrying the full new value of what it changed
        (AlgorithmAllowed, ProviderAllowed, OutputPolicySet), so replaying the events in
        order rebuilds the whole state. Setting a value to what it already is is allowed
        and logged again.
@dev No funds move here and no external call but the view into DataMarket is made.
"""

# Release-rule bounds. 1 GiB is far more than an aggregate result needs; the default
# (1 MiB) applies until the owner sets a policy.
MAX_OUTPUT_BYTES: public(constant(uint256)) = 1024 * 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES: public(constant(uint256)) = 1024 * 1024
# A cell of fewer than 10 people is the usual floor for releasing counts (and the
# default); a floor above a million would suppress any real cohort: reject it as a mistake.
DEFAULT_MIN_CELL_SIZE: public(constant(uint256)) = 10
MAX_MIN_CELL_SIZE: public(constant(uint256)) = 1_000_000


# The layout of DataMarket's `Dataset`, as returned by its public `datasets` getter.
struct MarketDataset:
    owner: address
    ciphertext_hash: bytes32
    metadata_hash: bytes32
    purposes: uint256
    needs_approval: bool
    price: uint256
    duration: uint256
    max_reads: uint256
    retired: bool
    registered_at: uint256


interface IDataMarket:
    def datasets(dataset_id: bytes32) -> MarketDataset: view


# Stored output policy; max_output_bytes == 0 means "never set" (a set one is >= 1).
struct OutputPolicy:
    max_output_bytes: uint256
    aggregate_only: bool
    min_cell_size: uint256


event AlgorithmAllowed:
    dataset_id: indexed(bytes32)
    code_hash: indexed(bytes32)
    allowed: bool


event ProviderAllowed:
    dataset_id: indexed(bytes32)
    provider: indexed(address)
    allowed: bool


event OutputPolicySet:
    dataset_id: indexed(bytes32)
    max_output_bytes: uint256
    aggregate_only: bool
    min_cell_size: uint256


DATA_MARKET: public(immutable(IDataMarket))

# dataset id -> code hash -> allowed
algorithm_allowed: public(HashMap[bytes32, HashMap[bytes32, bool]])
# dataset id -> provider -> allowed (the owner needs no entry)
provider_allowed: public(HashMap[bytes32, HashMap[address, bool]])
_output_policies: HashMap[bytes32, OutputPolicy]


@deploy
def __init__(data_market: address):
    assert data_market.is_contract, "init: data market is not a contract"
    DATA_MARKET = IDataMarket(data_market)


# ---------------------------------------------------------------- setters


@internal
@view
def _only_owner(dataset_id: bytes32):
    ds: MarketDataset = staticcall DATA_MARKET.datasets(dataset_id)
    assert ds.owner != empty(address), "policy: unknown dataset"
    assert ds.owner == msg.sender, "policy: caller is not the dataset owner"
    assert not ds.retired, "policy: dataset retired"


@external
def allow_algorithm(dataset_id: bytes32, code_hash: bytes32, allowed: bool):
    """
    @notice Allow (or stop allowing) the job bundle with this code hash to run over the
            dataset. Dataset owner only.
    """
    assert code_hash != empty(bytes32), "policy: code hash is zero"
    self._only_owner(dataset_id)
    self.algorithm_allowed[dataset_id][code_hash] = allowed
    log AlgorithmAllowed(dataset_id=dataset_id, code_hash=code_hash, allowed=allowed)


@external
def allow_provider(dataset_id: bytes32, provider: address, allowed: bool):
    """
    @notice Allow (or stop allowing) a provider other than the owner to host the
            dataset's compute jobs. Dataset owner only.
    """
    assert provider != empty(address), "policy: provider is zero"
    self._only_owner(dataset_id)
    self.provider_allowed[dataset_id][provider] = allowed
    log ProviderAllowed(dataset_id=dataset_id, provider=provider, allowed=allowed)


@external
def set_output_policy(
    dataset_id: bytes32, max_output_bytes: uint256, aggregate_only: bool, min_cell_size: uint256
):
    """
    @notice Set the release rules for the outputs of jobs over the dataset. Dataset owner
            only; replaces the previous policy (or the default) as a whole.
    @param max_output_bytes Largest output released, 1 .. MAX_OUTPUT_BYTES.
    @param aggregate_only True: only aggregates may be released, never per-record rows.
    @param min_cell_size Smallest count released by an aggregate-only release,
           1 .. MAX_MIN_CELL_SIZE; smaller counts and their statistics are suppressed.
    """
    assert max_output_bytes != 0, "policy: output size cap is zero"
    assert max_output_bytes <= MAX_OUTPUT_BYTES, "policy: output size cap too large"
    assert min_cell_size != 0, "policy: min cell size is zero"
    assert min_cell_size <= MAX_MIN_CELL_SIZE, "policy: min cell size too large"
    self._only_owner(dataset_id)
    self._output_policies[dataset_id] = OutputPolicy(
        max_output_bytes=max_output_bytes,
        aggregate_only=aggregate_only,
        min_cell_size=min_cell_size,
    )
    log OutputPolicySet(
        dataset_id=dataset_id,
        max_output_bytes=max_output_bytes,
        aggregate_only=aggregate_only,
        min_cell_size=min_cell_size,
    )


# ---------------------------------------------------------------- views


@internal
@view
def _live_owner(dataset_id: bytes32) -> address:
    """The dataset's owner, or the zero address if it is unknown or retired."""
    ds: MarketDataset = staticcall DATA_MARKET.datasets(dataset_id)
    if ds.retired:
        return empty(address)
    return ds.owner


@view
@external
def may_compute(dataset_id: bytes32, code_hash: bytes32) -> bool:
    """
    @notice True only if the dataset is registered, not retired, and its owner allows
            the job bundle with this code hash.
    """
    if not self.algorithm_allowed[dataset_id][code_hash]:
        return False
    return self._live_owner(dataset_id) != empty(address)


@view
@external
def may_host(dataset_id: bytes32, provider: address) -> bool:
    """
    @notice True only if the dataset is registered, not retired, and `provider` is its
            owner or a provider its owner allows.
    """
    if provider == empty(address):
        return False
    owner: address = self._live_owner(dataset_id)
    if owner == empty(address):
        return False
    return provider == owner or self.provider_allowed[dataset_id][provider]


@view
@external
def output_policy(dataset_id: bytes32) -> (uint256, bool, uint256):
    """
    @notice The dataset's release rules: (max_output_bytes, aggregate_only,
            min_cell_size); the default (1 MiB, True, 10) when the owner never set one.
            Answers for any id, known or not: whether compute may run at all is
            `may_compute`'s question.
    """
    p: OutputPolicy = self._output_policies[dataset_id]
    if p.max_output_bytes == 0:
        return DEFAULT_MAX_OUTPUT_BYTES, True, DEFAULT_MIN_CELL_SIZE
    return p.max_output_bytes, p.aggregate_only, p.min_cell_size
