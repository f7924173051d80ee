"""Any single-label data set, taking ``DualClassBalancedSampler``'s
``(index, stream)`` indices."""
from typing import List, Tuple, Union

import numpy as np
from mmpretrain.registry import DATASETS

from ..structures.dual_stream import STREAM_CB
from .long_tail_mixin import (parse_stream_index, prepare_within_class,
                              record_stream)
from .training_counts import dataset_labels, training_counts

__all__ = ['StreamIndexDataset', 'accepts_stream_index', 'with_stream_index']


@DATASETS.register_module()
class StreamIndexDataset:
    """A view of a data set that records the sampling stream of each sample.

    ``ResumableEpochBasedTrainLoop`` puts it around a training data set that
    does not take ``(index, stream)`` indices itself (MMPretrain's
    ``CustomDataset``, ``ImageNet``, ``CUB``, MMEngine's ``ConcatDataset`` /
    ``RepeatDataset`` / ``ClassBalancedDataset``, ...) whenever the loader's
    sampler is ``DualClassBalancedSampler``: configs keep their data set
    unchanged. ``dataset[(index, stream)]`` is ``dataset[index]`` with
    ``sampling_stream = stream`` in its ``data_samples`` metainfo; an int
    index passes through. A class-balanced sample whose image the pipeline
    drops (``CheckedLoadImageFromFile(skip_bad=True)``) is replaced by
    another image of its class, as in ``LongTailMixin``.

    ``metainfo`` is the wrapped data set's plus ``cls_num_list``, its
    per-class training counts (:func:`training_counts`), which MMEngine's
    runner saves in every checkpoint's ``meta['dataset_meta']``: this is how
    ``tools/test.py`` finds the training counts of a run later.

    Args:
        dataset (dict | Dataset): The data set or its config.
    """

    accepts_stream_index = True

    def __init__(self, dataset: Union[dict, object]) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        counts, _ = training_counts(dataset)
        self._metainfo = dict(getattr(dataset, 'metainfo', None) or {})
        self._metainfo['cls_num_list'] = counts
        self._labels = None

    @property
    def metainfo(self) -> dict:
        """dict: The wrapped data set's metainfo with ``cls_num_list``."""
        return dict(self._metainfo)

    def full_init(self) -> None:
        """The wrapped data set is fully initialised at construction."""

    def __len__(self) -> int:
        return len(self.dataset)

    def get_gt_labels(self) -> np.ndarray:
        """np.ndarray: The (N,) label of every item."""
        if self._labels is None:
            self._labels = dataset_labels(self.dataset)
        return self._labels

    def get_cat_ids(self, idx: int) -> List[int]:
        """The label of item ``idx``, as a list."""
        return [int(self.get_gt_labels()[idx])]

    def get_data_info(self, idx: int) -> dict:
        """The wrapped data set's ``get_data_info``."""
        return self.dataset.get_data_info(idx)

    def __getattr__(self, name: str):
        # Everything else (e.g. `pipeline`, `data_root`) is the wrapped data
        # set's; `dataset` itself may not exist yet while unpickling.
        if name == 'dataset' or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, idx: Union[int, Tuple[int, int]]) -> dict:
        if not isinstance(idx, tuple):
            return self.dataset[idx]
        owner = type(self.dataset).__name__
        index, stream = parse_stream_index(idx, owner)
        within_class = (
            stream == STREAM_CB and hasattr(self.dataset, 'prepare_data')
            and not getattr(self.dataset, 'test_mode', False))
        if within_class:
            data = prepare_within_class(self.dataset, index, owner)
        else:
            data = self.dataset[index]
        return record_stream(data, stream, index, owner)

    def __repr__(self) -> str:
        return f'StreamIndexDataset({self.dataset!r})'


def accepts_stream_index(dataset) -> bool:
    """Whether ``dataset`` takes ``(index, stream)`` indices itself."""
    return bool(getattr(dataset, 'accepts_stream_index', False))


def with_stream_index(dataset):
    """``dataset`` itself if it takes ``(index, stream)`` indices, else a
    :class:`StreamIndexDataset` around it."""
    if accepts_stream_index(dataset):
        return dataset
    return StreamIndexDataset(dataset)
