# pragma version ~=0.4.3
"""
@title ailedger data market
@notice Owner-controlled, purpose-bound data sharing. An owner registers a dataset (only
        its id, the hash of its ciphertext, the hash of its metadata and a policy: never
        any personal or health data), a requester asks for access for exactly one purpose
        and pays the policy's price in the payment token, and the owner's gateway serves
        the ciphertext only while `check_access` says yes.

        Purposes form a fixed vocabulary, one bit each; a policy allows any non-empty set
        of them, a request names exactly one:
            1  = rare-disease research
            2  = model training
            4  = public health
            8  = clinical care
            16 = commercial product development

        Request lifecycle (a request id is also the id of the grant it may become):
            PENDING  -> GRANTED (owner grants: escrow paid to the owner)
            PENDING  -> DENIED (owner denies: escrow refunded to the requester)
            PENDING  -> CANCELLED (requester cancels: escrow refunded)
            GRANTED  -> REVOKED (owner revokes: access stops at once, no refund)
        A dataset that needs no approval is granted in the same call as the request, and
        its price goes straight from the requester to the owner. Expiry is not a stored
        transition: a grant is valid while block.timestamp < expires_at.

        Revocation refunds nothing. The price is released to the owner when access is
        granted, because from then on the requester can read the data, and a read cannot
        be taken back; a refund would need either the escrow locked for the whole grant
        (so the owner is never paid until expiry) or a claw-back from the owner, which a
        contract cannot enforce. Revocation is for misuse or withdrawn consent; an owner
        who revokes without cause can refund by an ordinary token transfer, and disputes
        are settled off chain.

        Patients' consent. Once bound to Patients, a dataset none of whose patients
        object to a purpose is sold and served for it as before; while one objects
        (`Patients.objecting_weight`), requests and grants for that purpose revert and
        `check_access` says no.

        Patients' share. Once bound to the Patients contract (`bind_patients`, by the
        deployer, once), each payment to an owner first gives the dataset's patient share
        (`Patients.share_bps`, set by the owner) to Patients, which splits it among the
        patients whose linked records the dataset holds and who consent to the grant's
        purpose; with none, the owner is paid in full.

        The read limit (`max_reads`) is copied into each grant from the policy at request
        time, like price and duration, so a later `update_policy` changes only requests
        made after it. Reads are counted off chain by the owner's gateway audit log (whose
        checkpoints are anchored in AuditAnchor), not here: a read never touches the chain.
@dev Funds move only through the token fixed at construction. Every function that moves
     funds is @nonreentrant (on Shanghai, a storage lock) and follows checks-effects-
     interactions: the status changes before any token call, so even a token that calls
     back cannot pay or refund a request twice. Token calls must return True.
"""

from ethereum.ercs import IERC20

# ---------------------------------------------------------------- purposes

PURPOSE_RARE_DISEASE_RESEARCH: public(constant(uint256)) = 1
PURPOSE_MODEL_TRAINING: public(constant(uint256)) = 2
PURPOSE_PUBLIC_HEALTH: public(constant(uint256)) = 4
PURPOSE_CLINICAL_CARE: public(constant(uint256)) = 8
PURPOSE_COMMERCIAL_DEVELOPMENT: public(constant(uint256)) = 16
ALL_PURPOSES: public(constant(uint256)) = 31

# ---------------------------------------------------------------- request status

STATUS_NONE: public(constant(uint8)) = 0
STATUS_PENDING: public(constant(uint8)) = 1
STATUS_GRANTED: public(constant(uint8)) = 2
STATUS_DENIED: public(constant(uint8)) = 3
STATUS_CANCELLED: public(constant(uint8)) = 4
STATUS_REVOKED: public(constant(uint8)) = 5
# Never stored: what `access_status` reports for a GRANTED request past its expiry.
STATUS_EXPIRED: public(constant(uint8)) = 6

