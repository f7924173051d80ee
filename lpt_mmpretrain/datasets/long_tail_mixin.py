"""Shared behaviour of the long-tailed data sets.

Every long-tailed data set of this package stores the per-class **training**
counts in its metainfo (``metainfo['cls_num_list']``, whatever its split) and
accepts the ``(index, stream)`` indices of ``DualClassBalancedSampler``.
"""
import numbers
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.fileio import join_path
from mmengine.utils import is_abs

from ..structures.dual_stream import STREAM_CB, STREAM_IB, STREAM_KEY
from .class_counts import check_class_counts, exponential_profile

__all__ = [
    'LongTailMixin', 'exponential_profile', 'parse_stream_index',
    'record_stream', 'prepare_within_class'
]


class LongTailMixin:
    """Mixin of the long-tailed data sets (put it before ``BaseDataset``).

    - The data set calls :meth:`_set_cls_num_list` while loading its data
      list with the per-class counts of the **training** split; they land in
      ``metainfo['cls_num_list']`` (a list of ints in label order), where
      ``LongTailAccuracy`` and ``ClassCountsHook`` read them. A class without
      training images is refused at build time.
    - ``__getitem__`` accepts an int, or an ``(index, stream)`` tuple from
      ``DualClassBalancedSampler``: sample ``index`` is prepared as usual and
      its ``data_samples`` metainfo gets ``sampling_stream = stream``.

    The ``cls_num_list`` of a data set built with ``indices`` or
    ``filter_cfg`` stays the counts of the full training split.
    """

    #: ``DualClassBalancedSampler`` refuses data sets without this flag.
    accepts_stream_index: bool = True

    @staticmethod
    def _resolve_train_ann_file(train_ann_file: Optional[str],
                                data_root: str) -> Optional[str]:
        """``train_ann_file`` relative to ``data_root`` unless absolute."""
        if train_ann_file is None:
            return None
        train_ann_file = osp.expanduser(train_ann_file)
        if not is_abs(train_ann_file) and data_root:
            train_ann_file = join_path(data_root, train_ann_file)
        return train_ann_file

    @property
    def cls_num_list(self) -> List[int]:
        """List[int]: Number of training images of every class, in label
        order."""
        if not self._fully_initialized:
            self.full_init()
        return list(self._metainfo['cls_num_list'])

    def full_init(self) -> None:
        """Load the data list, then check that the training counts were
        set."""
        if self._fully_initialized:
            return
        super().full_init()
        if 'cls_num_list' not in self._metainfo:
            raise RuntimeError(
                f'{type(self).__name__}.load_data_list() must call '
                '`self._set_cls_num_list(counts)` with the per-class training '
                'counts (LongTailMixin contract).')

    def _set_cls_num_list(self,
                          counts: Sequence[int],
                          source: str = 'the training split') -> None:
        """Validate the per-class training counts and store them in the
        metainfo.

        Args:
            counts (Sequence[int]): Training images per class, label order.
            source (str): Where the counts come from, for error messages.
                Defaults to 'the training split'.
        """
        classes = self._metainfo.get('classes')
        if classes is not None and len(classes) != len(counts):
            raise ValueError(
                f'{type(self).__name__}: {len(classes)} class names are given '
                f'but {source} defines {len(counts)} classes. Give one name '
                'per class (`classes=`), in label order.')
        counts = check_class_counts(
            counts, classes, source=source, name=type(self).__name__)
        self._metainfo['cls_num_list'] = counts

    def __getitem__(self, idx: Union[int, Tuple[int, int]]) -> dict:
        """Prepare a sample, optionally recording its sampling stream.

        Args:
            idx (int | Tuple[int, int]): A data index, or ``(index, stream)``
                with ``stream`` 0 (class-balanced) or 1 (instance-balanced)
                as yielded by ``DualClassBalancedSampler``.

        Returns:
            dict: The pipeline output; with a tuple index, its
            ``data_samples`` carries the stream in the metainfo field
            ``sampling_stream``.
        """
        if not isinstance(idx, tuple):
            return super().__getitem__(idx)
        owner = type(self).__name__
        index, stream = parse_stream_index(idx, owner)
        if stream == STREAM_CB and not self.test_mode:
            data = prepare_within_class(self, index, owner)
        else:
            data = super().__getitem__(index)
        return record_stream(data, stream, index, owner)


def parse_stream_index(idx: Tuple[int, int], owner: str) -> Tuple[int, int]:
    """``(index, stream)`` of a tuple index of ``DualClassBalancedSampler``,
    checked; ``owner`` (the data set's name) starts the messages."""
    if len(idx) != 2:
        raise ValueError(
            f'{owner} got the index {idx!r}; a tuple index must be '
            '(index, stream) as yielded by DualClassBalancedSampler.')
    index, stream = idx
    valid = isinstance(
        stream, numbers.Integral) and int(stream) in (STREAM_CB, STREAM_IB)
    if not valid:
        raise ValueError(
            f'{owner} got the stream {stream!r} in index {idx!r}; expected '
            f'{STREAM_CB} (class-balanced) or {STREAM_IB} '
            '(instance-balanced).')
    return int(index), int(stream)


def record_stream(data: dict, stream: int, index: int, owner: str) -> dict:
    """Write ``stream`` into the ``data_samples`` metainfo of a pipeline
    output (field :data:`STREAM_KEY`)."""
    if not isinstance(data, dict) or data.get('data_samples') is None:
        raise KeyError(
            f'{owner}: the pipeline output of sample {index} has no '
            '`data_samples`, so its sampling stream cannot be recorded. End '
            "the pipeline with dict(type='PackInputs') when using "
            'DualClassBalancedSampler.')
    data['data_samples'].set_metainfo({STREAM_KEY: int(stream)})
    return data


def prepare_within_class(dataset, index: int, owner: str) -> dict:
    """``BaseDataset.__getitem__`` for the class-balanced stream: when the
    pipeline drops the image (``CheckedLoadImageFromFile(skip_bad=True)``)
    the replacement is another image of the same class, not of the whole
    data set, so the stream stays class-balanced.

    Args:
        dataset (BaseDataset): A data set with ``prepare_data``,
            ``get_data_info`` and ``max_refetch``; it caches its class
            members in ``_class_members``.
        index (int): The data index.
        owner (str): The data set's name, for the message.
    """
    if not dataset._fully_initialized:
        dataset.full_init()
    data = dataset.prepare_data(index)
    if data is not None:
        return data
    label = dataset.get_data_info(index)['gt_label']
    if getattr(dataset, '_class_members', None) is None:
        labels = np.asarray(dataset.get_gt_labels())
        dataset._class_members = {
            c: np.flatnonzero(labels == c)
            for c in np.unique(labels).tolist()
        }
    members = dataset._class_members[int(label)]
    for _ in range(dataset.max_refetch):
        data = dataset.prepare_data(int(np.random.choice(members)))
        if data is not None:
            return data
    raise RuntimeError(
        f'{owner}: no image of class {label} could be loaded in '
        f'{dataset.max_refetch + 1} tries ({len(members)} images); list the '
        'bad images with tools/misc/verify_dataset.py and fix them.')
