# pragma version ~=0.4.3
"""
@title ailedger federated jobs
@notice Federated learning across institutions, agreed on chain. A requester posts a task
        (the hash of its description, the number of rounds, how many institutions it
        needs, the purpose, the hash of the validation set it will score contributions
        on) and escrows a reward pool. Institutions join with a dataset they own and the
        grant through which the requester may use it for the task's purpose, and stake.
        Joining is one act of the institution's own: nobody else re-issues anything.

        Lifecycle:
            OPEN      -> RUNNING    the requester starts, with at least min_participants
            OPEN      -> CANCELLED  the requester cancels, or anyone once the join
                                    deadline passed without a start: pool and stakes back
            RUNNING   -> FINISHED   the requester finishes, or anyone once the run
                                    deadline passed: the pool is paid out pro rata to
                                    the scores of the anchored rounds, stakes returned

        Each round is anchored by the requester (who runs the aggregation): the global
        model's hash, the institutions whose updates it aggregated, those that dropped,
        the root of the update commitments and each aggregated institution's
        contribution score. Consent is checked here: a round cannot count an institution
        whose grant is no longer valid when the round is anchored (revoked or expired),
        so a withdrawal takes effect at the next round. Nobody is paid for a round that
        did not happen: with no anchored round (or all scores zero) the pool goes back to
        the requester.
@dev Funds move only through the token fixed at construction; functions that move funds
     are @nonreentrant and change state before any token call. Token calls must return
     True.
"""

from ethereum.ercs import IERC20

MAX_PARTICIPANTS: public(constant(uint256)) = 32
MAX_ROUNDS: public(constant(uint256)) = 1000
# Scores are whole numbers (the coordinator scales them, e.g. parts per million); one
# round's scores stay far from overflow when summed over MAX_ROUNDS.
MAX_SCORE: public(constant(uint256)) = 10**30

STATUS_NONE: public(constant(uint8)) = 0
STATUS_OPEN: public(constant(uint8)) = 1
STATUS_RUNNING: public(constant(uint8)) = 2
STATUS_FINISHED: public(constant(uint8)) = 3
STATUS_CANCELLED: public(constant(uint8)) = 4


struct DatasetInfo:
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
    def check_access(
        request_id: uint256, requester: address, dataset_id: bytes32, purpose: uint256
    ) -> bool: view
    def datasets(dataset_id: bytes32) -> DatasetInfo: view


struct Job:
    requester: address
    task_hash: bytes32
    validation_hash: bytes32
    purpose: uint256
    rounds: uint256
    min_participants: uint256
    max_participants: uint256
    stake: uint256
    reward: uint256
    join_deadline: uint256
    run_deadline: uint256
    status: uint8
    rounds_done: uint256
    score_total: uint256


struct Member:
    dataset_id: bytes32
    grant_id: uint256
    score: uint256
    joined: bool


event JobPosted:
    job_id: indexed(uint256)
    requester: indexed(address)
    task_hash: bytes32
    validation_hash: bytes32
    purpose: uint256
    rounds: uint256
    min_participants: uint256
    max_participants: uint256
    stake: uint256
    reward: uint256
    join_deadline: uint256
    run_deadline: uint256


event Joined:
    job_id: indexed(uint256)
    institution: indexed(address)
    dataset_id: bytes32
    grant_id: uint256
    stake: uint256


event Started:
    job_id: indexed(uint256)
    participants: uint256


event RoundAnchored:
    job_id: indexed(uint256)
    round: uint256
    model_hash: bytes32
    commitments_root: bytes32
    aggregated: DynArray[address, MAX_PARTICIPANTS]
    scores: DynArray[uint256, MAX_PARTICIPANTS]
    dropped: DynArray[address, MAX_PARTICIPANTS]


event Paid:
    job_id: indexed(uint256)
    institution: indexed(address)
    reward: uint256
    stake: uint256


event Finished:
    job_id: indexed(uint256)
    rounds_done: uint256
    refunded: uint256


event Cancelled:
    job_id: indexed(uint256)
    refunded: uint256


TOKEN: public(immutable(IERC20))
DATA_MARKET: public(immutable(IDataMarket))

job_count: public(uint256)
_jobs: HashMap[uint256, Job]
_members: HashMap[uint256, HashMap[address, Member]]
_member_list: HashMap[uint256, DynArray[address, MAX_PARTICIPANTS]]


@deploy
def __init__(token: address, data_market: address):
    assert token.is_contract, "init: token is not a contract"
    assert data_market.is_contract, "init: data market is not a contract"
    TOKEN = IERC20(token)
    DATA_MARKET = IDataMarket(data_market)


@internal
def _pay(to: address, amount: uint256):
    if amount != 0:
        assert extcall TOKEN.transfer(to, amount), "token: transfer failed"


@internal
def _pull(src: address, amount: uint256):
    if amount != 0:
        assert extcall TOKEN.transferFrom(src, self, amount), "token: transferFrom failed"