# A grant longer than a century is a mistake, and the bound keeps
# block.timestamp + duration far from overflow.
MAX_DURATION: public(constant(uint256)) = 100 * 365 * 86400


struct Dataset:
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


# Kept small on purpose: each field is a storage slot written by every request. The
# owner is the dataset's (datasets never change hands); times are in the events' blocks.
struct Grant:
    dataset_id: bytes32
    requester: address
    purpose: uint256
    status: uint8
    amount: uint256
    duration: uint256
    max_reads: uint256
    expires_at: uint256


interface IPatients:
    def share_bps(dataset_id: bytes32) -> uint256: view
    def objecting_weight(dataset_id: bytes32, purpose: uint256) -> uint256: view
    def credit(dataset_id: bytes32, purpose: uint256, amount: uint256) -> bool: nonpayable


event PatientsBound:
    patients: indexed(address)


event PatientShare:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    amount: uint256


event DatasetRegistered:
    dataset_id: indexed(bytes32)
    owner: indexed(address)
    ciphertext_hash: bytes32
    metadata_hash: bytes32
    purposes: uint256
    needs_approval: bool
    price: uint256
    duration: uint256
    max_reads: uint256


event PolicyUpdated:
    dataset_id: indexed(bytes32)
    owner: indexed(address)
    purposes: uint256
    needs_approval: bool
    price: uint256
    duration: uint256
    max_reads: uint256


event DatasetRetired:
    dataset_id: indexed(bytes32)
    owner: indexed(address)


event RequestCreated:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    requester: indexed(address)
    owner: address
    purpose: uint256
    amount: uint256
    needs_approval: bool


event AccessGranted:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    requester: indexed(address)
    owner: address
    purpose: uint256
    amount: uint256
    expires_at: uint256
    max_reads: uint256


event AccessDenied:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    requester: indexed(address)
    owner: address
    purpose: uint256
    refund: uint256


event RequestCancelled:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    requester: indexed(address)
    owner: address
    purpose: uint256
    refund: uint256


event AccessRevoked:
    request_id: indexed(uint256)
    dataset_id: indexed(bytes32)
    requester: indexed(address)
    owner: address
    purpose: uint256
    expires_at: uint256
    revoked_at: uint256


TOKEN: public(immutable(IERC20))

datasets: public(HashMap[bytes32, Dataset])
_grants: HashMap[uint256, Grant]
# Number of requests made so far; ids run from 1, so 0 never names a request.
request_count: public(uint256)
# Tokens held for PENDING requests. The token balance of this contract is at least this
# much (more only if someone sends tokens here directly; those are not anyone's escrow).
escrowed: public(uint256)
DEPLOYER: public(immutable(address))
patients: public(address)  # where patients' shares go (none until bound)


@deploy
def __init__(token: address):
    assert token.is_contract, "init: token is not a contract"
    TOKEN = IERC20(token)
    DEPLOYER = msg.sender


@external
def bind_patients(patients: address):
    """
    @notice Name the Patients contract that receives patients' shares (deployer, once).
    """
    assert msg.sender == DEPLOYER, "bind: caller is not the deployer"
    assert self.patients == empty(address), "bind: already bound"
    assert patients.is_contract, "bind: patients is not a contract"
    self.patients = patients
    log PatientsBound(patients=patients)


# ---------------------------------------------------------------- datasets


@internal
@pure
def _check_policy(purposes: uint256, duration: uint256):
    assert purposes != 0, "policy: no purpose allowed"
    assert purposes & ALL_PURPOSES == purposes, "policy: unknown purpose bit"
    assert duration != 0, "policy: duration is zero"
    assert duration <= MAX_DURATION, "policy: duration too long"


@external
def register_dataset(
    dataset_id: bytes32,
    ciphertext_hash: bytes32,
    metadata_hash: bytes32,
    purposes: uint256,
    needs_approval: bool,
    price: uint256,
    duration: uint256,
    max_reads: uint256,
):
    """
    @notice Register a dataset owned by the caller.
    @param purposes Bitmask of the allowed purposes (see the contract notice).
    @param duration How long a grant lasts, in seconds.
    @param max_reads Reads allowed per grant, counted off chain; 0 = unlimited.
    """
    assert dataset_id != empty(bytes32), "register: dataset id is zero"
    assert ciphertext_hash != empty(bytes32), "register: ciphertext hash is zero"
    assert self.datasets[dataset_id].owner == empty(address), "register: dataset id in use"
    self._check_policy(purposes, duration)
    self.datasets[dataset_id] = Dataset(
        owner=msg.sender,
        ciphertext_hash=ciphertext_hash,
        metadata_hash=metadata_hash,
        purposes=purposes,
        needs_approval=needs_approval,
        price=price,
        duration=duration,
        max_reads=max_reads,
        retired=False,
        registered_at=block.timestamp,
    )
    log DatasetRegistered(
        dataset_id=dataset_id,
        owner=msg.sender,
        ciphertext_hash=ciphertext_hash,
        metadata_hash=metadata_hash,
        purposes=purposes,
        needs_approval=needs_approval,
        price=price,
        duration=duration,
        max_reads=max_reads,
    )


@external
def update_policy(
    dataset_id: bytes32,
    purposes: uint256,
    needs_approval: bool,
    price: uint256,
    duration: uint256,
    max_reads: uint256,
):
    """
    @notice Change a dataset's policy; applies to requests made from now on only.
    @dev The hashes cannot change: new content is a new dataset.
    """
    owner: address = self.datasets[dataset_id].owner
    assert owner != empty(address), "policy: unknown dataset"
    assert owner == msg.sender, "policy: caller is not the owner"
    assert not self.datasets[dataset_id].retired, "policy: dataset retired"
    self._check_policy(purposes, duration)
    self.datasets[dataset_id].purposes = purposes
    self.datasets[dataset_id].needs_approval = needs_approval
    self.datasets[dataset_id].price = price
    self.datasets[dataset_id].duration = duration
    self.datasets[dataset_id].max_reads = max_reads
    log PolicyUpdated(
        dataset_id=dataset_id,
        owner=msg.sender,
        purposes=purposes,
        needs_approval=needs_approval,
        price=price,
        duration=duration,
        max_reads=max_reads,
    )


@external
def retire_dataset(dataset_id: bytes32):
    """
    @notice Accept no new requests for a dataset, for good. Existing grants run on (the
            owner revokes them one by one if needed) and pending requests can still be
            granted, denied or cancelled. The id is never reusable.
    """
    owner: address = self.datasets[dataset_id].owner
    assert owner != empty(address), "retire: unknown dataset"
    assert owner == msg.sender, "retire: caller is not the owner"
    assert not self.datasets[dataset_id].retired, "retire: dataset already retired"
    self.datasets[dataset_id].retired = True
    log DatasetRetired(dataset_id=dataset_id, owner=msg.sender)


# ---------------------------------------------------------------- requests and grants


@internal
@view
def _patients_consent(dataset_id: bytes32, purpose: uint256) -> bool:
    # No patient of the dataset's cohort has withdrawn from `purpose` (see Patients).
    if self.patients == empty(address):
        return True
    return staticcall IPatients(self.patients).objecting_weight(dataset_id, purpose) == 0


@internal
@view
def _patient_bps(dataset_id: bytes32) -> uint256:
    if self.patients == empty(address):
        return 0
    return staticcall IPatients(self.patients).share_bps(dataset_id)


@internal
def _pay_owner(
    request_id: uint256, dataset_id: bytes32, purpose: uint256, owner: address, amount: uint256
):
    # The patients' share first: Patients records the split, then receives the tokens in
    # the same transaction; it takes nothing when no patient consents to the purpose.
    share: uint256 = amount * self._patient_bps(dataset_id) // 10_000
    patients: address = self.patients
    if share != 0 and not extcall IPatients(patients).credit(dataset_id, purpose, share):
        share = 0
    self._pay(owner, amount - share)
    if share != 0:
        self._pay(patients, share)
        log PatientShare(request_id=request_id, dataset_id=dataset_id, amount=share)


