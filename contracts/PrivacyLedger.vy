# pragma version ~=0.4.3
"""
@title ailedger per-dataset privacy ledger
@notice One differential-privacy budget per dataset, shared by every buyer. The
        dataset's owner sets a cap (epsilon, delta); every DP release over the dataset,
        by any buyer, is charged to it by the owner's node before the release leaves.
        The charges are public events carrying the full charge bytes (the accountant's
        encoding of the mechanisms released), so anyone can rebuild the list from the
        events alone, recompute the total spend with a PLD accountant off chain, and
        check it against `spent_micro` and the running `charges_digest`.

        Datasets and their owners are those of the DataMarket fixed at construction;
        only the dataset's owner may set its cap or charge it, and only while the
        dataset is registered and not retired (datasets never change hands in
        DataMarket). The owner charges, not the buyer, because the owner's node runs
        the mechanism and is the one that must not release past the budget.

        Units: epsilon in micro-units (1e-6), 1 .. MAX_EPSILON_MICRO; delta as a
        numerator over 1e18 (`delta_e18`), 1 .. MAX_DELTA_E18 (0.1).

        Rules:
          - set_cap: the first call makes the dataset private for good (there is no
            way back: a dataset that promised a budget keeps it). Later calls may raise
            or lower epsilon; lowering it to or under the spend closes the budget. Delta
            may change only until the first charge: the spend is an epsilon at that
            delta, and changing delta would change what past spend means.
          - charge: compare-and-swap on `index == charge_count`, so two releases that
            race cannot both charge against the same old total; the spend never goes
            down and never past the cap.

        Running digest, per dataset, starting at bytes32(0):
          digest' = keccak256(digest ++ dataset_id ++ keccak256(charges) ++ buyer (20)
                              ++ ref ++ kind (1) ++ spent_after_micro (32, big-endian)
                              ++ index (32, big-endian))
        (213 bytes hashed; `ailedger.chain.contracts.privacy_ledger.charges_digest`
        recomputes it.)
@dev No funds move here and no external call but the view into DataMarket is made.
"""

# An epsilon above 100 protects nothing; a delta above 0.1 neither.
MAX_EPSILON_MICRO: public(constant(uint256)) = 100 * 10**6
MAX_DELTA_E18: public(constant(uint256)) = 10**17
MAX_CHARGE_BYTES: public(constant(uint256)) = 2048

KIND_QUERY: public(constant(uint8)) = 1
KIND_TRAINING: public(constant(uint8)) = 2
KIND_RELEASE: public(constant(uint8)) = 3


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


# epsilon_micro == 0 means "no cap set yet" (a set one is >= 1); private never goes back.
struct Budget:
    epsilon_micro: uint256
    delta_e18: uint256
    spent_micro: uint256
    charge_count: uint256
    private: bool


event CapSet:
    dataset_id: indexed(bytes32)
    epsilon_micro: uint256
    delta_e18: uint256
    previous_epsilon_micro: uint256


event Charged:
    dataset_id: indexed(bytes32)
    buyer: indexed(address)
    ref: bytes32
    kind: uint8
    charges: Bytes[MAX_CHARGE_BYTES]
    spent_after_micro: uint256
    index: uint256


DATA_MARKET: public(immutable(IDataMarket))

_budgets: HashMap[bytes32, Budget]
# dataset id -> running digest of its charges (see the notice)
charges_digest: public(HashMap[bytes32, bytes32])
# dataset id -> buyer -> charges made for that buyer's releases
buyer_charge_count: public(HashMap[bytes32, HashMap[address, uint256]])


@deploy
def __init__(data_market: address):
    assert data_market.is_contract, "init: data market is not a contract"
    DATA_MARKET = IDataMarket(data_market)


@internal
@view
def _only_owner(dataset_id: bytes32):
    ds: MarketDataset = staticcall DATA_MARKET.datasets(dataset_id)
    assert ds.owner != empty(address), "privacy: unknown dataset"
    assert ds.owner == msg.sender, "privacy: caller is not the dataset owner"
    assert not ds.retired, "privacy: dataset retired"


