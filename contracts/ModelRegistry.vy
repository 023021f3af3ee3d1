# pragma version ~=0.4.3
"""
@title ailedger model registry
@notice Models and their versions, each with a verifiable lineage. A model is a random
        `model_id` owned by whoever registers its first version; only that owner adds
        later versions (1, 2, ...) or retires them. Each version records the hash of its
        signed passport bundle (sha256, unique across all versions of all models), the
        hashes of its model card, evaluation report and metrics, the ComputeMarket jobs
        that trained it, and a licence: `price` AIL base units per `period` seconds
        (price 0: free, and then period 0).

        Lineage is checked here, on chain, for every job a version cites:
          - the job exists and its requester is the registrant: nobody can claim the
            training run of someone else;
          - the job is COMPLETED (its result settled, see ComputeMarket.vy);
          - a job that computed on datasets did so under the DataMarket's
            model-training purpose (its grants were checked for that purpose when it
            was posted), so a model cannot launder data granted for another purpose;
          - a job backs versions of one model only (`job_model`); later versions of the
            same model may cite it again.
        A version may cite no job (a model trained elsewhere, e.g. by DP training at a
        data owner's node): its lineage on chain is then empty, and its
        VersionRegistered event says so with empty `jobs` and `datasets`.

        Events carry everything (VersionRegistered: every field of the version, its
        jobs and the union of their datasets; VersionRetired), so replaying them in
        order rebuilds the whole state; `registered_at` is the timestamp of the block
        holding VersionRegistered.
@dev No funds move here (licences are sold elsewhere); the only external calls are
     views into the ComputeMarket (and the DataMarket, once, at construction).
"""

MAX_JOBS: public(constant(uint256)) = 8
# ComputeMarket's MAX_DATASETS: datasets per job.
MAX_JOB_DATASETS: constant(uint256) = 4
MAX_LINEAGE_DATASETS: public(constant(uint256)) = MAX_JOBS * MAX_JOB_DATASETS
# A licence period longer than ten years is a typo, not a licence.
MAX_PERIOD: public(constant(uint256)) = 10 * 365 * 86400
# ComputeMarket's STATUS_COMPLETED.
JOB_COMPLETED: constant(uint8) = 4


# The layout of ComputeMarket's `Job`, as returned by its `job_info` view.
struct MarketJob:
    requester: address
    bundle_hash: bytes32
    cpu_cores: uint256
    ram_mb: uint256
    gpu_mem_mb: uint256
    max_price_per_hour: uint256
    max_hours: uint256
    deadline: uint256
    redundancy: uint256
    min_reputation: int256
    require_confined: bool
    status: uint8
    escrow: uint256
    bid_deadline: uint256
    commits: uint256
    reveals: uint256
    reveal_deadline: uint256
    review_deadline: uint256
    result_hash: bytes32


interface IComputeMarket:
    def job_info(job_id: uint256) -> MarketJob: view
    def job_datasets(job_id: uint256) -> (DynArray[bytes32, MAX_JOB_DATASETS], uint256): view
    def DATA_MARKET() -> address: view


interface IDataMarket:
    def PURPOSE_MODEL_TRAINING() -> uint256: view


struct Model:
    owner: address
    versions: uint256


struct Version:
    passport_hash: bytes32
    card_hash: bytes32
    eval_hash: bytes32
    metrics_hash: bytes32
    price: uint256
    period: uint256
    registered_at: uint256
    retired: bool


# Where a passport hash is registered; version 0 = nowhere.
struct PassportRef:
    model_id: bytes32
    version: uint256


event VersionRegistered:
    model_id: indexed(bytes32)
    version: uint256
    owner: indexed(address)
    passport_hash: bytes32
    card_hash: bytes32
    eval_hash: bytes32
    metrics_hash: bytes32
    jobs: DynArray[uint256, MAX_JOBS]
    datasets: DynArray[bytes32, MAX_LINEAGE_DATASETS]
    price: uint256
    period: uint256


event VersionRetired:
    model_id: indexed(bytes32)
    version: uint256
    owner: indexed(address)


DATA_MARKET: public(immutable(address))
COMPUTE_MARKET: public(immutable(IComputeMarket))
# The DataMarket's purpose bit for model training, read from it at construction.
MODEL_TRAINING: public(immutable(uint256))

_models: HashMap[bytes32, Model]
_versions: HashMap[bytes32, HashMap[uint256, Version]]
_version_jobs: HashMap[bytes32, HashMap[uint256, DynArray[uint256, MAX_JOBS]]]
_passports: HashMap[bytes32, PassportRef]
# job id -> the model its versions belong to (zero: it backs none yet)
job_model: public(HashMap[uint256, bytes32])


@deploy
def __init__(data_market: address, compute_market: address):
    """
    @param data_market The DataMarket whose purposes the jobs' grants carry.
    @param compute_market The ComputeMarket whose jobs versions cite; it must use the
           same DataMarket.
    """
    assert data_market.is_contract, "init: data market is not a contract"
    assert compute_market.is_contract, "init: compute market is not a contract"
    assert staticcall IComputeMarket(compute_market).DATA_MARKET() == data_market, (
        "init: compute market uses another data market"
    )
    DATA_MARKET = data_market
    COMPUTE_MARKET = IComputeMarket(compute_market)
    MODEL_TRAINING = staticcall IDataMarket(data_market).PURPOSE_MODEL_TRAINING()


@internal
def _check_lineage(
    model_id: bytes32, jobs: DynArray[uint256, MAX_JOBS]
) -> DynArray[bytes32, MAX_LINEAGE_DATASETS]:
    """Check every job and bind it to the model; returns the union of their datasets."""
    datasets: DynArray[bytes32, MAX_LINEAGE_DATASETS] = []
    for i: uint256 in range(MAX_JOBS):
        if i >= len(jobs):
            break
        job_id: uint256 = jobs[i]
        for j: uint256 in range(MAX_JOBS):
            if j >= i:
                break
            assert jobs[j] != job_id, "models: job listed twice"
        job: MarketJob = staticcall COMPUTE_MARKET.job_info(job_id)
        assert job.requester != empty(address), "models: unknown job"
        assert job.requester == msg.sender, "models: job of another requester"
        assert job.status == JOB_COMPLETED, "models: job not completed"
        bound: bytes32 = self.job_model[job_id]
        assert bound == empty(bytes32) or bound == model_id, "models: job backs another model"
        self.job_model[job_id] = model_id
        used: DynArray[bytes32, MAX_JOB_DATASETS] = []
        purpose: uint256 = 0
        used, purpose = staticcall COMPUTE_MARKET.job_datasets(job_id)
        if len(used) == 0:
            continue
        assert purpose & MODEL_TRAINING != 0, "models: job data not for model training"
        for ds: bytes32 in used:
            if ds not in datasets:
                datasets.append(ds)
    return datasets


@external
def register_version(
    model_id: bytes32,
    passport_hash: bytes32,
    card_hash: bytes32,
    eval_hash: bytes32,
    metrics_hash: bytes32,
    jobs: DynArray[uint256, MAX_JOBS],
    price: uint256,
    period: uint256,
) -> uint256:
    """
    @notice Register the next version of a model. The first call for `model_id` creates
            the model with the caller as its owner; later calls are the owner's only.
    @param model_id A random, nonzero id chosen by the registrant.
    @param passport_hash sha256 of the signed passport bundle; nonzero, never used before.
    @param jobs The ComputeMarket jobs that trained it (0 .. MAX_JOBS): each the
           caller's own, COMPLETED, over model-training data if over any, and backing
           no other model.
    @param price AIL base units per `period` seconds; 0 = free (then period is 0).
    @param period 1 .. MAX_PERIOD seconds when price is not 0.
    @return The new version number (1 for a new model).
    """
    assert model_id != empty(bytes32), "models: model id is zero"
    assert passport_hash != empty(bytes32), "models: passport hash is zero"
    assert self._passports[passport_hash].version == 0, "models: passport already registered"
    if price == 0:
        assert period == 0, "models: a free licence has no period"
    else:
        assert period != 0 and period <= MAX_PERIOD, "models: licence period out of range"
    model: Model = self._models[model_id]
    if model.owner == empty(address):
        model.owner = msg.sender
    else:
        assert model.owner == msg.sender, "models: caller is not the model owner"
    datasets: DynArray[bytes32, MAX_LINEAGE_DATASETS] = self._check_lineage(model_id, jobs)

    version: uint256 = model.versions + 1
    self._models[model_id] = Model(owner=model.owner, versions=version)
    self._versions[model_id][version] = Version(
        passport_hash=passport_hash,
        card_hash=card_hash,
        eval_hash=eval_hash,
        metrics_hash=metrics_hash,
        price=price,
        period=period,
        registered_at=block.timestamp,
        retired=False,
    )
    self._version_jobs[model_id][version] = jobs
    self._passports[passport_hash] = PassportRef(model_id=model_id, version=version)
    log VersionRegistered(
        model_id=model_id,
        version=version,
        owner=msg.sender,
        passport_hash=passport_hash,
        card_hash=card_hash,
        eval_hash=eval_hash,
        metrics_hash=metrics_hash,
        jobs=jobs,
        datasets=datasets,
        price=price,
        period=period,
    )
    return version


@external
def retire_version(model_id: bytes32, version: uint256):
    """
    @notice Retire a version (owner only): it stays on record, marked retired, and its
            passport hash stays used. There is no way back.
    """
    model: Model = self._models[model_id]
    assert model.owner != empty(address), "models: unknown model"
    assert model.owner == msg.sender, "models: caller is not the model owner"
    assert version != 0 and version <= model.versions, "models: unknown version"
    assert not self._versions[model_id][version].retired, "models: version already retired"
    self._versions[model_id][version].retired = True
    log VersionRetired(model_id=model_id, version=version, owner=msg.sender)


# ---------------------------------------------------------------- views


@view
@external
def model(model_id: bytes32) -> (address, uint256):
    """@notice (owner, number of versions); (zero address, 0) for an unknown model."""
    m: Model = self._models[model_id]
    return m.owner, m.versions


@view
@external
def version(model_id: bytes32, version: uint256) -> Version:
    """@notice A version's record; all zero for an unknown model or version."""
    return self._versions[model_id][version]


@view
@external
def version_jobs(model_id: bytes32, version: uint256) -> DynArray[uint256, MAX_JOBS]:
    """@notice The jobs a version cites, in the registrant's order (empty if none)."""
    return self._version_jobs[model_id][version]


@view
@external
def passport_version(passport_hash: bytes32) -> (bytes32, uint256):
    """@notice (model_id, version) registered with this passport hash; (0, 0) if none."""
    ref: PassportRef = self._passports[passport_hash]
    return ref.model_id, ref.version


@view
@external
def passport_used(passport_hash: bytes32) -> bool:
    """@notice True once a version was registered with this passport hash, for good."""
    return self._passports[passport_hash].version != 0