# ---------------------------------------------------------------- posting and joining


@external
@nonreentrant
def post(
    task_hash: bytes32,
    validation_hash: bytes32,
    purpose: uint256,
    rounds: uint256,
    min_participants: uint256,
    max_participants: uint256,
    stake: uint256,
    reward: uint256,
    join_deadline: uint256,
    run_deadline: uint256,
) -> uint256:
    """
    @notice Post a federated task and escrow its reward pool (approve the tokens first).
    @param purpose Exactly one DataMarket purpose bit; each institution's grant must be
           for it.
    @param validation_hash The hash of the validation set contributions are scored on,
           committed before anyone joins.
    """
    assert task_hash != empty(bytes32), "fl: task hash is zero"
    assert validation_hash != empty(bytes32), "fl: validation hash is zero"
    assert purpose != 0 and purpose & (purpose - 1) == 0, "fl: name exactly one purpose"
    assert rounds != 0 and rounds <= MAX_ROUNDS, "fl: rounds out of range"
    assert min_participants != 0, "fl: at least one participant"
    assert min_participants <= max_participants, "fl: min over max participants"
    assert max_participants <= MAX_PARTICIPANTS, "fl: too many participants"
    assert join_deadline > block.timestamp, "fl: join deadline passed"
    assert run_deadline > join_deadline, "fl: run deadline before join deadline"
    job_id: uint256 = self.job_count + 1
    self.job_count = job_id
    self._jobs[job_id] = Job(
        requester=msg.sender,
        task_hash=task_hash,
        validation_hash=validation_hash,
        purpose=purpose,
        rounds=rounds,
        min_participants=min_participants,
        max_participants=max_participants,
        stake=stake,
        reward=reward,
        join_deadline=join_deadline,
        run_deadline=run_deadline,
        status=STATUS_OPEN,
        rounds_done=0,
        score_total=0,
    )
    self._pull(msg.sender, reward)
    log JobPosted(
        job_id=job_id,
        requester=msg.sender,
        task_hash=task_hash,
        validation_hash=validation_hash,
        purpose=purpose,
        rounds=rounds,
        min_participants=min_participants,
        max_participants=max_participants,
        stake=stake,
        reward=reward,
        join_deadline=join_deadline,
        run_deadline=run_deadline,
    )
    return job_id


@external
@nonreentrant
def join(job_id: uint256, dataset_id: bytes32, grant_id: uint256):
    """
    @notice Join an open job with a dataset the caller owns, under the grant that lets
            the job's requester use it for the job's purpose; stakes the job's stake.
    """
    job: Job = self._jobs[job_id]
    assert job.status == STATUS_OPEN, "fl: job not open"
    assert block.timestamp < job.join_deadline, "fl: joining closed"
    assert not self._members[job_id][msg.sender].joined, "fl: already joined"
    assert len(self._member_list[job_id]) < job.max_participants, "fl: job is full"
    # Datasets never change hands and an institution joins once, so no dataset can be
    # in a job twice: no record of the datasets used is needed.
    info: DatasetInfo = staticcall DATA_MARKET.datasets(dataset_id)
    assert info.owner == msg.sender, "fl: not the dataset's owner"
    assert staticcall DATA_MARKET.check_access(
        grant_id, job.requester, dataset_id, job.purpose
    ), "fl: no valid grant for the purpose"
    self._members[job_id][msg.sender] = Member(
        dataset_id=dataset_id, grant_id=grant_id, score=0, joined=True
    )
    self._member_list[job_id].append(msg.sender)
    self._pull(msg.sender, job.stake)
    log Joined(
        job_id=job_id,
        institution=msg.sender,
        dataset_id=dataset_id,
        grant_id=grant_id,
        stake=job.stake,
    )


@external
def start(job_id: uint256):
    """@notice Close joining and start the rounds (requester only)."""
    job: Job = self._jobs[job_id]
    assert job.requester == msg.sender, "fl: caller is not the requester"
    assert job.status == STATUS_OPEN, "fl: job not open"
    count: uint256 = len(self._member_list[job_id])
    assert count >= job.min_participants, "fl: not enough participants"
    self._jobs[job_id].status = STATUS_RUNNING
    log Started(job_id=job_id, participants=count)


@external
@nonreentrant
def cancel(job_id: uint256):
    """
    @notice Cancel an open job: the requester at any time, anyone once the join deadline
            passed. The pool goes back to the requester and every stake to its owner.
    """
    job: Job = self._jobs[job_id]
    assert job.status == STATUS_OPEN, "fl: job not open"
    assert (
        msg.sender == job.requester or block.timestamp >= job.join_deadline
    ), "fl: only the requester, before the join deadline"
    self._jobs[job_id].status = STATUS_CANCELLED
    for member: address in self._member_list[job_id]:
        self._pay(member, job.stake)
        log Paid(job_id=job_id, institution=member, reward=0, stake=job.stake)
    self._pay(job.requester, job.reward)
    log Cancelled(job_id=job_id, refunded=job.reward)


