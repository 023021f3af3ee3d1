# pragma version ~=0.4.3
"""
@title ailedger patients
@notice A patient's own say over the records hospitals hold about them, and their share
        of what those records earn.

        Link. A hospital and a patient's wallet agree, in two steps, that the hospital's
        records behind a link id belong to that wallet: the hospital proposes
        (`propose_link`), the patient accepts (`accept_link`); either ends it
        (`end_link`). The link id is random, chosen by the hospital and kept against
        its own patient record off chain: nothing on chain names the patient or could be
        confirmed by guessing (no hash of a name, a date or a record number).

        Consent. A patient sets the purposes they consent to (`set_consent`), one bit
        each: DataMarket's five (1 rare-disease research, 2 model training, 4 public
        health, 8 clinical care, 16 commercial development) and 32 matchmaking. It holds
        for every linked record of theirs; a hospital's node asks `consents_to` before
        each read, job, federated round or match that would use a linked record. An
        ended link consents to nothing.

        Withdrawal takes effect. While any patient of a dataset's cohort objects to a
        purpose (`objecting_weight`), the bound DataMarket refuses requests and grants
        for it and its `check_access` says no, so every read, compute-to-data job and
        federated round that asks it stops at once; the owner publishes the dataset
        again without those records.

        Revenue share. A dataset's owner names the links whose records the dataset holds,
        with a weight each (their records' count: `add_to_cohort`), and the share of
        each sale that goes to them (`set_share`, basis points). When the DataMarket is
        paid for the dataset for a purpose, it credits that share here (`credit`); it is
        split pro rata among the weights of the links whose patient consents to that
        purpose at that moment, and each patient claims their own (`claim`, pull
        payment). A patient who withdrew a purpose is not in later sales for it; a sale
        with no consenting patient leaves the whole price to the owner.
@dev Each sale is O(1): it raises the dataset's per-weight accumulator for the purpose;
     a link's due is its weight times the accumulator's rise while its patient consented.
     A consent change settles what each of the patient's links had accrued for the
     changed purposes before moving its weight in or out of them, so it costs one step
     per (link, dataset, changed purpose): bounded by MAX_LINKS x MAX_DATASETS x 6.
     Rounding leaves at most one token unit per sale and link here, never owed.
"""

from ethereum.ercs import IERC20

PURPOSE_MATCHMAKING: public(constant(uint256)) = 32
ALL_PURPOSES: public(constant(uint256)) = 63
PURPOSE_BITS: constant(uint256) = 6
BPS: constant(uint256) = 10_000
MAX_SHARE_BPS: public(constant(uint256)) = 10_000
# A patient's links (hospitals) and a link's datasets are bounded so a consent change
# stays within a block's gas.
MAX_LINKS: public(constant(uint256)) = 4
MAX_DATASETS: public(constant(uint256)) = 16
MAX_BATCH: public(constant(uint256)) = 100
# Accumulator scale: a sale of `a` units to a total weight `w` raises it by a * 1e18 // w.
SCALE: constant(uint256) = 10**18

LINK_NONE: public(constant(uint8)) = 0
LINK_PROPOSED: public(constant(uint8)) = 1
LINK_ACTIVE: public(constant(uint8)) = 2
LINK_ENDED: public(constant(uint8)) = 3


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


struct Link:
    hospital: address
    patient: address
    status: uint8


event LinkProposed:
    link_id: indexed(bytes32)
    hospital: indexed(address)
    patient: indexed(address)


event LinkAccepted:
    link_id: indexed(bytes32)
    hospital: indexed(address)
    patient: indexed(address)


event LinkEnded:
    link_id: indexed(bytes32)
    by: indexed(address)


event ConsentSet:
    patient: indexed(address)
    purposes: uint256


event CohortAdded:
    dataset_id: indexed(bytes32)
    link_id: indexed(bytes32)
    weight: uint256


event ShareSet:
    dataset_id: indexed(bytes32)
    bps: uint256


event Credited:
    dataset_id: indexed(bytes32)
    purpose: uint256
    amount: uint256
    consenting_weight: uint256


event Claimed:
    patient: indexed(address)
    amount: uint256


