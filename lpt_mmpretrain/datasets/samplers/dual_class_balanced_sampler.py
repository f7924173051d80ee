"""The dual (class-balanced + instance-balanced) sampler of LPT."""
from typing import Iterator, Optional, Sized, Tuple

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmpretrain.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ...checks import check_int
from ...structures.dual_stream import STREAM_CB, STREAM_IB
from ..class_counts import check_class_counts, count_labels
from ..training_counts import dataset_labels

__all__ = ['DualClassBalancedSampler']


@DATA_SAMPLERS.register_module()
class DualClassBalancedSampler(Sampler):
    """Yields one class-balanced and one instance-balanced batch per iteration.

    For every iteration this sampler yields ``batch_size`` class-balanced
    items, then ``batch_size`` instance-balanced items, each as a tuple
    ``(index, stream)`` with ``stream`` equal to ``STREAM_CB`` (0) or
    ``STREAM_IB`` (1). The data set must accept such tuples as indices and
    declare it with ``accepts_stream_index = True`` (as every data set built
    on ``LongTailMixin`` does).

    The loader's batch is ``2 * batch_size``. In a config, write it once as
    the loader's ``batch_size`` and let ``DualStreamBatchSampler`` give this
    sampler half of it::

        train_dataloader = dict(
            batch_size=64,  # 32 class-balanced + 32 instance-balanced
            sampler=dict(type='DualClassBalancedSampler'),
            batch_sampler=dict(type='DualStreamBatchSampler'))

    - Class-balanced stream: classes come from a shuffled cycle (every class
      once per cycle, reshuffled when the cycle ends); each drawn class
      contributes ``num_samples_cls`` consecutive images taken from its own
      shuffled cycle over its images.
    - Instance-balanced stream: a random permutation of the data set.

    Both streams are built for all ranks at once from ``(seed, epoch)``: with
    ``W`` ranks, an epoch has ``T = floor(N / (W * batch_size))`` iterations,
    ``N`` being the data set size, and at iteration ``t`` rank ``r`` takes
    positions ``[t * G + r * b, t * G + (r + 1) * b)`` of each global stream
    (``G = W * b``, ``b = batch_size``). So the union over ranks of an
    iteration equals the batch a single-rank run with batch ``G`` would see.
    Every epoch starts new cycles (the sequence depends on ``(seed, epoch)``
    only, so a resumed run sees the same data as an uninterrupted one).

    Args:
        dataset (Sized): The data set. It must declare
            ``accepts_stream_index = True`` (``ResumableEpochBasedTrainLoop``
            wraps any other data set in a ``StreamIndexDataset``) and provide
            ``get_gt_labels()``, ``get_data_info(idx)`` or
            ``get_cat_ids(idx)``.
        batch_size (int, optional): Images per stream per iteration on this
            rank (the loader's batch is twice this). Must be divisible by
            ``num_samples_cls``. Defaults to None: ``DualStreamBatchSampler``
            sets it to half the loader's ``batch_size``
            (:meth:`set_batch_size`).
        num_samples_cls (int): Consecutive images each drawn class
            contributes to the class-balanced stream. Defaults to 4.
        seed (int, optional): Random seed, identical on every rank. If None,
            a seed is drawn and synchronised across ranks. Defaults to None.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: Optional[int] = None,
                 num_samples_cls: int = 4,
                 seed: Optional[int] = None) -> None:
        rank, world_size = get_dist_info()
        self.rank = rank
        self.world_size = world_size

        if not getattr(dataset, 'accepts_stream_index', False):
            raise TypeError(
                f'DualClassBalancedSampler yields `(index, stream)` tuples, '
                f'but the data set {type(dataset).__name__} does not declare '
                '`accepts_stream_index = True`. Train with '
                "train_cfg=dict(type='ResumableEpochBasedTrainLoop', ...) "
                '(the configs\' default; it wraps any data set in a '
                'StreamIndexDataset), or wrap it yourself: '
                "dataset=dict(type='StreamIndexDataset', dataset=...).")
        check_int('num_samples_cls', num_samples_cls)

        self.dataset = dataset
        self.num_samples_cls = int(num_samples_cls)
        if seed is None:
            seed = sync_random_seed()
        check_int('seed', seed, low=0)
        self.seed = int(seed)
        self.epoch = 0

        labels = self._get_labels(dataset)
        num_classes = self._get_num_classes(dataset, labels)
        counts = np.asarray(
            check_class_counts(
                count_labels(labels, num_classes),
                source='the data set',
                name='DualClassBalancedSampler',
                reason='The class-balanced stream draws every class once per '
                'cycle, so every class needs at least one image. Fix the '
                'annotation / class list.'))

        self.num_classes = num_classes
        # Images grouped by class: class c owns
        # self._sorted_index[self._class_start[c]:][:self._class_count[c]].
        self._sorted_index = np.argsort(labels, kind='stable')
        self._class_count = counts.astype(np.int64)
        self._class_start = np.cumsum(counts) - counts

        self.batch_size: Optional[int] = None
        if batch_size is not None:
            self.set_batch_size(batch_size)

    def set_batch_size(self, batch_size: int) -> None:
        """Set the images per stream per iteration on this rank.

        Args:
            batch_size (int): Images per stream per iteration, divisible by
                ``num_samples_cls``.
        """
        check_int('batch_size', batch_size)
        if batch_size % self.num_samples_cls != 0:
            raise ValueError(
                f'`batch_size` ({batch_size}) must be divisible by '
                f'`num_samples_cls` ({self.num_samples_cls}), so that every '
                'drawn class contributes whole groups of images to a batch.')
        global_batch_size = self.world_size * int(batch_size)
        num_images = len(self._sorted_index)
        if num_images // global_batch_size == 0:
            raise ValueError(
                f'The global batch per stream ({self.world_size} ranks x '
                f'batch_size {batch_size} = {global_batch_size}) is larger '
                f'than the data set ({num_images} images), so an epoch has no '
                'iteration. Lower `batch_size`.')
        self.batch_size = int(batch_size)
        self.global_batch_size = global_batch_size
        self.iters_per_epoch = num_images // global_batch_size

    def _check_batch_size(self) -> None:
        """An error with the fix if no batch size was set."""
        if self.batch_size is None:
            raise RuntimeError(
                'DualClassBalancedSampler has no batch_size. Add '
                "batch_sampler=dict(type='DualStreamBatchSampler') to the "
                "dataloader (it sets half the loader's batch_size), or pass "
                'batch_size= to the sampler.')

    @staticmethod
    def _get_labels(dataset: Sized) -> np.ndarray:
        """The (N,) integer label of every image."""
        return dataset_labels(dataset)

    @staticmethod
    def _get_num_classes(dataset: Sized, labels: np.ndarray) -> int:
        """Number of classes: from the metainfo if it names them, else from
        the largest label."""
        metainfo = getattr(dataset, 'metainfo', None) or {}
        if metainfo.get('classes'):
            num_classes = len(metainfo['classes'])
        elif metainfo.get('cls_num_list'):
            num_classes = len(metainfo['cls_num_list'])
        else:
            num_classes = int(labels.max()) + 1
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f'Labels must lie in [0, {num_classes}) (the data set has '
                f'{num_classes} classes), got labels in '
                f'[{labels.min()}, {labels.max()}].')
        return num_classes

    def _build_epoch(self) -> Tuple[np.ndarray, np.ndarray]:
        """The global class-balanced and instance-balanced index sequences of
        the current epoch, each of length ``iters_per_epoch * G``."""
        rng = np.random.default_rng(self.seed + self.epoch)
        k = self.num_samples_cls
        num_classes = self.num_classes
        total = self.iters_per_epoch * self.global_batch_size

        # Instance-balanced stream: no image twice within an epoch.
        ib = rng.permutation(len(self._sorted_index))[:total]

        # Class sequence: concatenated shuffled cycles over all classes.
        num_draws = total // k
        num_cycles = -(-num_draws // num_classes)
        class_seq = rng.permuted(
            np.tile(np.arange(num_classes), (num_cycles, 1)),
            axis=1).ravel()[:num_draws]

        # Per-class image streams: class c needs need[c] images, taken from
        # cycles[c] shuffled passes over its images, laid out class after
        # class (class c's block starts at block_start[c]).
        counts = self._class_count
        draws = np.bincount(class_seq, minlength=num_classes)
        need = draws * k
        cycles = -(-need // counts)
        block = cycles * counts
        block_start = np.cumsum(block) - block
        entry_cls = np.repeat(np.arange(num_classes), block)
        offset = np.arange(block.sum()) - block_start[entry_cls]
        entry_cycle = offset // counts[entry_cls]
        images = self._sorted_index[self._class_start[entry_cls] +
                                    offset % counts[entry_cls]]
        # Blocks and cycles are already in order, so sorting by
        # (class, cycle, random key) shuffles each cycle independently.
        shuffle = np.lexsort((rng.random(len(images)), entry_cycle, entry_cls))
        images = images[shuffle]

        # The j-th draw of class c takes images [j * k, (j + 1) * k) of
        # class c's stream.
        order = np.argsort(class_seq, kind='stable')
        draw_start = np.cumsum(draws) - draws
        occurrence = np.empty(num_draws, dtype=np.int64)
        occurrence[order] = np.arange(num_draws) - draw_start[class_seq[order]]
        first = block_start[class_seq] + occurrence * k
        cb = images[first[:, None] + np.arange(k)].ravel()  # (num_draws * k,)
        return cb, ib

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        """Iterate ``(index, stream)`` tuples of this rank."""
        self._check_batch_size()
        cb, ib = self._build_epoch()
        shape = (self.iters_per_epoch, self.world_size, self.batch_size)
        cb_rank = cb.reshape(shape)[:, self.rank].tolist()  # (T, b)
        ib_rank = ib.reshape(shape)[:, self.rank].tolist()  # (T, b)
        for cb_batch, ib_batch in zip(cb_rank, ib_rank):
            for index in cb_batch:
                yield index, STREAM_CB
            for index in ib_batch:
                yield index, STREAM_IB

    def __len__(self) -> int:
        """The number of items this rank yields per epoch."""
        self._check_batch_size()
        return self.iters_per_epoch * 2 * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch; the streams are deterministic in (seed, epoch).

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch
