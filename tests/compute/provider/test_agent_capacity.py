"""The agent's bookkeeping of what its machine has free: cores, memory, GPUs, job slots."""

from __future__ import annotations

from ailedger.compute.provider.agent import Capacity


def test_gpu_jobs_get_a_gpu_of_their_own_and_give_it_back() -> None:
    free = Capacity(cores=8, ram_mb=16_000, gpus=[0, 1], slots=3)
    assert free.fits(2, 4_000, 8_000)
    first = free.take(2, 4_000, 8_000)
    second = free.take(2, 4_000, 8_000)
    assert {first, second} == {0, 1}  # CUDA_VISIBLE_DEVICES of each job
    assert not free.fits(1, 1_000, 1)  # no GPU left, though cores and a slot are
    assert free.fits(1, 1_000, 0)  # a CPU job still fits
    free.give(2, 4_000, first)
    assert free.fits(1, 1_000, 1) and free.take(1, 1_000, 1) == first


def test_cores_memory_and_slots_bound_what_is_bid_on() -> None:
    free = Capacity(cores=4, ram_mb=8_000, gpus=[], slots=2)
    assert not free.fits(5, 1_000, 0) and not free.fits(1, 9_000, 0)
    assert free.take(3, 6_000, 0) is None
    assert not free.fits(2, 1_000, 0) and not free.fits(1, 3_000, 0)
    free.take(1, 1_000, 0)
    assert not free.fits(0, 0, 0)  # both slots in use
    free.give(3, 6_000, None)
    assert free.fits(3, 7_000, 0)