TOKEN: public(immutable(IERC20))
MARKET: public(immutable(IDataMarket))

links: public(HashMap[bytes32, Link])
consent: public(HashMap[address, uint256])
share_bps: public(HashMap[bytes32, uint256])
weight: public(HashMap[bytes32, HashMap[bytes32, uint256]])  # dataset -> link -> weight
# dataset -> purpose -> total weight of the links whose patient consents to it now
consenting_weight: public(HashMap[bytes32, HashMap[uint256, uint256]])
# dataset -> weight of its accepted links, and of its links ended after being accepted
cohort_active: public(HashMap[bytes32, uint256])
cohort_ended: public(HashMap[bytes32, uint256])
owed: public(HashMap[address, uint256])  # settled, not yet claimed
credited: public(uint256)  # everything ever credited
claimed: public(uint256)  # everything ever paid out

_patient_links: HashMap[address, DynArray[bytes32, MAX_LINKS]]  # ACTIVE links only
_link_datasets: HashMap[bytes32, DynArray[bytes32, MAX_DATASETS]]
_per_weight: HashMap[bytes32, HashMap[uint256, uint256]]  # dataset -> purpose -> accumulator
_snapshot: HashMap[bytes32, HashMap[bytes32, HashMap[uint256, uint256]]]  # link -> dataset -> purpose


@deploy
def __init__(token: address, market: address):
    assert token.is_contract, "init: token is not a contract"
    assert market.is_contract, "init: data market is not a contract"
    TOKEN = IERC20(token)
    MARKET = IDataMarket(market)


# ---------------------------------------------------------------- links


@external
def propose_link(link_id: bytes32, patient: address):
    """
    @notice Propose that the caller's (a hospital's) records behind `link_id` are
            `patient`'s. `link_id` must be random (32 bytes from a CSPRNG): it is public.
    """
    assert link_id != empty(bytes32), "link: id is zero"
    assert patient != empty(address), "link: patient is zero"
    assert patient != msg.sender, "link: a hospital cannot link itself"
    assert self.links[link_id].status == LINK_NONE, "link: id in use"
    self.links[link_id] = Link(hospital=msg.sender, patient=patient, status=LINK_PROPOSED)
    log LinkProposed(link_id=link_id, hospital=msg.sender, patient=patient)


@external
def accept_link(link_id: bytes32):
    """
    @notice Accept a hospital's proposal (the patient named in it only). The patient's
            consent applies to the link from now on, in every dataset it is in.
    """
    link: Link = self.links[link_id]
    assert link.status == LINK_PROPOSED, "link: not proposed"
    assert link.patient == msg.sender, "link: caller is not the patient named"
    assert len(self._patient_links[msg.sender]) < MAX_LINKS, "link: too many links"
    self.links[link_id].status = LINK_ACTIVE
    self._patient_links[msg.sender].append(link_id)
    for dataset_id: bytes32 in self._link_datasets[link_id]:
        self.cohort_active[dataset_id] += self.weight[dataset_id][link_id]
    self._move(link_id, 0, self.consent[msg.sender])
    log LinkAccepted(link_id=link_id, hospital=link.hospital, patient=msg.sender)


@external
def end_link(link_id: bytes32):
    """
    @notice End a link (its hospital or its patient). What it had earned stays owed to
            the patient; from now on it consents to nothing and earns nothing.
    """
    link: Link = self.links[link_id]
    assert link.status in [LINK_PROPOSED, LINK_ACTIVE], "link: not open"
    assert msg.sender in [link.hospital, link.patient], "link: caller is not a party"
    if link.status == LINK_ACTIVE:
        self._move(link_id, self.consent[link.patient], 0)
        self._forget(link.patient, link_id)
        for dataset_id: bytes32 in self._link_datasets[link_id]:
            w: uint256 = self.weight[dataset_id][link_id]
            self.cohort_active[dataset_id] -= w
            self.cohort_ended[dataset_id] += w
    self.links[link_id].status = LINK_ENDED
    log LinkEnded(link_id=link_id, by=msg.sender)


