"""Shared behaviour of the long-tailed data sets.

Every long-tailed data set of this package stores the per-class **training**
counts in its metainfo (``metainfo['cls_num_list']``, whatever its split).
"""
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.fileio import join_path
from mmengine.utils import is_abs

from .class_counts import check_class_counts, exponential_profile

__all__ = ['LongTailMixin', 'exponential_profile']


class LongTailMixin:
    """Mixin of the long-tailed data sets (put it before ``BaseDataset``).

    - The data set calls :meth:`_set_cls_num_list` while loading its data
      list with the per-class counts of the **training** split; they land in
      ``metainfo['cls_num_list']`` (a list of ints in label order), where
      ``LongTailAccuracy`` and ``ClassCountsHook`` read them. A class without
      training images is refused at build time.

    The ``cls_num_list`` of a data set built with ``indices`` or
    ``filter_cfg`` stays the counts of the full training split.
    """

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