# ---------------------------------------------------------------- rounds


@external
def anchor_round(
    job_id: uint256,
    round: uint256,
    model_hash: bytes32,
    commitments_root: bytes32,
    aggregated: DynArray[address, MAX_PARTICIPANTS],
    scores: DynArray[uint256, MAX_PARTICIPANTS],
    dropped: DynArray[address, MAX_PARTICIPANTS],
):
    """
    @notice Anchor the next round (requester only): the aggregated global model's hash,
            the root of the aggregated updates' commitments, the institutions aggregated
            with their contribution scores, and those that dropped. Each aggregated
            institution must be a member whose grant is still valid now; each dropped
            one a member not aggregated; nobody is named twice.
    """
    job: Job = self._jobs[job_id]
    assert job.requester == msg.sender, "fl: caller is not the requester"
    assert job.status == STATUS_RUNNING, "fl: job not running"
    assert round == job.rounds_done + 1, "fl: rounds are anchored in order"
    assert round <= job.rounds, "fl: all rounds already anchored"
    assert model_hash != empty(bytes32), "fl: model hash is zero"
    assert len(aggregated) != 0, "fl: a round aggregates someone"
    assert len(scores) == len(aggregated), "fl: one score per institution"
    total: uint256 = 0
    for i: uint256 in range(len(aggregated), bound=MAX_PARTICIPANTS):
        who: address = aggregated[i]
        member: Member = self._members[job_id][who]
        assert member.joined, "fl: not a participant"
        assert staticcall DATA_MARKET.check_access(
            member.grant_id, job.requester, member.dataset_id, job.purpose
        ), "fl: a participant's grant is no longer valid"
        assert scores[i] <= MAX_SCORE, "fl: score too large"
        for j: uint256 in range(i, bound=MAX_PARTICIPANTS):
            assert aggregated[j] != who, "fl: institution listed twice"
        self._members[job_id][who].score = member.score + scores[i]
        total += scores[i]
    # The event is the round's record: nobody both aggregated and dropped, nobody twice.
    for k: uint256 in range(len(dropped), bound=MAX_PARTICIPANTS):
        gone: address = dropped[k]
        assert self._members[job_id][gone].joined, "fl: dropped one is not a participant"
        assert gone not in aggregated, "fl: dropped one was aggregated"
        for j: uint256 in range(k, bound=MAX_PARTICIPANTS):
            assert dropped[j] != gone, "fl: institution listed twice"
    self._jobs[job_id].rounds_done = round
    self._jobs[job_id].score_total = job.score_total + total
    log RoundAnchored(
        job_id=job_id,
        round=round,
        model_hash=model_hash,
        commitments_root=commitments_root,
        aggregated=aggregated,
        scores=scores,
        dropped=dropped,
    )


@external
@nonreentrant
def finish(job_id: uint256):
    """
    @notice Pay out a running job: the requester at any time, anyone once the run
            deadline passed. Each member gets its stake back and the pool pro rata to
            its scores; the rounding remainder, or the whole pool when no score was
            anchored, goes back to the requester.
    """
    job: Job = self._jobs[job_id]
    assert job.status == STATUS_RUNNING, "fl: job not running"
    assert (
        msg.sender == job.requester or block.timestamp >= job.run_deadline
    ), "fl: only the requester, before the run deadline"
    self._jobs[job_id].status = STATUS_FINISHED
    paid: uint256 = 0
    for member: address in self._member_list[job_id]:
        share: uint256 = 0
        if job.score_total != 0:
            score: uint256 = self._members[job_id][member].score
            share = self._pro_rata(job.reward, score, job.score_total)
        paid += share
        self._pay(member, share + job.stake)
        log Paid(job_id=job_id, institution=member, reward=share, stake=job.stake)
    self._pay(job.requester, job.reward - paid)
    log Finished(job_id=job_id, rounds_done=job.rounds_done, refunded=job.reward - paid)


@internal
@pure
def _pro_rata(amount: uint256, part: uint256, whole: uint256) -> uint256:
    """
    @dev amount * part // whole, exactly, without forming amount * part: with a large
         pool that product overflows, and finish would revert for good, locking the
         pool and every stake. part <= whole <= MAX_ROUNDS * MAX_PARTICIPANTS *
         MAX_SCORE, so (amount % whole) * part stays below 2**256.
    """
    return amount // whole * part + amount % whole * part // whole


# ---------------------------------------------------------------- views


@view
@external
def job(job_id: uint256) -> Job:
    """@notice Everything recorded about a job (all zero for an unknown id)."""
    return self._jobs[job_id]


@view
@external
def members(job_id: uint256) -> DynArray[address, MAX_PARTICIPANTS]:
    """@notice The institutions that joined, in joining order."""
    return self._member_list[job_id]


@view
@external
def member(job_id: uint256, institution: address) -> Member:
    """@notice One institution's dataset, grant and accumulated score."""
    return self._members[job_id][institution]