@internal
def _pay(to: address, amount: uint256):
    # A zero amount makes no token call: some tokens reject zero transfers, and there
    # is nothing to move.
    if amount != 0:
        assert extcall TOKEN.transfer(to, amount), "token: transfer failed"


@external
@nonreentrant
def request_access(dataset_id: bytes32, purpose: uint256) -> uint256:
    """
    @notice Ask for access to a dataset for one purpose, paying its price (the caller
            must have approved this contract for it). Granted at once when the dataset
            needs no approval; otherwise the price is held in escrow until the owner
            grants or denies, or the caller cancels.
    @return The request id, which is also the grant id.
    """
    ds: Dataset = self.datasets[dataset_id]
    assert ds.owner != empty(address), "request: unknown dataset"
    assert not ds.retired, "request: dataset retired"
    assert purpose != 0 and purpose & (purpose - 1) == 0, "request: not a single purpose"
    assert purpose & ds.purposes != 0, "request: purpose not allowed"
    assert self._patients_consent(dataset_id, purpose), "request: a patient withdrew consent"

    request_id: uint256 = self.request_count + 1
    self.request_count = request_id
    status: uint8 = STATUS_PENDING
    expires_at: uint256 = 0
    if not ds.needs_approval:
        status = STATUS_GRANTED
        expires_at = block.timestamp + ds.duration
    else:
        self.escrowed += ds.price
    self._grants[request_id] = Grant(
        dataset_id=dataset_id,
        requester=msg.sender,
        purpose=purpose,
        status=status,
        amount=ds.price,
        duration=ds.duration,
        max_reads=ds.max_reads,
        expires_at=expires_at,
    )
    log RequestCreated(
        request_id=request_id,
        dataset_id=dataset_id,
        requester=msg.sender,
        owner=ds.owner,
        purpose=purpose,
        amount=ds.price,
        needs_approval=ds.needs_approval,
    )
    if status == STATUS_GRANTED:
        log AccessGranted(
            request_id=request_id,
            dataset_id=dataset_id,
            requester=msg.sender,
            owner=ds.owner,
            purpose=purpose,
            amount=ds.price,
            expires_at=expires_at,
            max_reads=ds.max_reads,
        )

    # Interactions last. An instant grant without a patients' share pays the owner
    # directly (the same outcome as escrowing and releasing at once, one call fewer).
    if ds.price != 0:
        direct: bool = status == STATUS_GRANTED and self._patient_bps(dataset_id) == 0
        payee: address = ds.owner if direct else self
        assert extcall TOKEN.transferFrom(msg.sender, payee, ds.price), "token: transferFrom failed"
        if status == STATUS_GRANTED and not direct:
            self._pay_owner(request_id, dataset_id, purpose, ds.owner, ds.price)
    return request_id


@external
@nonreentrant
def grant(request_id: uint256):
    """
    @notice Grant a pending request (dataset owner only); the escrow goes to the owner
            and the grant runs for the duration the policy had when it was requested.
    """
    g: Grant = self._grants[request_id]
    assert g.status != STATUS_NONE, "grant: unknown request"
    owner: address = self.datasets[g.dataset_id].owner
    assert owner == msg.sender, "grant: caller is not the owner"
    assert g.status == STATUS_PENDING, "grant: request not pending"
    assert self._patients_consent(g.dataset_id, g.purpose), "grant: a patient withdrew consent"
    expires_at: uint256 = block.timestamp + g.duration
    self._grants[request_id].status = STATUS_GRANTED
    self._grants[request_id].expires_at = expires_at
    self.escrowed -= g.amount
    log AccessGranted(
        request_id=request_id,
        dataset_id=g.dataset_id,
        requester=g.requester,
        owner=owner,
        purpose=g.purpose,
        amount=g.amount,
        expires_at=expires_at,
        max_reads=g.max_reads,
    )
    self._pay_owner(request_id, g.dataset_id, g.purpose, owner, g.amount)