@internal
def _forget(patient: address, link_id: bytes32):
    kept: DynArray[bytes32, MAX_LINKS] = []
    for other: bytes32 in self._patient_links[patient]:
        if other != link_id:
            kept.append(other)
    self._patient_links[patient] = kept


# ---------------------------------------------------------------- consent


@external
def set_consent(purposes: uint256):
    """
    @notice Set the purposes the caller consents to, for all their linked records. A
            withdrawn purpose takes effect at once: no later sale for it pays this
            patient, and hospitals asking `consents_to` are told no.
    """
    assert purposes & ALL_PURPOSES == purposes, "consent: unknown purpose bit"
    old: uint256 = self.consent[msg.sender]
    for link_id: bytes32 in self._patient_links[msg.sender]:
        self._move(link_id, old, purposes)
    self.consent[msg.sender] = purposes
    log ConsentSet(patient=msg.sender, purposes=purposes)


@view
@external
def consents_to(link_id: bytes32, purpose: uint256) -> bool:
    """
    @notice True only if `link_id` is an accepted, unended link whose patient consents
            to every bit of `purpose` (non-zero). What a hospital's node asks before use.
    """
    link: Link = self.links[link_id]
    if link.status != LINK_ACTIVE or purpose == 0:
        return False
    return self.consent[link.patient] & purpose == purpose


@view
@external
def objecting_weight(dataset_id: bytes32, purpose: uint256) -> uint256:
    """
    @notice The weight of `dataset_id`'s cohort whose patient does not consent to
            `purpose` now: accepted links without it, and links ended after being
            accepted. Non-zero: the dataset holds records its patients withdrew from
            this purpose, and the DataMarket neither sells nor serves it for it until
            the owner publishes it again without them. Links never accepted object to
            nothing: their records were taken under the consent the hospital holds.
    """
    return (
        self.cohort_active[dataset_id]
        - self.consenting_weight[dataset_id][purpose]
        + self.cohort_ended[dataset_id]
    )


# ---------------------------------------------------------------- cohorts and shares


@internal
@view
def _dataset_owner(dataset_id: bytes32) -> address:
    return (staticcall MARKET.datasets(dataset_id)).owner


@external
def set_share(dataset_id: bytes32, bps: uint256):
    """
    @notice The share of each sale of `dataset_id` that goes to its patients (owner only).
    """
    assert self._dataset_owner(dataset_id) == msg.sender, "share: caller is not the owner"
    assert bps <= MAX_SHARE_BPS, "share: above 100%"
    self.share_bps[dataset_id] = bps
    log ShareSet(dataset_id=dataset_id, bps=bps)


@external
def add_to_cohort(
    dataset_id: bytes32,
    link_ids: DynArray[bytes32, MAX_BATCH],
    weights: DynArray[uint256, MAX_BATCH],
):
    """
    @notice Name links whose records `dataset_id` holds, each with its weight (owner only,
            and only links of the owner's own proposing). A link is added once.
    """
    assert self._dataset_owner(dataset_id) == msg.sender, "cohort: caller is not the owner"
    assert len(link_ids) == len(weights), "cohort: one weight per link"
    for i: uint256 in range(MAX_BATCH):
        if i >= len(link_ids):
            break
        link_id: bytes32 = link_ids[i]
        w: uint256 = weights[i]
        link: Link = self.links[link_id]
        assert link.hospital == msg.sender, "cohort: not this hospital's link"
        assert link.status != LINK_ENDED, "cohort: link ended"
        assert w != 0, "cohort: weight is zero"
        assert self.weight[dataset_id][link_id] == 0, "cohort: link already in it"
        assert len(self._link_datasets[link_id]) < MAX_DATASETS, "cohort: link in too many"
        self.weight[dataset_id][link_id] = w
        self._link_datasets[link_id].append(dataset_id)
        if link.status == LINK_ACTIVE:
            self.cohort_active[dataset_id] += w
            self._move_one(link_id, dataset_id, 0, self.consent[link.patient])
        log CohortAdded(dataset_id=dataset_id, link_id=link_id, weight=w)