@external
def set_cap(dataset_id: bytes32, epsilon_micro: uint256, delta_e18: uint256):
    """
    @notice Set the dataset's privacy cap. Dataset owner only. The first call makes the
            dataset private for good.
    @param epsilon_micro The epsilon cap in millionths, 1 .. MAX_EPSILON_MICRO.
    @param delta_e18 Delta as a numerator over 1e18, 1 .. MAX_DELTA_E18; fixed once the
           first charge is made.
    """
    assert epsilon_micro != 0, "privacy: epsilon cap is zero"
    assert epsilon_micro <= MAX_EPSILON_MICRO, "privacy: epsilon cap too large"
    assert delta_e18 != 0, "privacy: delta is zero"
    assert delta_e18 <= MAX_DELTA_E18, "privacy: delta too large"
    self._only_owner(dataset_id)
    b: Budget = self._budgets[dataset_id]
    assert b.charge_count == 0 or delta_e18 == b.delta_e18, (
        "privacy: delta is fixed after the first charge"
    )
    previous: uint256 = b.epsilon_micro
    self._budgets[dataset_id].epsilon_micro = epsilon_micro
    self._budgets[dataset_id].delta_e18 = delta_e18
    self._budgets[dataset_id].private = True
    log CapSet(
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
        delta_e18=delta_e18,
        previous_epsilon_micro=previous,
    )


@external
def charge(
    dataset_id: bytes32,
    buyer: address,
    ref: bytes32,
    kind: uint8,
    charges: Bytes[MAX_CHARGE_BYTES],
    spent_after_micro: uint256,
    index: uint256,
):
    """
    @notice Charge one DP release over the dataset to its budget. Dataset owner only,
            before the release leaves.
    @param buyer Whose release it is (never zero).
    @param ref The release's reference (a job or query id), for the buyer and auditors.
    @param kind 1 query, 2 training, 3 other release.
    @param charges The accountant's encoding of the mechanisms released (not empty).
    @param spent_after_micro The total spend after this charge, computed by the owner's
           accountant; never below the current spend, never above the cap.
    @param index Must equal the current charge count: a stale index means another
           release charged first, and this one must be recomputed.
    """
    assert buyer != empty(address), "privacy: buyer is zero"
    assert kind >= KIND_QUERY and kind <= KIND_RELEASE, "privacy: unknown charge kind"
    assert len(charges) != 0, "privacy: charges are empty"
    self._only_owner(dataset_id)
    b: Budget = self._budgets[dataset_id]
    assert b.private, "privacy: no cap set"
    assert index == b.charge_count, "privacy: stale charge index"
    assert spent_after_micro >= b.spent_micro, "privacy: spend would decrease"
    assert spent_after_micro <= b.epsilon_micro, "privacy: spend would exceed the cap"

    self.charges_digest[dataset_id] = keccak256(
        concat(
            self.charges_digest[dataset_id],
            dataset_id,
            keccak256(charges),
            convert(buyer, bytes20),
            ref,
            convert(kind, bytes1),
            convert(spent_after_micro, bytes32),
            convert(index, bytes32),
        )
    )
    self._budgets[dataset_id].spent_micro = spent_after_micro
    self._budgets[dataset_id].charge_count = index + 1
    self.buyer_charge_count[dataset_id][buyer] += 1
    log Charged(
        dataset_id=dataset_id,
        buyer=buyer,
        ref=ref,
        kind=kind,
        charges=charges,
        spent_after_micro=spent_after_micro,
        index=index,
    )


@view
@external
def budget(dataset_id: bytes32) -> (uint256, uint256, uint256, uint256, bool):
    """
    @notice (epsilon_micro cap, delta_e18, spent_micro, charge_count, private); all zero
            and False for a dataset whose owner never set a cap (or an unknown id).
    """
    b: Budget = self._budgets[dataset_id]
    return b.epsilon_micro, b.delta_e18, b.spent_micro, b.charge_count, b.private


@view
@external
def is_private(dataset_id: bytes32) -> bool:
    """@notice True once the dataset's owner has set a cap; never False again."""
    return self._budgets[dataset_id].private