@external
@nonreentrant
def deny(request_id: uint256):
    """
    @notice Deny a pending request (dataset owner only); the escrow is refunded.
    """
    g: Grant = self._grants[request_id]
    assert g.status != STATUS_NONE, "deny: unknown request"
    owner: address = self.datasets[g.dataset_id].owner
    assert owner == msg.sender, "deny: caller is not the owner"
    assert g.status == STATUS_PENDING, "deny: request not pending"
    self._grants[request_id].status = STATUS_DENIED
    self.escrowed -= g.amount
    log AccessDenied(
        request_id=request_id,
        dataset_id=g.dataset_id,
        requester=g.requester,
        owner=owner,
        purpose=g.purpose,
        refund=g.amount,
    )
    self._pay(g.requester, g.amount)


@external
@nonreentrant
def cancel_request(request_id: uint256):
    """
    @notice Withdraw a pending request (requester only); the escrow is refunded.
    """
    g: Grant = self._grants[request_id]
    assert g.status != STATUS_NONE, "cancel: unknown request"
    owner: address = self.datasets[g.dataset_id].owner
    assert g.requester == msg.sender, "cancel: caller is not the requester"
    assert g.status == STATUS_PENDING, "cancel: request not pending"
    self._grants[request_id].status = STATUS_CANCELLED
    self.escrowed -= g.amount
    log RequestCancelled(
        request_id=request_id,
        dataset_id=g.dataset_id,
        requester=g.requester,
        owner=owner,
        purpose=g.purpose,
        refund=g.amount,
    )
    self._pay(g.requester, g.amount)


@external
@nonreentrant
def revoke(request_id: uint256):
    """
    @notice Stop a grant at once (dataset owner only). No refund: see the contract notice.
            An already expired grant can be revoked too, which only records it.
    """
    g: Grant = self._grants[request_id]
    assert g.status != STATUS_NONE, "revoke: unknown request"
    owner: address = self.datasets[g.dataset_id].owner
    assert owner == msg.sender, "revoke: caller is not the owner"
    assert g.status == STATUS_GRANTED, "revoke: request not granted"
    self._grants[request_id].status = STATUS_REVOKED
    log AccessRevoked(
        request_id=request_id,
        dataset_id=g.dataset_id,
        requester=g.requester,
        owner=owner,
        purpose=g.purpose,
        expires_at=g.expires_at,
        revoked_at=block.timestamp,
    )


# ---------------------------------------------------------------- views


@view
@external
def check_access(
    request_id: uint256, requester: address, dataset_id: bytes32, purpose: uint256
) -> bool:
    """
    @notice True only if `request_id` is a GRANTED, unexpired grant to `requester` for
            `dataset_id` and `purpose`, and no patient of the dataset has withdrawn from
            `purpose`. What an owner's gateway asks before each read.
    """
    g: Grant = self._grants[request_id]
    return (
        g.status == STATUS_GRANTED
        and block.timestamp < g.expires_at
        and g.requester == requester
        and g.dataset_id == dataset_id
        and g.purpose == purpose
        and self._patients_consent(dataset_id, purpose)
    )


@view
@external
def grant_info(request_id: uint256) -> Grant:
    """
    @notice Everything recorded about a request (all zero for an unknown id). `status`
            is the stored one: a GRANTED grant may have expired; see `access_status`.
    """
    return self._grants[request_id]


@view
@external
def access_status(request_id: uint256) -> uint8:
    """
    @notice The stored status, except STATUS_EXPIRED for a GRANTED grant past its expiry.
    """
    g: Grant = self._grants[request_id]
    if g.status == STATUS_GRANTED and block.timestamp >= g.expires_at:
        return STATUS_EXPIRED
    return g.status
