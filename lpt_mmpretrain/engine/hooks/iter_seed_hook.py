import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

__all__ = ['IterSeedHook']

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class IterSeedHook(Hook):
    """Re-seed the random generators from (seed, step, rank) during training.

    Everything random in an LPT training step after the sampler (the A-GCL
    Gaussian cloud, the head's dropout, and with ``num_workers=0`` the
    augmentations) draws from the global torch / numpy / python generators.
    MMEngine checkpoints do not hold their states, so a resumed run would
    draw different numbers from an uninterrupted one. This hook makes the
    generators' state a function of the runner's seed, the current epoch or
    iteration and the rank, so a run resumed from a checkpoint continues with
    exactly the numbers the uninterrupted run used, and every rank draws its
    own.

    With ``num_workers > 0`` the augmentations run in worker processes seeded
    by MMEngine's ``worker_init_fn``; those restart with their workers and
    are not covered.

    Args:
        seed_offset (int): Added to the runner's seed, to draw other numbers
            with the same data order. Defaults to 0.
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed_offset: int = 0) -> None:
        self.seed_offset = seed_offset

    def _reseed(self, runner, kind: int, step: int) -> None:
        seed = runner.seed if runner.seed is not None else 0
        state = np.random.SeedSequence(
            [seed + self.seed_offset, kind, step,
             get_rank()])
        value = int(state.generate_state(1)[0])
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)  # also seeds every CUDA device

    def before_train_epoch(self, runner) -> None:
        # Covers the first batch of the epoch, fetched before any iteration.
        self._reseed(runner, 0, runner.epoch)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        self._reseed(runner, 1, runner.iter)