@external
def credit(dataset_id: bytes32, purpose: uint256, amount: uint256) -> bool:
    """
    @notice The DataMarket's call when it pays for `dataset_id` for `purpose`: `amount`
            (sent right after, in the same transaction) is split among the consenting
            weight. False, with nothing recorded, if no patient consents: the market
            then pays the owner the whole price.
    """
    assert msg.sender == MARKET.address, "credit: caller is not the data market"
    total: uint256 = self.consenting_weight[dataset_id][purpose]
    if total == 0 or amount == 0:
        return False
    self._per_weight[dataset_id][purpose] += amount * SCALE // total
    self.credited += amount
    log Credited(dataset_id=dataset_id, purpose=purpose, amount=amount, consenting_weight=total)
    return True


# ---------------------------------------------------------------- accrual


@internal
def _move(link_id: bytes32, old: uint256, new: uint256):
    for dataset_id: bytes32 in self._link_datasets[link_id]:
        self._move_one(link_id, dataset_id, old, new)


@internal
def _move_one(link_id: bytes32, dataset_id: bytes32, old: uint256, new: uint256):
    """Settle the link's accrual in `dataset_id` for each purpose whose consent changes
    from `old` to `new`, then move its weight in or out of that purpose."""
    w: uint256 = self.weight[dataset_id][link_id]
    changed: uint256 = old ^ new
    for i: uint256 in range(PURPOSE_BITS):
        bit: uint256 = 1 << i
        if changed & bit == 0:
            continue
        acc: uint256 = self._per_weight[dataset_id][bit]
        if old & bit != 0:  # it consented until now: what it accrued is owed
            due: uint256 = w * (acc - self._snapshot[link_id][dataset_id][bit]) // SCALE
            self.owed[self.links[link_id].patient] += due
            self.consenting_weight[dataset_id][bit] -= w
        else:
            self.consenting_weight[dataset_id][bit] += w
        self._snapshot[link_id][dataset_id][bit] = acc


@internal
def _settle(patient: address):
    """Bring everything the patient's active links accrued into `owed`."""
    purposes: uint256 = self.consent[patient]
    for link_id: bytes32 in self._patient_links[patient]:
        for dataset_id: bytes32 in self._link_datasets[link_id]:
            w: uint256 = self.weight[dataset_id][link_id]
            for i: uint256 in range(PURPOSE_BITS):
                bit: uint256 = 1 << i
                if purposes & bit == 0:
                    continue
                acc: uint256 = self._per_weight[dataset_id][bit]
                due: uint256 = w * (acc - self._snapshot[link_id][dataset_id][bit]) // SCALE
                self.owed[patient] += due
                self._snapshot[link_id][dataset_id][bit] = acc


@view
@external
def claimable(patient: address) -> uint256:
    """
    @notice What `claim` would pay `patient` now.
    """
    total: uint256 = self.owed[patient]
    purposes: uint256 = self.consent[patient]
    for link_id: bytes32 in self._patient_links[patient]:
        for dataset_id: bytes32 in self._link_datasets[link_id]:
            w: uint256 = self.weight[dataset_id][link_id]
            for i: uint256 in range(PURPOSE_BITS):
                bit: uint256 = 1 << i
                if purposes & bit != 0:
                    acc: uint256 = self._per_weight[dataset_id][bit]
                    total += w * (acc - self._snapshot[link_id][dataset_id][bit]) // SCALE
    return total


@external
@nonreentrant
def claim() -> uint256:
    """
    @notice Pay the caller everything their records have earned so far.
    """
    self._settle(msg.sender)
    amount: uint256 = self.owed[msg.sender]
    assert amount != 0, "claim: nothing owed"
    self.owed[msg.sender] = 0
    self.claimed += amount
    log Claimed(patient=msg.sender, amount=amount)
    assert extcall TOKEN.transfer(msg.sender, amount), "token: transfer failed"
    return amount


@view
@external
def links_of(patient: address) -> DynArray[bytes32, MAX_LINKS]:
    return self._patient_links[patient]


@view
@external
def datasets_of(link_id: bytes32) -> DynArray[bytes32, MAX_DATASETS]:
    return self._link_datasets[link_id]
