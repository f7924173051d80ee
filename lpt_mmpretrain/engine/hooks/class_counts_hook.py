import logging
from typing import List, Optional, Tuple

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

__all__ = ['ClassCountsHook']


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give the training data set's class counts to the model before training.

    The counts are ``train_dataloader.dataset.metainfo['cls_num_list']``
    (set by every long-tailed data set of this package) or, if absent, a
    count of the data set's labels over its ``classes``. Every module of the
    model that has a ``set_cls_num_list`` method (e.g.
    ``AsymmetricGCLLoss``) and no counts yet (``cls_num_list is None``) gets
    them; a module that already has counts for another number of classes is
    an error.

    The hook has no arguments; add ``dict(type='ClassCountsHook')`` to
    ``custom_hooks``.
    """

    # Before any other hook that may run the model at the start of training.
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Set the class counts of every module that needs them.

        Args:
            runner (Runner): The runner of the training process.
        """
        dataset = runner.train_dataloader.dataset
        counts, source = self.class_counts(dataset)
        model = runner.model
        if is_model_wrapper(model):
            model = model.module

        num_set = 0
        for name, module in model.named_modules():
            if not callable(getattr(module, 'set_cls_num_list', None)):
                continue
            name = name or type(module).__name__
            current = getattr(module, 'cls_num_list', None)
            if current is None:
                module.set_cls_num_list(counts)
                num_set += 1
                print_log(
                    f'ClassCountsHook: set the class counts of `{name}` '
                    f'from {source} ({len(counts)} classes, max '
                    f'{max(counts)}, min {min(counts)}).',
                    logger='current')
            elif len(current) != len(counts):
                raise ValueError(
                    f'`{name}` was given counts of {len(current)} classes '
                    f'but the training data set has {len(counts)} classes. '
                    'Remove its cls_num_list= (the hook sets it from the data '
                    'set) or make it match the data set.')
            else:
                print_log(
                    f'ClassCountsHook: `{name}` keeps its own class counts '
                    f'({len(current)} classes).',
                    logger='current')
        if num_set == 0:
            print_log(
                'ClassCountsHook: no module of the model needed class '
                'counts.',
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
        labels = labels.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise ValueError(
                'The training data set has negative labels; every training '
                'image needs a class label.')
        if classes is not None:
            minlength = len(classes)
            if labels.size and labels.max() >= minlength:
                raise ValueError(
                    f'The training data set has label {labels.max()} but '
                    f'only {minlength} classes.')
        else:
            minlength = int(labels.max()) + 1 if labels.size else 0
            print_log(
                "ClassCountsHook: the data set's metainfo has no classes; "
                f'assuming {minlength} classes (largest label + 1).',
                logger='current',
                level=logging.WARNING)
        counts = np.bincount(labels, minlength=minlength).tolist()
        return counts, "the data set's labels"
