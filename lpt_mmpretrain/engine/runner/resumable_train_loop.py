"""An epoch-based training loop that stops between iterations and resumes
in the middle of an epoch."""
import contextlib
import copy
import itertools
from typing import Iterator, Sized

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import DATA_SAMPLERS, DATASETS, LOOPS

from ...datasets.data_checks import check_dataset_paths
from ...datasets.samplers import DualClassBalancedSampler
from ...datasets.stream_index_dataset import with_stream_index

__all__ = ['ResumableEpochBasedTrainLoop', 'streamed_dataloader_cfg']


class _SkipFirst:
    """A sampler that yields ``sampler``'s items from position ``skip`` on,
    while reporting ``sampler``'s full length (the loop's and the logger's
    iterations per epoch stay those of a whole epoch)."""

    def __init__(self, sampler: Sized, skip: int) -> None:
        self.sampler = sampler
        self.skip = skip

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return len(self.sampler)


@contextlib.contextmanager
def _batches_from(dataloader, start: int):
    """``(batch_idx, batch)`` of ``dataloader`` from batch ``start`` on: the
    sampler skips the items of the earlier batches (nothing is loaded for
    them); a batch sampler we cannot look into loads and drops them."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if start == 0:
        yield enumerate(dataloader)
    elif batch_sampler is not None and hasattr(batch_sampler, 'sampler'):
        sampler = batch_sampler.sampler
        batch_sampler.sampler = _SkipFirst(sampler,
                                           start * batch_sampler.batch_size)
        try:
            yield enumerate(dataloader, start=start)
        finally:
            batch_sampler.sampler = sampler
    else:
        print_log(
            'ResumableEpochBasedTrainLoop: the dataloader has no '
            f'`batch_sampler.sampler`; loading and dropping the {start} '
            'batches already trained on.',
            logger='current')
        yield itertools.islice(enumerate(dataloader), start, None)


def streamed_dataloader_cfg(dataloader):
    """``dataloader`` (a config dict or a DataLoader); a config whose sampler
    is ``DualClassBalancedSampler`` gets its data set built, checked
    (:func:`check_dataset_paths`) and wrapped by :func:`with_stream_index`.
    """
    if not isinstance(dataloader, dict):
        return dataloader
    sampler = dataloader.get('sampler') or {}
    sampler_type = sampler.get('type') if isinstance(sampler, dict) else None
    if isinstance(sampler_type, str):
        sampler_type = DATA_SAMPLERS.get(sampler_type)
    dataset = dataloader.get('dataset')
    if not (isinstance(sampler_type, type)
            and issubclass(sampler_type, DualClassBalancedSampler)
            and isinstance(dataset, dict)):
        return dataloader
    check_dataset_paths(dataset, 'train_dataloader.dataset')
    dataloader = copy.copy(dataloader)
    dataloader['dataset'] = with_stream_index(DATASETS.build(dataset))
    return dataloader


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """MMEngine's ``EpochBasedTrainLoop`` that resumes mid-epoch exactly and
    stops between iterations.

    - **Mid-epoch resume.** A checkpoint written during an epoch (e.g. by
      ``PreemptionCheckpointHook``) holds ``epoch`` (the epoch in progress)
      and ``iter`` (iterations done). MMEngine's loop would restart that
      epoch from its first batch; after ``--resume`` this one continues it
      at its next batch: the sampler skips what was trained (the data sets'
      samplers are deterministic in ``(seed, epoch)``), and the hooks see
      the true batch index. Together with ``IterSeedHook`` the resumed run
      trains on the same batches with the same random numbers as an
      uninterrupted one; augmentations in dataloader worker processes draw
      new numbers after a resume (see ``IterSeedHook``).
    - **Stopping between iterations.** ``stop_training`` (which
      ``PreemptionCheckpointHook`` sets on a signal) ends training after the
      iteration in progress, as in ``IterBasedTrainLoop``, rather than after
      the epoch: an unfinished epoch gets no ``after_train_epoch`` and no
      validation; ``after_train`` runs.

    - **Any data set with the dual sampler.** When the loader's sampler is
      ``DualClassBalancedSampler`` and the data set does not take its
      ``(index, stream)`` indices itself (MMPretrain's ``CustomDataset``,
      ``ImageNet``, MMEngine's ``ConcatDataset``, ...), the loop builds the
      data set and puts a ``StreamIndexDataset`` around it: configs keep
      their data set unchanged.

    Args: those of ``EpochBasedTrainLoop`` (``runner``, ``dataloader``,
    ``max_epochs``, ``val_begin``, ``val_interval``, ``dynamic_intervals``).

    Examples:
        >>> train_cfg = dict(type='ResumableEpochBasedTrainLoop',
        ...                  max_epochs=90, val_interval=5)
    """

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        # The val / test data too, before the training data is built.
        for split in ('val_dataloader', 'test_dataloader'):
            loader = getattr(runner, 'cfg', {}).get(split) or {}
            check_dataset_paths(loader.get('dataset'), f'{split}.dataset')
        super().__init__(runner, streamed_dataloader_cfg(dataloader), *args,
                         **kwargs)

    def run(self) -> nn.Module:
        """Launch training, from the resumed iteration on."""
        self.runner.call_hook('before_train')
        start = self.resume_position()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch(start)
            start = 0
            if self.stop_training:  # no validation after a stop
                break
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0
                         or self._epoch == self._max_epochs)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model

    def resume_position(self) -> int:
        """The batch of the current epoch to start at: the iterations done
        (``iter``) past the epochs done (``epoch``); 0 unless resumed from a
        checkpoint written during an epoch."""
        per_epoch = len(self.dataloader)
        start = self._iter - self._epoch * per_epoch
        if not 0 <= start <= per_epoch:
            raise RuntimeError(
                f'ResumableEpochBasedTrainLoop: the resumed checkpoint was '
                f'written after {self._iter} iterations in epoch '
                f'{self._epoch}, but an epoch now has {per_epoch} '
                'iterations: the data set, the batch size or the number '
                'of GPUs changed since. Resume with the settings of the '
                'interrupted run, or start from its last epoch '
                'checkpoint with `load_from` instead of `--resume`.')
        if start > 0:
            print_log(
                f'ResumableEpochBasedTrainLoop: resuming epoch '
                f'{self._epoch + 1} at iteration {start + 1}/{per_epoch}; '
                f'the first {start} batches are skipped.',
                logger='current')
        return start

    def run_epoch(self, start: int = 0) -> None:
        """Iterate one epoch from its batch ``start``, until its end or
        ``stop_training``."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        per_epoch = len(self.dataloader)
        with _batches_from(self.dataloader, start) as batches:
            for idx, data_batch in batches:
                self.run_iter(idx, data_batch)
                if self.stop_training and idx + 1 < per_epoch:
                    return  # an unfinished epoch: it stays the current one
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
