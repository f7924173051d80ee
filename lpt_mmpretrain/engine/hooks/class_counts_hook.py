import logging
from typing import List, Optional, Tuple

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...datasets.class_counts import count_labels

__all__ = ['ClassCountsHook']


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give the training data set's class counts to the head before training.

    The counts are ``train_dataloader.dataset.metainfo['cls_num_list']``
    (set by every long-tailed data set of this package) or, if absent, a
    count of the data set's labels over its ``classes``. They go to
    ``model.head.set_class_counts(counts)`` (``CosineClsHead``), which passes
    them to its losses that take counts (``AsymmetricGCLLoss``); a loss built
    with its own ``cls_num_list`` keeps it.

    The hook has no arguments; add ``dict(type='ClassCountsHook')`` to
    ``custom_hooks``.
    """

    # Before any other hook that may run the model at the start of training.
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Give the class counts to the model's head.

        Args:
            runner (Runner): The runner of the training process.
        """
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        head = getattr(model, 'head', None)
        if not callable(getattr(head, 'set_class_counts', None)):
            print_log(
                f'ClassCountsHook: the head {type(head).__name__} takes no '
                'class counts (it has no set_class_counts); nothing to do.',
                logger='current',
                level=logging.WARNING)
            return

        counts, source = self.class_counts(runner.train_dataloader.dataset)
        taken = head.set_class_counts(counts)
        for name, took in taken.items():
            if took:
                print_log(
                    f'ClassCountsHook: set the class counts of `head.{name}` '
                    f'from {source} ({len(counts)} classes, max '
                    f'{max(counts)}, min {min(counts)}).',
                    logger='current')
            else:
                print_log(
                    f'ClassCountsHook: `head.{name}` keeps its own class '
                    'counts.',
                    logger='current')
        if not taken:
            print_log(
                'ClassCountsHook: no loss of the head takes class counts.',
                logger='current',
                level=logging.WARNING)

    @staticmethod
    def class_counts(dataset) -> Tuple[List[int], str]:
        """The per-class training counts of a data set.

        Args:
            dataset: The training data set.

        Returns:
            tuple[list[int], str]: The counts in label order and where they
            came from (for the log).
        """
        metainfo = getattr(dataset, 'metainfo', None) or {}
        classes: Optional[list] = metainfo.get('classes')
        counts = metainfo.get('cls_num_list')
        if counts is not None:
            counts = [int(c) for c in counts]
            if classes is not None and len(classes) != len(counts):
                raise ValueError(
                    f"The training data set's metainfo has {len(counts)} "
                    f"class counts (cls_num_list) but {len(classes)} "
                    'classes; they must match.')
            return counts, "the data set's metainfo['cls_num_list']"

        if hasattr(dataset, 'full_init'):
            dataset.full_init()  # lazy_init data sets have no labels yet
        if hasattr(dataset, 'get_gt_labels'):
            labels = np.asarray(dataset.get_gt_labels()).reshape(-1)
        elif hasattr(dataset, 'get_cat_ids'):
            labels = np.asarray([
                c for i in range(len(dataset)) for c in dataset.get_cat_ids(i)
            ])
        else:
            raise TypeError(
                f'Cannot count the classes of {type(dataset).__name__}: it '
                "has no metainfo['cls_num_list'], get_gt_labels() or "
                'get_cat_ids(). Pass cls_num_list= to the loss instead.')
        if classes is None:
            print_log(
                "ClassCountsHook: the data set's metainfo has no classes; "
                'assuming largest label + 1 classes.',
                logger='current',
                level=logging.WARNING)
        counts = count_labels(
            labels,
            None if classes is None else len(classes),
            source="the training data set's labels")
        return counts, "the data set's labels"
